"""The chair decisions as records: what other features (archive, retention, log review,
statistics, lookup) read about them. Other features never import `portal.decisions.models`; they
call here.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.decisions.models import Decision
from portal.decisions.service import archive_filter
from portal.lifecycle import Lifecycle
from portal.pii import Vault

# --- retention, log review, statistics ---

FINISHED = ("delivered", "lifted", "cancelled")
"""States after which nothing more happens to a decision (it may be culled when its time is up)."""


def _life(d: Decision) -> Lifecycle:
    busy = None if d.status in FINISHED else "Beslutet är inte avslutat."
    keys = [d.signed_object_id] if d.signed_object_id else []
    return Lifecycle(d.id, d.municipality_id, d.oral_decision_at, busy, keys)


async def lifecycles(db: AsyncSession, *, org_id: uuid.UUID | None = None) -> list[Lifecycle]:
    """Every decision (in municipality `org_id`'s archive, or all) with its retention anchor, the
    signed PDF, and whether it is still in progress."""
    stmt = select(Decision)
    if org_id:  # the municipality's decisions; a jour's draft is not in its archive
        stmt = stmt.where(archive_filter(org_id, is_jour=False))
    return [_life(d) for d in await db.scalars(stmt)]


async def lifecycle(db: AsyncSession, decision_id: uuid.UUID) -> Lifecycle | None:
    """One decision's retention facts (None when it does not exist)."""
    d = await db.get(Decision, decision_id)
    return _life(d) if d else None


async def persons_named(db: AsyncSession, vault: Vault, decision_id: uuid.UUID) -> list[str]:
    """The personnummer of the decision's subject (decrypted), if it has one."""
    d = await db.get(Decision, decision_id)
    if d is None:
        return []
    subject = json.loads(vault.decrypt(d.subject_enc, f"decisions.subject:{d.id}"))
    return [subject["pnr"]] if subject.get("pnr") else []


async def cull(db: AsyncSession, decision_id: uuid.UUID) -> None:
    """Delete the decision's row (the caller deletes the signed PDF in the store afterwards)."""
    await db.execute(delete(Decision).where(Decision.id == decision_id))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The decisions about the person with this blind index."""
    rows = await db.scalars(select(Decision.id).where(Decision.subject_pnr_index == pnr_index))
    return set(rows)


async def count_by_kind(
    db: AsyncSession,
    *,
    jour_id: uuid.UUID,
    municipality_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> Counter[str]:
    """Decisions made orally in [start, end) by the jour (about one municipality, or all), per
    kind: neither drafts nor cancelled ones (those were never made)."""
    where = [
        Decision.jour_id == jour_id,
        Decision.oral_decision_at >= start,
        Decision.oral_decision_at < end,
        Decision.status.not_in(("draft", "cancelled")),
    ]
    if municipality_id is not None:
        where.append(Decision.municipality_id == municipality_id)
    return Counter(await db.scalars(select(Decision.kind).where(*where)))
