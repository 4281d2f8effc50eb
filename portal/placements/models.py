"""Placements and their versions.

At rest: each version's names, home/institution and free text are one encrypted JSON blob bound
to "placement_versions.content:<version id>"; the personnummer lives in the version row as a
blind index (exact lookup through an index) plus ciphertext bound to
"placement_versions.pnr:<version id>". The legal basis and section, the dates and the
organisation ids stay in clear: the police-assistance check, the lists and the tenancy filter
need them, and they say nothing about who is placed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class Placement(Base):
    """A municipality's placement of one person; the content lives in its versions."""

    __tablename__ = "placements"
    __table_args__ = (
        Index("ix_placements_org_created", "organisation_id", "created_at"),
        # The register's list pages by the latest change (portal/paging.py).
        Index("ix_placements_org_changed", "organisation_id", "changed_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    current_version: Mapped[int] = mapped_column()
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    legal_basis: Mapped[str] = mapped_column(String(10))  # sol | lvu | lvm
    legal_section: Mapped[str] = mapped_column(String(20))  # e.g. lvu-3
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)


class PlacementVersion(Base):
    """One version: created or amended. Never changed after insert."""

    __tablename__ = "placement_versions"
    __table_args__ = (UniqueConstraint("placement_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placements.id"))
    version: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20))  # created | amended
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    legal_basis: Mapped[str] = mapped_column(String(10))
    legal_section: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    pnr_index: Mapped[str] = mapped_column(String(64), index=True)
    pnr_enc: Mapped[str] = mapped_column(Text)
    content_enc: Mapped[str] = mapped_column(Text)
