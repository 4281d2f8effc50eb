"""Police-assistance requests as records: what other features (statistics) read about them.
Other features never import `portal.police.models`; they call here."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.police.models import PoliceRequest


async def count_by_code(
    db: AsyncSession,
    *,
    jour_id: uuid.UUID,
    municipality_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> Counter[str]:
    """Requests made in [start, end) by the jour (for one municipality, or all), per the
    statistics' "Handr" code (handr_43_lvu, handr_45_lvm, handr_aterk): signed ones (a request
    still awaiting the chair, or revoked before it was signed, was never made)."""
    where = [
        PoliceRequest.jour_id == jour_id,
        PoliceRequest.created_at >= start,
        PoliceRequest.created_at < end,
        PoliceRequest.signed_at.is_not(None),
    ]
    if municipality_id is not None:
        where.append(PoliceRequest.organisation_id == municipality_id)
    return Counter(await db.scalars(select(PoliceRequest.stat_code).where(*where)))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The requests about the person with this blind index."""
    rows = await db.scalars(select(PoliceRequest.id).where(PoliceRequest.pnr_index == pnr_index))
    return set(rows)
