"""A chair decision and its life: draft → awaiting signature → signed → delivered (or lifted,
cancelled). Personal data (subject, facts, grounds, placement) is encrypted at rest."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id

STATES = ("draft", "awaiting_signature", "signed", "delivered", "lifted", "cancelled")


class Decision(Base):
    """One decision by the committee's chair (or substitute/appointed member)."""

    __tablename__ = "decisions"
    __table_args__ = (
        # The decision list and the archive page by the oral decision (portal/paging.py).
        Index("ix_decisions_jour_oral", "jour_id", "oral_decision_at", "id"),
        Index("ix_decisions_municipality_oral", "municipality_id", "oral_decision_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))
    municipality_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    revision: Mapped[int] = mapped_column(default=1)
    subject_pnr_index: Mapped[str | None] = mapped_column(String(64), index=True)
    subject_enc: Mapped[str] = mapped_column(Text)
    content_enc: Mapped[str] = mapped_column(Text)
    oral_decision_at: Mapped[datetime] = mapped_column()
    decision_maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    decision_maker_function: Mapped[str] = mapped_column(String(30))
    drafted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    chair_reminded_at: Mapped[datetime | None] = mapped_column(default=None)  # unsigned, 30 min
    jour_notified_at: Mapped[datetime | None] = mapped_column(default=None)  # unsigned, 60 min
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    document_enc: Mapped[str | None] = mapped_column(Text, default=None)
    signed_at: Mapped[datetime | None] = mapped_column(default=None)
    signed_object_id: Mapped[str | None] = mapped_column(String(100))
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_size: Mapped[int | None] = mapped_column()
    signed_kek_id: Mapped[str | None] = mapped_column(String(40))
    signed_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_reason_enc: Mapped[str | None] = mapped_column(Text)
