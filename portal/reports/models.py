"""Incident reports, their subjects, actions, read marks and addenda.

At rest: personnummer as a blind index (lookup) plus ciphertext; names, narrative and the
protection-assessment texts only as ciphertext bound to "table.column:row id". Codes, times,
minutes and flags stay in clear because statistics and invoicing count them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class Report(Base):
    """A händelserapport written by a jour to a member municipality's unit (or "Annan kommun")."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_municipality_created", "municipality_id", "created_at"),
        Index("ix_reports_jour_created", "jour_id", "created_at"),
        # The archive's search pages by the day it happened (portal/paging.py).
        Index("ix_reports_municipality_occurred", "municipality_id", "occurred_at", "id"),
        Index("ix_reports_jour_occurred", "jour_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    municipality_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    other_municipality: Mapped[str | None] = mapped_column(String(100))
    code_list_version: Mapped[str] = mapped_column(ForeignKey("code_list_versions.version"))
    occurred_at: Mapped[datetime] = mapped_column()
    on_call: Mapped[bool] = mapped_column()
    initiator_code: Mapped[str] = mapped_column(String(40))
    category_code: Mapped[str] = mapped_column(String(40))
    character_code: Mapped[str] = mapped_column(String(40))
    minutes: Mapped[int] = mapped_column()
    child_involved: Mapped[bool] = mapped_column()
    assessment_enc: Mapped[str | None] = mapped_column(Text)
    assessment_facts_enc: Mapped[str | None] = mapped_column(Text)
    assessed_at: Mapped[datetime | None] = mapped_column()
    assessed_by_enc: Mapped[str | None] = mapped_column(Text)
    narrative_enc: Mapped[str] = mapped_column(Text)
    follow_up_requested: Mapped[bool] = mapped_column()
    follow_up_urgency: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    follow_up_owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    subjects: Mapped[list[ReportSubject]] = relationship(order_by="ReportSubject.position")
    actions: Mapped[list[ReportAction]] = relationship(order_by="ReportAction.action_code")
    addenda: Mapped[list[ReportAddendum]] = relationship(order_by="ReportAddendum.created_at")


class ReportSubject(Base):
    """A person the report is about; several for "Familj", "Kvinna med barn" and the like."""

    __tablename__ = "report_subjects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    position: Mapped[int] = mapped_column()
    identity_unknown: Mapped[bool] = mapped_column()
    pnr_index: Mapped[str | None] = mapped_column(String(64), index=True)
    pnr_enc: Mapped[str | None] = mapped_column(Text)
    name_enc: Mapped[str | None] = mapped_column(Text)


class ReportAction(Base):
    """One action (åtgärd) code taken in the case."""

    __tablename__ = "report_actions"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    action_code: Mapped[str] = mapped_column(String(40), primary_key=True)


class ReportRead(Base):
    """When a user last opened a report (unread = never, or before the latest change)."""

    __tablename__ = "report_reads"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportAddendum(Base):
    """An append-only correction or addition by the jour; the original report never changes."""

    __tablename__ = "report_addenda"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    text_enc: Mapped[str] = mapped_column(Text)
