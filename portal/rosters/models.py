"""Roster versions, their entries and the jour's acknowledgements."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class RosterVersion(Base):
    """One complete on-call list of a municipality; a change is a new version, never an edit."""

    __tablename__ = "roster_versions"
    __table_args__ = (UniqueConstraint("municipality_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    municipality_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    number: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))

    entries: Mapped[list[RosterEntry]] = relationship(
        order_by="(RosterEntry.valid_from, RosterEntry.position)", cascade="all, delete-orphan"
    )
    acks: Mapped[list[RosterAck]] = relationship(order_by="RosterAck.at")


class RosterEntry(Base):
    """A person on call for a period, at a place in the fallback order."""

    __tablename__ = "roster_entries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roster_versions.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    function: Mapped[str] = mapped_column(String(30))  # chair | substitute | appointed
    position: Mapped[int] = mapped_column()
    valid_from: Mapped[datetime] = mapped_column()
    valid_to: Mapped[datetime] = mapped_column()
    phone_enc: Mapped[str] = mapped_column(Text)


class RosterAck(Base):
    """The jour's receipt of one roster version."""

    __tablename__ = "roster_acks"
    __table_args__ = (UniqueConstraint("version_id", "jour_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roster_versions.id"))
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
