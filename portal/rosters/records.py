"""The chair rosters as records: what other features (archive, retention) read about them.
Other features never import `portal.rosters.models`; they call here.

A roster version is owned by its municipality and held by it and by its jour. Rosters name
committee members, never clients: a search by personnummer finds none. Functions are labelled
as the roster pages label them (`schemas.FUNCTIONS`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from portal.db.models import Organisation
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.records import (
    Anchored,
    Hit,
    Holding,
    Lifecycle,
    Record,
    busy_flag,
    count_of,
    in_chunks,
    in_period,
    named_by,
    seek,
)
from portal.rosters.models import RosterAck, RosterEntry, RosterVersion
from portal.rosters.schemas import FUNCTIONS
from portal.timefmt import format_local

# --- retention, log review, statistics ---

CURRENT = "Listan är kommunens gällande version."
"""Why a roster version is kept although its time is up: it is still the one in force."""


def _last_end() -> Any:
    """SQL, per roster version: the end of its last entry (None when it has none)."""
    return (
        select(func.max(RosterEntry.valid_to))
        .where(RosterEntry.version_id == RosterVersion.id)
        .scalar_subquery()
    )


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every roster version (of municipality `org_id`, or all), as SQL: its time runs from its
    last entry's end (or its creation when it has none); the municipality's newest is in force
    (busy)."""
    newer = aliased(RosterVersion)
    newest = (
        select(func.max(newer.number))
        .where(newer.municipality_id == RosterVersion.municipality_id)
        .scalar_subquery()
    )
    stmt = select(
        RosterVersion.id,
        func.coalesce(_last_end(), RosterVersion.created_at).label("anchor"),
        busy_flag(RosterVersion.number == newest).label("busy"),
    )
    if org_id:
        stmt = stmt.where(RosterVersion.municipality_id == org_id)
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These roster versions (any number of ids): anchor as in `retention_rows`, and in
    progress while the version is its municipality's newest."""

    async def read(chunk: list[uuid.UUID]) -> list[Lifecycle]:
        versions = list(
            await db.execute(select(RosterVersion, _last_end()).where(RosterVersion.id.in_(chunk)))
        )
        if not versions:
            return []
        # At most one municipality per version of the chunk: bounded like the chunk.
        municipalities = {v.municipality_id for v, _ in versions}
        newest = dict(
            (m, n)
            for m, n in await db.execute(
                select(RosterVersion.municipality_id, func.max(RosterVersion.number))
                .where(RosterVersion.municipality_id.in_(municipalities))
                .group_by(RosterVersion.municipality_id)
            )
        )
        return [
            Lifecycle(
                v.id,
                v.municipality_id,
                last or v.created_at,
                CURRENT if newest.get(v.municipality_id) == v.number else None,
            )
            for v, last in versions
        ]

    return await in_chunks(ids, read)


async def lifecycle(db: AsyncSession, version_id: uuid.UUID) -> Lifecycle | None:
    """One roster version's retention facts, as `lifecycles` gives them (None when it does not
    exist); it has no files."""
    return next(iter(await lifecycles(db, [version_id])), None)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """A roster names staff, not the people the records are about: none (no statement)."""
    return named_by(ids)


async def persons_named(db: AsyncSession, vault: Vault, version_id: uuid.UUID) -> list[str]:
    """A roster names staff, not the people the records are about: none."""
    return []


async def cull(db: AsyncSession, version_id: uuid.UUID) -> None:
    """Delete the roster version with its entries and acknowledgements."""
    await db.execute(delete(RosterEntry).where(RosterEntry.version_id == version_id))
    await db.execute(delete(RosterAck).where(RosterAck.version_id == version_id))
    await db.execute(delete(RosterVersion).where(RosterVersion.id == version_id))


# --- archive ---

KIND = "roster"
LABEL = "Ordförandejourlista"


def _title(municipality: str, number: int) -> str:
    return f"{LABEL} {municipality}, version {number}"


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[RosterVersion, str]:
    stmt = (
        select(RosterVersion, Organisation.name)
        .join(Organisation, Organisation.id == RosterVersion.municipality_id)
        .where(
            (Organisation.jour_id if is_jour else RosterVersion.municipality_id) == org_id,
            *in_period(RosterVersion.created_at, since, until),
        )
    )
    if pnr_index is not None:  # rosters name committee members, never clients
        stmt = stmt.where(false())
    return stmt


async def count(
    db: AsyncSession,
    org_id: uuid.UUID,
    *,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> int:
    """How many records `search` finds."""
    return await count_of(db, _found(org_id, is_jour, since, until, pnr_index))


async def search(
    db: AsyncSession,
    org_id: uuid.UUID,
    *,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
    after: Key | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """The municipality's roster versions, or those of the jour's members, made in the period."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, RosterVersion.created_at, RosterVersion.id, after, limit)
    return [
        Hit(KIND, v.id, _title(name, v.number), v.created_at, "")
        for v, name in await db.execute(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The municipality owns it; it and its jour hold it."""
    v = await db.get(RosterVersion, record_id)
    if v is None:
        return None
    muni = await db.get(Organisation, v.municipality_id)
    holders = {v.municipality_id} | ({muni.jour_id} if muni and muni.jour_id else set())
    return Holding(v.municipality_id, frozenset(holders))


def _when(value: datetime | None) -> str:
    return format_local(value) if value else ""


def _phone(vault: Vault, e: RosterEntry) -> str:
    return (
        vault.decrypt(e.phone_enc, field_context(RosterEntry.phone_enc, e.id))
        if e.phone_enc
        else ""
    )


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The version's entries (name, function, period, phone) and its acknowledgements."""
    v = await db.get(RosterVersion, record_id)
    if v is None:
        return None
    entries = (
        await db.scalars(
            select(RosterEntry).where(RosterEntry.version_id == v.id).order_by(RosterEntry.position)
        )
    ).all()
    acks = (await db.scalars(select(RosterAck).where(RosterAck.version_id == v.id))).all()
    names = await user_names(
        db, vault, [e.user_id for e in entries] + [k.user_id for k in acks] + [v.created_by]
    )
    muni = await db.get(Organisation, v.municipality_id)
    facts = [
        (
            f"{e.position}. {names.get(e.user_id, '')}",
            f"{FUNCTIONS.get(e.function, e.function).lower()}, "
            f"{_when(e.valid_from)}–{_when(e.valid_to)}, tel. {_phone(vault, e)}",
        )
        for e in entries
    ]
    return Record(
        KIND,
        v.id,
        v.municipality_id,
        _title(muni.name if muni else "", v.number),
        v.created_at,
        v.created_at,
        facts,
        [(f"Version {v.number}", v.created_at, names.get(v.created_by, ""))],
        [("Kvitterad av jouren", k.at, names.get(k.user_id, "")) for k in acks],
    )
