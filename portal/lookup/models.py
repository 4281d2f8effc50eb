"""The name index of the lookup (portal.lookup.names)."""

from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base


class NameToken(Base):
    """One token of one record's subject names, as a blind index."""

    __tablename__ = "name_tokens"

    owner_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_index: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
