"""Legal holds: a record under hold is never culled, whatever the rules say."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class LegalHold(Base):
    """A hold placed by an archivist on one record (lifted, never deleted)."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        Index("ix_legal_holds_record", "record_type", "record_id"),
        # The retention page's list of an organisation's holds, newest first (keyset pages).
        Index("ix_legal_holds_org_placed", "organisation_id", "placed_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[uuid.UUID] = mapped_column()
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    reason_enc: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)
