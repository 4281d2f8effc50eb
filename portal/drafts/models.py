"""A half-written form, kept server-side for its writer until it is sent or expires."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow


class FormDraft(Base):
    """One user's draft of one form (the form's key, e.g. "report-new")."""

    __tablename__ = "form_drafts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    form_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    data_enc: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
