"""The cost allocation's tables: each jour's key, and closed invoicing periods (the basis frozen
when the period was locked, with the key that was used)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class CostPeriodLock(Base):
    """The invoice basis of one jour for one period, as it stood when the period was closed."""

    __tablename__ = "cost_period_locks"
    __table_args__ = (UniqueConstraint("jour_id", "period_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    period_key: Mapped[str] = mapped_column(String(10))
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    population_percent: Mapped[int] = mapped_column()
    annual_sek: Mapped[int] = mapped_column()
    basis: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class CostKey(Base):
    """A jour's own cost-allocation key (FR-G6); a jour without one uses the instance's default
    (`cost_population_percent`, `cost_annual_sek`, `cost_period`)."""

    __tablename__ = "cost_keys"

    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    population_percent: Mapped[int] = mapped_column()
    annual_sek: Mapped[int] = mapped_column()
    period_kind: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
