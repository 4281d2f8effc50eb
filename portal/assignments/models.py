"""Assignments (uppdrag), their outcome, and the jour's handover notes with their receipts.

At rest: what the assignment asks, for whom (name), who asked and how to report back are one
encrypted JSON blob bound to "assignments.content:<id>"; the personnummer (optional) is a blind
index plus ciphertext bound to "assignments.pnr:<id>"; the outcome note, the withdrawal reason
and a handover note's text are encrypted too. The kind, the deadline, the state, who did what
and when, and the organisation ids stay in clear: the dashboard, the lists and the tenancy
filter need them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class Assignment(Base):
    """A municipality's task for its jour over a night or a weekend."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_jour_status_due", "jour_id", "status", "due_at"),
        Index("ix_assignments_org_created", "organisation_id", "created_at"),
        Index("ix_assignments_jour_created", "jour_id", "created_at", "id"),  # the jour's archive
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # visit | call | check | other
    due_at: Mapped[datetime] = mapped_column()
    # sent | accepted | done | not_done | withdrawn
    status: Mapped[str] = mapped_column(String(20))
    content_enc: Mapped[str] = mapped_column(Text)
    pnr_index: Mapped[str | None] = mapped_column(String(64), index=True)
    pnr_enc: Mapped[str | None] = mapped_column(Text)
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    outcome_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome_enc: Mapped[str | None] = mapped_column(Text)
    withdrawn_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)
    withdraw_reason_enc: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)  # overdue mail sent


class HandoverNote(Base):
    """A short note from one shift at the jour to the next."""

    __tablename__ = "handover_notes"
    __table_args__ = (Index("ix_handover_notes_jour_created", "jour_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shift_start: Mapped[datetime] = mapped_column()  # the shift it was written in
    body_enc: Mapped[str] = mapped_column(Text)


class HandoverRead(Base):
    """An incoming staff member's receipt of a handover note ("läst")."""

    __tablename__ = "handover_reads"
    __table_args__ = (UniqueConstraint("note_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    note_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("handover_notes.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
