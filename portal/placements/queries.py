"""Reading placements: the municipality's register, lookup by blind index, one placement with
its history.

Every read is audited in the request's transaction (lists with the ids they showed); a lookup's
audit entry is written by portal.lookup (or portal.police for the legal-basis check).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from portal import paging
from portal.audit import service as audit
from portal.db.models import Organisation
from portal.errors import AuditNote, Forbidden, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.placements import access
from portal.placements.content import PlacementContent, from_blob, status
from portal.placements.models import Placement, PlacementVersion
from portal.principal import Principal
from portal.records import in_period
from portal.timefmt import STOCKHOLM

LOOKUP_ENDED = timedelta(days=30)
"""A lookup still shows placements that ended this recently, marked "Avslutad"."""
LIST_LIMIT = 500
"""Most rows in one list."""


def today(now: datetime) -> date:
    """The Stockholm date of `now` (placements start and end on calendar days)."""
    return now.astimezone(STOCKHOLM).date()


@dataclass(frozen=True, slots=True)
class Summary:
    """A placement in a list or lookup: its current version."""

    id: uuid.UUID
    """The placement."""
    organisation_name: str
    """The placing municipality."""
    version: int
    """Current version."""
    changed_at: datetime
    """Last change."""
    status: str
    """planned | active | ended (today, Stockholm)."""
    content: PlacementContent
    """What the current version says."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One entry of the version history."""

    version: int
    """Number, from 1."""
    kind: str
    """created | amended."""
    created_at: datetime
    """When."""
    created_by: str
    """Who."""


@dataclass(frozen=True, slots=True)
class Detail:
    """One version of a placement with its history."""

    summary: Summary
    """The current state."""
    shown: VersionInfo
    """The version shown."""
    content: PlacementContent
    """What the shown version says."""
    versions: tuple[VersionInfo, ...]
    """History, newest first."""
    can_change: bool
    """The caller keeps this placement."""


def decode(vault: Vault, ver: PlacementVersion) -> PlacementContent:
    """What one version says, decrypted."""
    blob = vault.decrypt(ver.content_enc, field_context(PlacementVersion.content_enc, ver.id))
    pnr = vault.decrypt(ver.pnr_enc, field_context(PlacementVersion.pnr_enc, ver.id))
    return from_blob(
        blob, pnr, legal_section=ver.legal_section, starts_on=ver.starts_on, ends_on=ver.ends_on
    )


async def version_row(db: AsyncSession, placement_id: uuid.UUID, number: int) -> PlacementVersion:
    """One version row (NotFound if there is no such version)."""
    row = await db.scalar(
        select(PlacementVersion).where(
            PlacementVersion.placement_id == placement_id, PlacementVersion.version == number
        )
    )
    if row is None:
        raise NotFound()
    return row


async def summaries(
    db: AsyncSession, vault: Vault, pls: Sequence[Placement], now: datetime
) -> list[Summary]:
    """Current versions and municipality names of many placements, in 2 queries."""
    if not pls:
        return []
    ids = [pl.id for pl in pls]
    versions = {
        v.placement_id: v
        for v in await db.scalars(
            select(PlacementVersion)
            .join(
                Placement,
                and_(
                    PlacementVersion.placement_id == Placement.id,
                    PlacementVersion.version == Placement.current_version,
                ),
            )
            .where(Placement.id.in_(ids))
        )
    }
    org_rows = await db.execute(
        select(Organisation.id, Organisation.name).where(
            Organisation.id.in_({pl.organisation_id for pl in pls})
        )
    )
    orgs = {org_id: name for org_id, name in org_rows}
    day = today(now)
    return [
        Summary(
            id=pl.id,
            organisation_name=orgs.get(pl.organisation_id, ""),
            version=pl.current_version,
            changed_at=pl.changed_at,
            status=status(pl.starts_on, pl.ends_on, day),
            content=decode(vault, versions[pl.id]),
        )
        for pl in pls
    ]


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What the register's list is narrowed to."""

    status: str | None = None
    """planned | active | ended (on the day the list is read, Stockholm)."""
    legal_basis: str | None = None
    """sol | lvu | lvm."""
    since: datetime | None = None
    """Registered or changed at or after."""
    until: datetime | None = None
    """Registered or changed before."""


def _status_clause(state: str | None, on: date) -> ColumnElement[bool]:
    if state == "planned":
        return Placement.starts_on > on
    if state == "ended":
        return Placement.ends_on.is_not(None) & (Placement.ends_on < on)
    if state == "active":
        return (Placement.starts_on <= on) & or_(
            Placement.ends_on.is_(None), Placement.ends_on >= on
        )
    return true()


async def list_own(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    now: datetime,
    filters: ListFilter = ListFilter(),
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[Summary]:
    """A page of the caller's municipality's register, newest change first (keyset by
    (changed, id); all states unless filtered); audited with the ids shown, each page."""
    own = access.own_orgs(user)
    if not own:
        raise Forbidden(
            "Bara handläggare i en kommun för placeringsregistret.",
            audit=AuditNote("placement.list", "denied"),
        )
    cursor = paging.decode(before)
    where = and_(
        Placement.organisation_id.in_(own),
        _status_clause(filters.status, today(now)),
        Placement.legal_basis == filters.legal_basis if filters.legal_basis else true(),
        *in_period(Placement.changed_at, filters.since, filters.until),
    )
    pls = (
        await db.scalars(
            select(Placement)
            .where(where, paging.after(Placement.changed_at, Placement.id, cursor))
            .order_by(Placement.changed_at.desc(), Placement.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(Placement).where(where))
    rows = await summaries(db, vault, pls[:size], now)
    await audit.record(
        db, "placement.list", actor=user.actor(), object_type=access.OBJECT_TYPE,
        details={"placements": [str(r.id) for r in rows]},
    )  # fmt: skip
    return paging.page_of(
        rows, more=len(pls) > size, cursor=cursor, key=lambda r: (r.changed_at, r.id),
        total=int(total or 0),
    )  # fmt: skip


async def find_by_pnr_index(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Planned, current and recently ended placements of one person that the caller may see,
    latest start first. Uses the index on placement_versions.pnr_index; the caller audits."""
    return await _found(db, vault, user, PlacementVersion.pnr_index == pnr_index, now=now)


async def find_by_ids(
    db: AsyncSession, vault: Vault, user: Principal, ids: set[uuid.UUID], *, now: datetime
) -> list[Summary]:
    """Of these placements (found by name, portal.lookup.names), the planned, current and
    recently ended ones the caller may see, latest start first; the caller audits."""
    if not ids:
        return []
    return await _found(db, vault, user, Placement.id.in_(ids), now=now)


async def _found(
    db: AsyncSession, vault: Vault, user: Principal, which: ColumnElement[bool], *, now: datetime
) -> list[Summary]:
    recent = today(now) - LOOKUP_ENDED
    pls = (
        await db.scalars(
            select(Placement)
            .join(
                PlacementVersion,
                and_(
                    PlacementVersion.placement_id == Placement.id,
                    PlacementVersion.version == Placement.current_version,
                ),
            )
            .where(
                which,
                access.visible(user),
                or_(Placement.ends_on.is_(None), Placement.ends_on >= recent),
            )
            .order_by(Placement.starts_on.desc())
            .limit(LIST_LIMIT)
        )
    ).all()
    return await summaries(db, vault, list(dict.fromkeys(pls)), now)


async def get(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    placement_id: uuid.UUID,
    *,
    now: datetime,
    version: int | None = None,
) -> Detail:
    """One placement (the current or an earlier version) with its history; audited."""
    pl = await access.get_visible(db, user, placement_id, "placement.read")
    (summary,) = await summaries(db, vault, [pl], now)
    shown_row = await version_row(db, pl.id, version or pl.current_version)
    rows = (
        await db.scalars(
            select(PlacementVersion)
            .where(PlacementVersion.placement_id == pl.id)
            .order_by(PlacementVersion.version.desc())
        )
    ).all()
    names = await user_names(db, vault, [v.created_by for v in rows])
    infos = tuple(
        VersionInfo(v.version, v.kind, v.created_at, names.get(v.created_by, "")) for v in rows
    )
    await audit.record(
        db, "placement.read", actor=access.actor_for(user, pl), owner_org_id=pl.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=pl.id, details={"version": shown_row.version},
    )  # fmt: skip
    return Detail(
        summary=summary,
        shown=next(i for i in infos if i.version == shown_row.version),
        content=decode(vault, shown_row),
        versions=infos,
        can_change=pl.organisation_id in access.own_orgs(user),
    )
