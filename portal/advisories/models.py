"""Advisories, their versions, subjects and the jour's acknowledgements.

At rest: every version's names and free text are one encrypted JSON blob bound to
"advisory_versions.content:<version id>"; personnummer live only in `advisory_subjects` as a blind
index (exact lookup through an index) plus ciphertext bound to "advisory_subjects.pnr:<row id>".
Dates, the legal-basis code, organisation ids and the status stay in clear: the jour's list,
the expiry reminders and the tenancy filter need them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class Advisory(Base):
    """A municipality's advisory to its jour; the content lives in its versions."""

    __tablename__ = "advisories"
    __table_args__ = (
        Index("ix_advisories_jour_status_valid", "jour_id", "status", "valid_until"),
        Index("ix_advisories_org_created", "organisation_id", "created_at"),
        Index("ix_advisories_jour_created", "jour_id", "created_at", "id"),  # the jour's archive
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20))  # active | withdrawn
    current_version: Mapped[int] = mapped_column()
    content_version: Mapped[int] = mapped_column()  # last version that changed the content
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)  # content_version's time
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)  # current_version's time
    valid_until: Mapped[datetime] = mapped_column()
    legal_basis: Mapped[str] = mapped_column(String(10))
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    withdrawn_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason_enc: Mapped[str | None] = mapped_column(Text)


class AdvisoryVersion(Base):
    """One version: created, amended or reconfirmed. Never changed after insert."""

    __tablename__ = "advisory_versions"
    __table_args__ = (UniqueConstraint("advisory_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    advisory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advisories.id"))
    version: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20))  # created | amended | reconfirmed
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime] = mapped_column()
    legal_basis: Mapped[str] = mapped_column(String(10))
    content_enc: Mapped[str] = mapped_column(Text)


class AdvisorySubject(Base):
    """A person a version is about, by personnummer; unknown identities have no row here."""

    __tablename__ = "advisory_subjects"
    __table_args__ = (Index("ix_advisory_subjects_advisory_version", "advisory_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    advisory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advisories.id"))
    version: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column()
    pnr_index: Mapped[str] = mapped_column(String(64), index=True)
    pnr_enc: Mapped[str] = mapped_column(Text)


class AdvisoryAcknowledgement(Base):
    """A jour worker's receipt of one version ("kvitterad")."""

    __tablename__ = "advisory_acknowledgements"
    __table_args__ = (UniqueConstraint("advisory_id", "version", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    advisory_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advisories.id"))
    version: Mapped[int] = mapped_column()
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
