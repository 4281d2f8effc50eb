"""Organisations, users, roles, sessions and the audit log.

Tenancy: every municipality and the jour are separate organisations (social-services secrecy
applies between them). Personal identity numbers and names are never stored in plaintext: a keyed
blind index (HMAC) for lookup and an encrypted value for display (see portal/pii.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db.base import Base, utcnow


def new_id() -> uuid.UUID:
    """A random identifier: opaque in URLs, says nothing about the record."""
    return uuid.uuid4()


class Organisation(Base):
    """A jour, a municipality (member of a jour or not) or the service operator."""

    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # jour | municipality | service
    name: Mapped[str] = mapped_column(String(200), unique=True)
    municipality_code: Mapped[str | None] = mapped_column(String(4))
    committee_name: Mapped[str | None] = mapped_column(String(200))
    jour_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    host_municipality_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    units: Mapped[list[Unit]] = relationship(back_populates="organisation", order_by="Unit.name")


class Unit(Base):
    """A functional mailbox of an organisation, e.g. "IFO barn och unga"; addressed by function."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    mailbox: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="units")


class User(Base):
    """A person who may log in. Identified at login by (issuer, subject) or personnummer."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pnr_index: Mapped[str] = mapped_column(String(64), unique=True)
    pnr_enc: Mapped[str] = mapped_column(Text)
    name_enc: Mapped[str] = mapped_column(Text)
    idp_name_enc: Mapped[str | None] = mapped_column(Text, default=None)
    """The name the identity provider sent at the latest login, when it differs from name_enc
    (the name the administrator registered, which is the one shown)."""
    email_enc: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class UserIdentity(Base):
    """An (issuer, subject) pair seen at login, linked to a user by personnummer."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A role held by a user in one organisation (optionally one unit). Revoked, never deleted."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_user_active", "user_id", "revoked_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(String(30))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    organisation: Mapped[Organisation] = relationship()
    unit: Mapped[Unit | None] = relationship()


class WebSession(Base):
    """A server-side browser session; the cookie holds a token whose SHA-256 is the key here."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    authenticated_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LoginStartCount(Base):
    """Login starts from one client address in its current window, counted for every instance
    (portal.account.service.LoginStartLimiter); purged with the sessions."""

    __tablename__ = "login_start_counts"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Keyed hash (HMAC-SHA256, the blind index key) of the address or IPv6 /64: no address
    is stored."""
    window_start: Mapped[datetime] = mapped_column(index=True)
    """When the current window began (its first start)."""
    starts: Mapped[int] = mapped_column()
    """Starts counted in it, refused ones included."""


class AuditEntry(Base):
    """One append-only, hash-chained audit record (who, what, when, which organisation)."""

    __tablename__ = "audit_entries"
    # "How many lookups did this person make in the last minutes" (portal.lookup throttling).
    __table_args__ = (Index("ix_audit_entries_actor_at", "actor_user_id", "at"),)

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_org_id: Mapped[uuid.UUID | None] = mapped_column()
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The one row locked to serialise audit writers, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column()
    hash: Mapped[str] = mapped_column(String(64))
