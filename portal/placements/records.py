"""The one interface other features use to read placements (lookup, police requests, archive,
retention, log review).

Other features never import portal.placements.models; they go through these functions, which
apply the caller's visibility. The caller writes the audit entry of the search (the lookup
audits the blind index, never the number).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.lookup import names as name_index
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.placements import queries
from portal.placements.content import LEGAL_BASES, PLACE_KINDS, SECTIONS, STATUS_LABELS
from portal.placements.models import Placement, PlacementVersion
from portal.placements.queries import Summary
from portal.principal import Principal
from portal.records import (
    Anchored,
    Hit,
    Holding,
    Lifecycle,
    Person,
    Record,
    busy_flag,
    chunked,
    count_of,
    in_period,
    lifecycle_of,
    lifecycles_of,
    named_by,
    seek,
)
from portal.timefmt import STOCKHOLM

__all__ = [
    "KIND", "LABEL", "Summary", "count", "cull", "describe", "describe_section", "find_by_name",
    "find_by_person", "holding", "ids_about", "legal_basis_label", "lifecycle", "lifecycles",
    "persons_named", "persons_named_many", "place_kind_label", "reindex_names", "retention_rows",
    "search", "status_label",
]  # fmt: skip


async def find_by_person(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Planned, current and recently ended (30 days) placements of the person with this blind
    index that the caller may see, latest start first (not audited: the caller audits)."""
    return await queries.find_by_pnr_index(db, vault, user, pnr_index, now=now)


async def find_by_name(
    db: AsyncSession, vault: Vault, user: Principal, name: str, *, now: datetime
) -> list[Summary]:
    """Planned, current and recently ended (30 days) placements whose person's name (current
    version) has every word of `name` (portal.lookup.names), that the caller may see, latest
    start first (not audited: the caller audits)."""
    ids = await name_index.owners_named(db, vault, KIND, name) or set()
    return await queries.find_by_ids(db, vault, user, ids, now=now)


async def reindex_names(db: AsyncSession, vault: Vault) -> int:
    """Rebuild the name index of every placement (its current version's name); how many.
    For placements registered before they were indexed (`jourpost lookup reindex-names`)."""
    rows = await db.scalars(
        select(PlacementVersion).join(
            Placement,
            and_(
                PlacementVersion.placement_id == Placement.id,
                PlacementVersion.version == Placement.current_version,
            ),
        )
    )
    count = 0
    for ver in rows.all():
        name = queries.decode(vault, ver).name
        await name_index.index_names(db, vault, KIND, ver.placement_id, [name])
        count += 1
    return count


def describe_section(code: str) -> str:
    """The Swedish label of a legal section code ("3 § LVU – eget beteende")."""
    return SECTIONS[code][1] if code in SECTIONS else code


def legal_basis_label(code: str) -> str:
    """The Swedish label of a legal basis (sol | lvu | lvm)."""
    return LEGAL_BASES.get(code, code)


def place_kind_label(code: str) -> str:
    """The Swedish label of a kind of home or institution."""
    return PLACE_KINDS.get(code, code)


def status_label(code: str) -> str:
    """The Swedish label of planned | active | ended."""
    return STATUS_LABELS.get(code, code)


# --- retention, log review ---

KIND = "placement"
LABEL = "Placering"


def _day(value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=STOCKHOLM).astimezone(UTC)


def _life(pl: Placement) -> Lifecycle:
    # The time runs from the last day of the placement; an ongoing one is never culled.
    in_progress = None if pl.ends_on else "Placeringen pågår (inget slutdatum)."
    return Lifecycle(pl.id, pl.organisation_id, _day(pl.ends_on or pl.starts_on), in_progress)


def _to_day(moment: datetime) -> date:
    return moment.astimezone(STOCKHOLM).date()


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every placement (of `org_id`, or all) with its retention anchor (its last day; the
    first while it has none) and whether it is ongoing, as SQL. The anchor column is a date:
    `_day` of it is the moment, and a moment is on or after `_day(d)` exactly when its
    Stockholm date is on or after `d`, so comparing dates selects the same records."""
    stmt = select(
        Placement.id,
        func.coalesce(Placement.ends_on, Placement.starts_on).label("anchor"),
        busy_flag(Placement.ends_on.is_(None)).label("busy"),
    )
    if org_id:
        stmt = stmt.where(Placement.organisation_id == org_id)
    return Anchored(stmt, to_sql=_to_day, from_sql=_day)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These placements with their retention anchor (one page of retention's list)."""
    return await lifecycles_of(db, Placement, _life, Placement.id, ids)


async def lifecycle(db: AsyncSession, placement_id: uuid.UUID) -> Lifecycle | None:
    """One placement's retention facts (None when it does not exist)."""
    return await lifecycle_of(db, Placement, placement_id, _life)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer each placement's versions name, each once and sorted (decrypted; read
    only when a rule needs them): one statement per `IN_CHUNK` placements."""
    found: dict[uuid.UUID, set[str]] = {placement_id: set() for placement_id in ids}
    for chunk in chunked(ids):
        rows = await db.execute(
            select(
                PlacementVersion.placement_id, PlacementVersion.id, PlacementVersion.pnr_enc
            ).where(PlacementVersion.placement_id.in_(chunk))
        )
        for placement_id, version_id, pnr_enc in rows:
            found[placement_id].add(
                vault.decrypt(pnr_enc, field_context(PlacementVersion.pnr_enc, version_id))
            )
    named = named_by(ids)
    for placement_id, persons in found.items():
        named[placement_id] = sorted(persons)
    return named


async def persons_named(db: AsyncSession, vault: Vault, placement_id: uuid.UUID) -> list[str]:
    """The personnummer its versions name (decrypted; read only when a rule needs them)."""
    return (await persons_named_many(db, vault, [placement_id]))[placement_id]


async def cull(db: AsyncSession, placement_id: uuid.UUID) -> None:
    """Delete the placement and its versions (a police request that pointed at it keeps what
    its check said, and forgets the link)."""
    from portal.police import records as police

    await police.forget_placement(db, placement_id)
    await name_index.forget(db, KIND, placement_id)
    await db.execute(delete(PlacementVersion).where(PlacementVersion.placement_id == placement_id))
    await db.execute(delete(Placement).where(Placement.id == placement_id))


def ids_about_query(pnr_index: str | ColumnElement[str]) -> Select[uuid.UUID]:
    """The placements (any version) about the person with this blind index, as a statement
    (the lookup asks whether any exist in the same query as its other checks; indexed)."""
    return select(PlacementVersion.placement_id).where(PlacementVersion.pnr_index == pnr_index)


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The placements (any version) about the person with this blind index."""
    return set(await db.scalars(ids_about_query(pnr_index)))


# --- archive ---


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt = select(Placement).where(
        Placement.organisation_id == org_id, *in_period(Placement.created_at, since, until)
    )
    if is_jour:  # the register is the municipality's; the jour only reads it and holds none
        stmt = stmt.where(false())
    if pnr_index is not None:
        about = select(PlacementVersion.placement_id).where(PlacementVersion.pnr_index == pnr_index)
        stmt = stmt.where(Placement.id.in_(about))
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
    """The municipality's placements registered in the period (the register is the
    municipality's; the jour only reads it and holds none)."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, Placement.created_at, Placement.id, after, limit)
    return [
        Hit(KIND, pl.id, f"{LABEL} enligt {legal_basis_label(pl.legal_basis)}", pl.created_at,
            f"version {pl.current_version}")
        for pl in await db.scalars(stmt)
    ]  # fmt: skip


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The municipality owns and holds its register."""
    pl = await db.get(Placement, record_id)
    return Holding(pl.organisation_id, frozenset({pl.organisation_id})) if pl else None


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The current version decrypted, and every version as a step."""
    pl = await db.get(Placement, record_id)
    if pl is None:
        return None
    rows = (
        await db.scalars(
            select(PlacementVersion)
            .where(PlacementVersion.placement_id == pl.id)
            .order_by(PlacementVersion.version)
        )
    ).all()
    c = queries.decode(vault, rows[-1])
    names = await user_names(db, vault, [v.created_by for v in rows])
    facts = [
        ("Person 1", f"{c.name} {c.personnummer}"),
        ("Lagrum", describe_section(c.legal_section)),
        ("Placerad hos", f"{place_kind_label(c.place_kind)}: {c.place_name}"),
        ("Adress", c.place_address),
        ("Telefon", c.place_phone),
        ("Period", f"{c.starts_on.isoformat()} – {c.ends_on.isoformat() if c.ends_on else ''}"),
        ("Till socialjouren", c.note),
    ]
    steps = [
        (f"Version {v.version}: {'Registrerad' if v.kind == 'created' else 'Ändrad'}",
         v.created_at, names.get(v.created_by, ""))
        for v in rows
    ]  # fmt: skip
    return Record(
        KIND, pl.id, pl.organisation_id, f"{LABEL} enligt {legal_basis_label(pl.legal_basis)}",
        pl.created_at, pl.created_at, facts, steps, [],
        persons=[Person("Person 1", c.name, c.personnummer)],
    )  # fmt: skip
