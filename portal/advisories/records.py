"""The advisories as records: what other features (archive, retention, log review, statistics,
lookup) read about them. Other features never import `portal.advisories.models`; they call here.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories.models import (
    Advisory,
    AdvisoryAcknowledgement,
    AdvisorySubject,
    AdvisoryVersion,
)
from portal.advisories.queries import OWNER_TYPE
from portal.attachments import service as attachments
from portal.lifecycle import Lifecycle
from portal.pii import Vault

# --- retention, log review, statistics ---


def _life(a: Advisory, objects: list[str]) -> Lifecycle:
    # The time runs from the end of validity, or from the withdrawal if that came later.
    anchor = max(a.valid_until, a.withdrawn_at or a.valid_until)
    return Lifecycle(a.id, a.organisation_id, anchor, None, objects)


async def lifecycles(db: AsyncSession, *, org_id: uuid.UUID | None = None) -> list[Lifecycle]:
    """Every advisory (of `org_id`, or all) with its retention anchor and files."""
    ids: Select[uuid.UUID] = select(Advisory.id)
    stmt = select(Advisory)
    if org_id:
        ids = ids.where(Advisory.organisation_id == org_id)
        stmt = stmt.where(Advisory.organisation_id == org_id)
    keys = await attachments.object_keys(db, OWNER_TYPE, ids)
    return [_life(a, keys.get(a.id, [])) for a in await db.scalars(stmt)]


async def lifecycle(db: AsyncSession, advisory_id: uuid.UUID) -> Lifecycle | None:
    """One advisory's retention facts (None when it does not exist)."""
    a = await db.get(Advisory, advisory_id)
    if a is None:
        return None
    this: Select[uuid.UUID] = select(Advisory.id).where(Advisory.id == a.id)
    keys = await attachments.object_keys(db, OWNER_TYPE, this)
    return _life(a, keys.get(a.id, []))


async def persons_named(db: AsyncSession, vault: Vault, advisory_id: uuid.UUID) -> list[str]:
    """The personnummer the advisory names (decrypted; read only when a rule needs them)."""
    rows = await db.scalars(
        select(AdvisorySubject).where(AdvisorySubject.advisory_id == advisory_id)
    )
    return [vault.decrypt(s.pnr_enc, f"advisory_subjects.pnr:{s.id}") for s in rows]


async def cull(db: AsyncSession, advisory_id: uuid.UUID) -> None:
    """Delete every row of the advisory (subjects, acknowledgements, versions, attachment rows).

    The caller deletes the files in the store afterwards, in the same transaction's scope.
    """
    for model in (AdvisorySubject, AdvisoryAcknowledgement, AdvisoryVersion):
        await db.execute(delete(model).where(model.advisory_id == advisory_id))
    await attachments.delete_rows(db, OWNER_TYPE, advisory_id)
    await db.execute(delete(Advisory).where(Advisory.id == advisory_id))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The advisories that name the person with this blind index."""
    rows = await db.scalars(
        select(AdvisorySubject.advisory_id).where(AdvisorySubject.pnr_index == pnr_index)
    )
    return set(rows)
