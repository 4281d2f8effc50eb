"""The chair rosters as records: what other features (archive, retention) read about them.
Other features never import `portal.rosters.models`; they call here.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.lifecycle import Lifecycle
from portal.pii import Vault
from portal.rosters.models import RosterAck, RosterEntry, RosterVersion

# --- retention, log review, statistics ---

CURRENT = "Listan är kommunens gällande version."
"""Why a roster version is kept although its time is up: it is still the one in force."""


async def lifecycles(db: AsyncSession, *, org_id: uuid.UUID | None = None) -> list[Lifecycle]:
    """Every roster version (of municipality `org_id`, or all): its time runs from its last
    entry's end (or its creation when it has none); the municipality's newest is in force."""
    newest = dict(
        (m, n)
        for m, n in await db.execute(
            select(RosterVersion.municipality_id, func.max(RosterVersion.number)).group_by(
                RosterVersion.municipality_id
            )
        )
    )
    stmt = select(RosterVersion, func.max(RosterEntry.valid_to)).join(
        RosterEntry, RosterEntry.version_id == RosterVersion.id, isouter=True
    )
    if org_id:
        stmt = stmt.where(RosterVersion.municipality_id == org_id)
    return [
        Lifecycle(
            v.id,
            v.municipality_id,
            last or v.created_at,
            CURRENT if newest.get(v.municipality_id) == v.number else None,
        )
        for v, last in await db.execute(stmt.group_by(RosterVersion.id))
    ]


async def lifecycle(db: AsyncSession, version_id: uuid.UUID) -> Lifecycle | None:
    """One roster version's owner (None when it does not exist); it has no files."""
    v = await db.get(RosterVersion, version_id)
    return Lifecycle(v.id, v.municipality_id, v.created_at) if v else None


async def persons_named(db: AsyncSession, vault: Vault, version_id: uuid.UUID) -> list[str]:
    """A roster names staff, not the people the records are about: none."""
    return []


async def cull(db: AsyncSession, version_id: uuid.UUID) -> None:
    """Delete the roster version with its entries and acknowledgements."""
    await db.execute(delete(RosterEntry).where(RosterEntry.version_id == version_id))
    await db.execute(delete(RosterAck).where(RosterAck.version_id == version_id))
    await db.execute(delete(RosterVersion).where(RosterVersion.id == version_id))
