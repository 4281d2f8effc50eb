"""Reading advisories: lists, the night view, lookup by blind index, one advisory with history.

Every read is audited in the request's transaction (lists with the ids they showed); the
lookup's audit entry is written by portal.lookup. Who may read what: portal.advisories.access.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from portal import paging
from portal.advisories import access
from portal.advisories.content import AdvisoryContent, Subject, from_blob
from portal.advisories.models import (
    Advisory,
    AdvisoryAcknowledgement,
    AdvisorySubject,
    AdvisoryVersion,
)
from portal.attachments import service as attachments
from portal.attachments.service import AttachmentView, OpenedFile
from portal.audit import service as audit
from portal.db.engine import core_execute
from portal.db.models import Organisation, Unit, User
from portal.db.reads import Read, Rows
from portal.errors import AuditNote, Forbidden, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.principal import Principal
from portal.records import in_period
from portal.timefmt import STOCKHOLM
from storage import EncryptedObjectStore

OWNER_TYPE = "advisory"
"""owner_type of advisory attachments."""
NIGHT_VIEW_EXPIRED = timedelta(days=7)
"""The night view keeps expired advisories this long, marked "Utgången"."""
LOOKUP_EXPIRED = timedelta(days=30)
EXPIRES_SOON = timedelta(days=2)
"""Marked "Går ut snart" in lists and on the advisory (the reminder e-mail's window)."""
"""A lookup shows advisories that expired this recently, marked "Utgången"."""
LIST_LIMIT = 200
"""Most rows in one list."""


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement by the jour."""

    version: int
    """The acknowledged version."""
    user_name: str
    """Who acknowledged."""
    at: datetime
    """When."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One entry of the version history."""

    version: int
    """Number, from 1."""
    kind: str
    """created | amended | reconfirmed."""
    created_at: datetime
    """When."""
    created_by: str
    """Who."""
    valid_until: datetime
    """Validity set by this version."""


@dataclass(frozen=True, slots=True)
class Summary:
    """An advisory in a list: its current version, briefly."""

    id: uuid.UUID
    """The advisory."""
    organisation_name: str
    """Sending municipality."""
    status: str
    """active | withdrawn."""
    version: int
    """Current version."""
    created_at: datetime
    """First posted."""
    changed_at: datetime
    """Content last changed."""
    confirmed_at: datetime
    """Last version (amend or re-confirmation)."""
    valid_until: datetime
    """Expiry."""
    expired: bool
    """valid_until has passed."""
    expires_soon: bool
    """Active and expiring within EXPIRES_SOON (the handler's reminder e-mail goes out then)."""
    legal_basis: str
    """none | sol | lvu | lvm."""
    subjects: tuple[Subject, ...]
    """The persons (current version)."""
    acknowledged: bool
    """The jour acknowledged the current content."""
    last_ack: Ack | None
    """The newest acknowledgement."""


@dataclass(frozen=True, slots=True)
class Detail:
    """One version of an advisory with everything around it."""

    summary: Summary
    """The advisory's current state."""
    shown: VersionInfo
    """The version shown (current unless a history entry was asked for)."""
    content: AdvisoryContent
    """What the shown version says."""
    jour_name: str
    """The jour it is addressed to."""
    unit_name: str | None
    """The sending unit."""
    versions: tuple[VersionInfo, ...]
    """History, newest first."""
    acks: tuple[Ack, ...]
    """Acknowledgements, newest first."""
    attachments: tuple[AttachmentView, ...]
    """Attached files."""
    withdrawn_at: datetime | None
    """When withdrawn."""
    withdrawn_by: str | None
    """Who withdrew."""
    withdraw_reason: str | None
    """Why."""
    can_change: bool
    """The caller may amend, re-confirm, withdraw and attach."""
    can_acknowledge: bool
    """The caller may acknowledge the current version (and has not yet)."""


async def version_row(db: AsyncSession, advisory_id: uuid.UUID, number: int) -> AdvisoryVersion:
    """One version row (NotFound if there is no such version)."""
    row = await db.scalar(
        select(AdvisoryVersion).where(
            AdvisoryVersion.advisory_id == advisory_id, AdvisoryVersion.version == number
        )
    )
    if row is None:
        raise NotFound()
    return row


def _decrypt_subjects(vault: Vault, rows: Iterable[AdvisorySubject]) -> dict[int, str]:
    return {
        s.position: vault.decrypt(s.pnr_enc, field_context(AdvisorySubject.pnr_enc, s.id))
        for s in rows
    }


def _decode(vault: Vault, ver: AdvisoryVersion, subjects: dict[int, str]) -> AdvisoryContent:
    blob = vault.decrypt(ver.content_enc, field_context(AdvisoryVersion.content_enc, ver.id))
    return from_blob(blob, subjects, legal_basis=ver.legal_basis, valid_until=ver.valid_until)


async def content_of(db: AsyncSession, vault: Vault, ver: AdvisoryVersion) -> AdvisoryContent:
    """What one version says, decrypted."""
    rows = await db.scalars(
        select(AdvisorySubject).where(
            AdvisorySubject.advisory_id == ver.advisory_id, AdvisorySubject.version == ver.version
        )
    )
    return _decode(vault, ver, _decrypt_subjects(vault, rows))


async def _summaries(
    db: AsyncSession, vault: Vault, advs: Sequence[Advisory], now: datetime
) -> list[Summary]:
    """Current version, subjects, acknowledgements and names of many advisories, in 5 queries."""
    return (await _summaries_with_content(db, vault, advs, now))[0]


async def _summaries_with_content(
    db: AsyncSession, vault: Vault, advs: Sequence[Advisory], now: datetime
) -> tuple[list[Summary], dict[uuid.UUID, AdvisoryContent]]:
    """The summaries of `_summaries` and each advisory's current content, decrypted once (the
    lookup shows both: no second read of the versions and subjects)."""
    if not advs:
        return [], {}
    ids = [a.id for a in advs]
    current = and_(
        AdvisoryVersion.advisory_id == Advisory.id,
        AdvisoryVersion.version == Advisory.current_version,
    )
    versions = {
        v.advisory_id: v
        for v in await db.scalars(
            select(AdvisoryVersion).join(Advisory, current).where(Advisory.id.in_(ids))
        )
    }
    subjects: dict[uuid.UUID, list[AdvisorySubject]] = {}
    subject_rows = await db.scalars(
        select(AdvisorySubject)
        .join(
            Advisory,
            and_(
                AdvisorySubject.advisory_id == Advisory.id,
                AdvisorySubject.version == Advisory.current_version,
            ),
        )
        .where(Advisory.id.in_(ids))
    )
    for s in subject_rows:
        subjects.setdefault(s.advisory_id, []).append(s)
    acks: dict[uuid.UUID, list[AdvisoryAcknowledgement]] = {}
    ack_rows = await db.scalars(
        select(AdvisoryAcknowledgement)
        .where(AdvisoryAcknowledgement.advisory_id.in_(ids))
        .order_by(AdvisoryAcknowledgement.at.desc())
    )
    for a in ack_rows:
        acks.setdefault(a.advisory_id, []).append(a)
    names = await user_names(db, vault, (a.user_id for rows in acks.values() for a in rows))
    org_rows = await db.execute(
        select(Organisation.id, Organisation.name).where(
            Organisation.id.in_({a.organisation_id for a in advs})
        )
    )
    orgs = {org_id: name for org_id, name in org_rows}
    result = []
    contents: dict[uuid.UUID, AdvisoryContent] = {}
    for adv in advs:
        content = _decode(
            vault, versions[adv.id], _decrypt_subjects(vault, subjects.get(adv.id, []))
        )
        contents[adv.id] = content
        own_acks = acks.get(adv.id, [])
        last = own_acks[0] if own_acks else None
        result.append(
            Summary(
                id=adv.id,
                organisation_name=orgs.get(adv.organisation_id, ""),
                status=adv.status,
                version=adv.current_version,
                created_at=adv.created_at,
                changed_at=adv.changed_at,
                confirmed_at=adv.confirmed_at,
                valid_until=adv.valid_until,
                expired=adv.valid_until <= now,
                expires_soon=now < adv.valid_until <= now + EXPIRES_SOON,
                legal_basis=adv.legal_basis,
                subjects=content.subjects,
                acknowledged=any(a.version >= adv.content_version for a in own_acks),
                last_ack=Ack(last.version, names.get(last.user_id, ""), last.at) if last else None,
            )
        )
    return result, contents


async def _audit_list(
    db: AsyncSession, user: Principal, scope: str, rows: Sequence[Summary]
) -> None:
    await audit.record(
        db, "advisory.list", actor=user.actor(), object_type="advisory",
        details={"scope": scope, "advisories": [str(r.id) for r in rows]},
    )  # fmt: skip


SENT_STATUSES = {
    "all": "Alla",
    "active": "Aktiva",
    "expiring": "Går ut snart",
    "expired": "Utgångna",
    "withdrawn": "Återkallade",
}
"""Filters of the handler's list, with their Swedish labels."""


@dataclass(frozen=True, slots=True)
class SentFilter:
    """What the handler's list of sent advisories is narrowed to."""

    status: str = "all"
    """A key of SENT_STATUSES."""
    unit_id: uuid.UUID | None = None
    """Sent from this unit only."""
    legal_basis: str | None = None
    """none | sol | lvu | lvm."""
    since: datetime | None = None
    """Posted at or after."""
    until: datetime | None = None
    """Posted before."""


def _sent_clause(f: SentFilter, now: datetime) -> ColumnElement[bool]:
    active = Advisory.status == "active"
    status = {
        "active": active & (Advisory.valid_until > now),
        "expiring": active & (Advisory.valid_until > now)
        & (Advisory.valid_until <= now + EXPIRES_SOON),
        "expired": active & (Advisory.valid_until <= now),
        "withdrawn": Advisory.status == "withdrawn",
    }.get(f.status, true())  # fmt: skip
    return and_(
        status,
        Advisory.unit_id == f.unit_id if f.unit_id else true(),
        Advisory.legal_basis == f.legal_basis if f.legal_basis else true(),
        *in_period(Advisory.created_at, f.since, f.until),
    )


async def list_sent(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    now: datetime,
    filters: SentFilter = SentFilter(),
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[Summary]:
    """A page of the caller's municipality's advisories, newest first (all states unless
    filtered), after the cursor `before`; audited with the ids shown, like every list."""
    own = access.own_orgs(user)
    if not own:
        raise Forbidden(audit=AuditNote("advisory.list", "denied", details={"scope": "sent"}))
    cursor = paging.decode(before)
    where = Advisory.organisation_id.in_(own) & _sent_clause(filters, now)
    advs = (
        await db.scalars(
            select(Advisory)
            .where(where, paging.after(Advisory.created_at, Advisory.id, cursor))
            .order_by(Advisory.created_at.desc(), Advisory.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(Advisory).where(where))
    rows = await _summaries(db, vault, advs[:size], now)
    await _audit_list(db, user, "sent", rows)
    return paging.page_of(
        rows,
        more=len(advs) > size,
        cursor=cursor,
        key=lambda r: (r.created_at, r.id),
        total=int(total or 0),
    )


async def sender_units(db: AsyncSession, user: Principal) -> list[tuple[uuid.UUID, str]]:
    """The units of the caller's municipalities (the handler's list filters by them)."""
    rows = await db.execute(
        select(Unit.id, Unit.name)
        .where(Unit.organisation_id.in_(access.own_orgs(user)))
        .order_by(Unit.name)
    )
    return [(uid, name) for uid, name in rows]


async def list_for_jour(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    now: datetime,
    before: str | None = None,
    size: int = PAGE_SIZE,
    since: datetime | None = None,
) -> Page[Summary]:
    """The night view: a page of the active advisories to the caller's jour (and those expired
    within NIGHT_VIEW_EXPIRED), newest first, after the cursor `before`, with the count of all;
    audited with the ids shown.

    With `since` (the night dashboard's "Visa alla"): only the advisories posted or changed at or
    after `since` that have not expired — the dashboard's definition, `changed_since` — most
    recently changed first, as the dashboard lists them."""
    jours = access.jour_orgs(user)
    if not jours:
        raise Forbidden(audit=AuditNote("advisory.list", "denied", details={"scope": "jour"}))
    cursor = paging.decode(before)
    where = Advisory.jour_id.in_(jours) & (Advisory.status == "active")
    if since is None:
        where &= Advisory.valid_until > now - NIGHT_VIEW_EXPIRED
        time_col = Advisory.created_at
    else:
        where &= (Advisory.valid_until > now) & changed_since(since)
        time_col = Advisory.changed_at
    advs = (
        await db.scalars(
            select(Advisory)
            .where(where, paging.after(time_col, Advisory.id, cursor))
            .order_by(time_col.desc(), Advisory.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(Advisory).where(where))
    rows = await _summaries(db, vault, advs[:size], now)
    await _audit_list(db, user, "jour", rows)
    return paging.page_of(
        rows,
        more=len(advs) > size,
        cursor=cursor,
        key=(lambda r: (r.created_at, r.id)) if since is None else (lambda r: (r.changed_at, r.id)),
        total=int(total or 0),
    )


def since_param(since: datetime) -> str:
    """`since` as a link to the filtered night view carries it: ISO 8601 in UTC with "Z" (no "+"
    to encode in a URL)."""
    return since.astimezone(UTC).isoformat().replace("+00:00", "Z")


def changed_since(since: Any) -> ColumnElement[bool]:
    """SQL: the advisory was posted or its content changed at or after `since` (a datetime or a
    bind parameter). A re-confirmation alone does not count: it changes nothing the jour read."""
    return or_(Advisory.created_at >= since, Advisory.changed_at >= since)


@dataclass(frozen=True, slots=True)
class Brief:
    """An advisory on the jour's night dashboard: what the dashboard shows of it, nothing
    decrypted."""

    id: uuid.UUID
    """The advisory."""
    organisation_name: str
    """Sending municipality."""
    version: int
    """Current version."""
    created_at: datetime
    """First posted."""
    changed_at: datetime
    """Content last changed."""
    valid_until: datetime
    """Expiry."""
    expired: bool
    """valid_until has passed."""
    expires_soon: bool
    """Active and expiring within EXPIRES_SOON."""
    acknowledged: bool
    """The jour acknowledged the current content."""


DASHBOARD_LIMIT = 20
"""Most advisories new or changed this shift that the night dashboard lists (most recently
changed first); when there are more it says how many and links to the jour's view filtered to
the shift (`list_for_jour(since=…)`), which pages through all of them. docs/night-shift.md."""


@dataclass(frozen=True, slots=True)
class DashboardAdvisories:
    """The night dashboard's advisories: the changed ones it lists and the counts it shows."""

    changed: list[Brief]
    """Not expired, posted or changed since the shift started, most recently changed first; at
    most DASHBOARD_LIMIT."""
    changed_total: int
    """How many there are in all (more than `changed` when the list is capped)."""
    expiring: int
    """Active advisories that expire within EXPIRES_SOON."""


_CHANGED = changed_since(bindparam("since"))
_EXPIRING = Advisory.valid_until <= bindparam("soon")

# The night dashboard's advisories, built once, in one statement of plain columns: the jour's
# active advisories that changed this shift or expire soon, those that changed first (most
# recently changed first), each with its sender's name and whether the current content is
# acknowledged, and on every row the counts of both kinds over all of them (window sums, computed
# before the LIMIT). No rows means no changed and none expiring.
_DASHBOARD = (
    select(
        Advisory.id,
        Organisation.name,
        Advisory.current_version,
        Advisory.created_at,
        Advisory.changed_at,
        Advisory.valid_until,
        select(AdvisoryAcknowledgement.id)
        .where(
            AdvisoryAcknowledgement.advisory_id == Advisory.id,
            AdvisoryAcknowledgement.version >= Advisory.content_version,
        )
        .exists(),
        _CHANGED,
        func.sum(case((_CHANGED, 1), else_=0)).over(),
        func.sum(case((_EXPIRING, 1), else_=0)).over(),
    )
    .join(Organisation, Organisation.id == Advisory.organisation_id)
    .where(
        Advisory.jour_id.in_(bindparam("jours", expanding=True)),
        Advisory.status == "active",
        Advisory.valid_until > bindparam("now"),
        or_(_CHANGED, _EXPIRING),
    )
    .order_by(case((_CHANGED, 0), else_=1), Advisory.changed_at.desc(), Advisory.id.desc())
    .limit(DASHBOARD_LIMIT)
)


def dashboard_read(user: Principal, *, now: datetime, since: datetime) -> Read:
    """The night dashboard's advisories as a read (`portal.db.reads`): those new or changed at
    or after `since` and those expiring soon, in one statement; `dashboard_from_rows` turns its
    rows into what the dashboard shows and the list's audit entry."""
    jours = access.jour_orgs(user)
    if not jours:
        raise Forbidden(audit=AuditNote("advisory.list", "denied", details={"scope": "jour"}))
    return Read(
        _DASHBOARD, {"jours": list(jours), "now": now, "since": since, "soon": now + EXPIRES_SOON}
    )


def dashboard_from_rows(
    rows: Rows, user: Principal, *, now: datetime
) -> tuple[DashboardAdvisories, audit.NewEntry]:
    """The rows of `dashboard_read`: the changed advisories (at most DASHBOARD_LIMIT, with the
    count of all) and how many expire soon; and the audit entry of the list, naming exactly the
    advisories listed (for the caller to append with the page's other entries)."""
    soon = now + EXPIRES_SOON
    changed = [
        Brief(
            id=adv_id,
            organisation_name=org_name,
            version=version,
            created_at=created_at,
            changed_at=changed_at,
            valid_until=valid_until,
            expired=valid_until <= now,
            expires_soon=now < valid_until <= soon,
            acknowledged=bool(acknowledged),
        )
        for (
            adv_id,
            org_name,
            version,
            created_at,
            changed_at,
            valid_until,
            acknowledged,
            is_changed,
            *_,
        ) in rows
        if is_changed  # the expiring ones after them are only counted
    ]
    changed_total, expiring = (int(n or 0) for n in rows[0][-2:]) if rows else (0, 0)
    entry = audit.NewEntry(
        "advisory.list", actor=user.actor(), object_type="advisory",
        details={"scope": "jour", "advisories": [str(b.id) for b in changed]},
    )  # fmt: skip
    return DashboardAdvisories(changed, changed_total, expiring), entry


async def list_for_dashboard(
    db: AsyncSession, user: Principal, *, now: datetime, since: datetime
) -> tuple[DashboardAdvisories, audit.NewEntry]:
    """`dashboard_read` executed alone, parsed by `dashboard_from_rows`."""
    read = dashboard_read(user, now=now, since=since)
    rows = (await core_execute(db, read.statement, read.params)).all()
    return dashboard_from_rows(rows, user, now=now)


async def find_by_ids(
    db: AsyncSession, vault: Vault, user: Principal, ids: set[uuid.UUID], *, now: datetime
) -> list[Summary]:
    """Active and recently expired advisories among `ids` that the caller may see (a name
    search's matches; the caller audits)."""
    return (await find_by_ids_with_content(db, vault, user, ids, now=now))[0]


async def find_by_ids_with_content(
    db: AsyncSession, vault: Vault, user: Principal, ids: set[uuid.UUID], *, now: datetime
) -> tuple[list[Summary], dict[uuid.UUID, AdvisoryContent]]:
    """`find_by_ids` and each found advisory's current content."""
    if not ids:
        return [], {}
    advs = (
        await db.scalars(
            select(Advisory)
            .where(
                Advisory.id.in_(ids),
                access.visible(user),
                Advisory.status == "active",
                Advisory.valid_until > now - LOOKUP_EXPIRED,
            )
            .order_by(Advisory.valid_until.desc())
            .limit(LIST_LIMIT)
        )
    ).all()
    return await _summaries_with_content(db, vault, list(advs), now)


async def find_by_pnr_index(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Active and recently expired advisories about one person that the caller may see.

    Uses the index on advisory_subjects.pnr_index: the cost depends on the person's advisories,
    not on the archive's size. The caller (lookup) writes the audit entry.
    """
    return (await find_by_pnr_index_with_content(db, vault, user, pnr_index, now=now))[0]


_LAST_ACK = aliased(AdvisoryAcknowledgement, name="last_ack")
_ACK_OF = aliased(AdvisoryAcknowledgement, name="ack_of")
_ACKER = aliased(User, name="acker")


def _pnr_lookup() -> Select[*tuple[Any, ...]]:
    """The lookup's advisories about one person, with everything their summaries and contents
    need, in one statement: one row per (advisory, current subject), latest expiry first. The
    advisories are picked through the index on advisory_subjects.pnr_index (at most LIST_LIMIT);
    the current version, the sending municipality's name, the subjects, whether an
    acknowledgement covers the content and the newest acknowledgement with its author's name
    are joined to them."""
    picked = (
        select(Advisory.id, Advisory.valid_until)
        .join(
            AdvisorySubject,
            and_(
                AdvisorySubject.advisory_id == Advisory.id,
                AdvisorySubject.version == Advisory.current_version,
            ),
        )
        .where(
            AdvisorySubject.pnr_index == bindparam("pnr_index"),
            access.VISIBLE,
            Advisory.status == "active",
            Advisory.valid_until > bindparam("expired_since"),
        )
        .distinct()
        .order_by(Advisory.valid_until.desc())
        .limit(LIST_LIMIT)
        .subquery("picked")
    )
    newest_ack = (
        select(_ACK_OF.id)
        .where(_ACK_OF.advisory_id == Advisory.id)
        .order_by(_ACK_OF.at.desc())
        .limit(1)
        .scalar_subquery()
    )
    covered = (
        select(AdvisoryAcknowledgement.id)
        .where(
            AdvisoryAcknowledgement.advisory_id == Advisory.id,
            AdvisoryAcknowledgement.version >= Advisory.content_version,
        )
        .exists()
    )
    return (
        select(
            Advisory.id,
            Advisory.organisation_id,
            Advisory.status,
            Advisory.current_version,
            Advisory.created_at,
            Advisory.changed_at,
            Advisory.confirmed_at,
            Advisory.valid_until,
            Advisory.legal_basis,
            AdvisoryVersion.id,
            AdvisoryVersion.content_enc,
            AdvisoryVersion.legal_basis,
            AdvisoryVersion.valid_until,
            Organisation.name,
            covered,
            _LAST_ACK.version,
            _LAST_ACK.at,
            _ACKER.id,
            _ACKER.name_enc,
            AdvisorySubject.id,
            AdvisorySubject.position,
            AdvisorySubject.pnr_enc,
        )
        .select_from(picked)
        .join(Advisory, Advisory.id == picked.c.id)
        .join(
            AdvisoryVersion,
            and_(
                AdvisoryVersion.advisory_id == Advisory.id,
                AdvisoryVersion.version == Advisory.current_version,
            ),
        )
        .outerjoin(Organisation, Organisation.id == Advisory.organisation_id)
        .outerjoin(
            AdvisorySubject,
            and_(
                AdvisorySubject.advisory_id == Advisory.id,
                AdvisorySubject.version == Advisory.current_version,
            ),
        )
        .outerjoin(_LAST_ACK, _LAST_ACK.id == newest_ack)
        .outerjoin(_ACKER, _ACKER.id == _LAST_ACK.user_id)
        .order_by(picked.c.valid_until.desc(), Advisory.id, AdvisorySubject.position)
    )


PNR_LOOKUP = _pnr_lookup()
"""Built once (building it per request cost more than running it); parameters
`pnr_lookup_params`. Its rows go to `pnr_lookup_summaries`; portal.lookup.service runs it
outer-joined to its probe, in one statement."""


def pnr_lookup_params(user: Principal, pnr_index: str, *, now: datetime) -> dict[str, Any]:
    """The parameters of `PNR_LOOKUP`."""
    return {
        "pnr_index": pnr_index,
        "expired_since": now - LOOKUP_EXPIRED,
        **access.visible_params(user),
    }


async def find_by_pnr_index_with_content(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> tuple[list[Summary], dict[uuid.UUID, AdvisoryContent]]:
    """`find_by_pnr_index` and each found advisory's current content (the lookup shows both), in
    one query (`PNR_LOOKUP`; the same summaries `_summaries_with_content` builds)."""
    conn = await db.connection()  # Core rows: no ORM result machinery
    rows = (await conn.execute(PNR_LOOKUP, pnr_lookup_params(user, pnr_index, now=now))).all()
    return pnr_lookup_summaries(vault, rows, now=now)


def pnr_lookup_summaries(
    vault: Vault, rows: Sequence[Sequence[Any]], *, now: datetime
) -> tuple[list[Summary], dict[uuid.UUID, AdvisoryContent]]:
    """The summaries and contents `PNR_LOOKUP`'s rows describe (rows in its column order; a row
    whose first column is None — an outer join that found nothing — is skipped)."""
    by_id: dict[uuid.UUID, list[Sequence[Any]]] = {}
    for row in rows:
        if row[0] is not None:
            by_id.setdefault(row[0], []).append(row)
    result: list[Summary] = []
    contents: dict[uuid.UUID, AdvisoryContent] = {}
    for adv_id, adv_rows in by_id.items():
        (
            _, _, status, current_version, created_at, changed_at, confirmed_at, valid_until,
            legal_basis, version_id, content_enc, version_basis, version_until, org_name,
            acknowledged, ack_version, ack_at, acker_id, acker_name_enc, *_,
        ) = adv_rows[0]  # fmt: skip
        subjects = {
            position: vault.decrypt(pnr_enc, field_context(AdvisorySubject.pnr_enc, subject_id))
            for *_, subject_id, position, pnr_enc in adv_rows
            if subject_id is not None
        }
        blob = vault.decrypt(content_enc, field_context(AdvisoryVersion.content_enc, version_id))
        content = from_blob(blob, subjects, legal_basis=version_basis, valid_until=version_until)
        contents[adv_id] = content
        last_ack = None
        if ack_version is not None:
            acker = (
                vault.decrypt(acker_name_enc, field_context(User.name_enc, acker_id))
                if acker_id is not None
                else ""
            )
            last_ack = Ack(ack_version, acker, ack_at)
        result.append(
            Summary(
                id=adv_id,
                organisation_name=org_name or "",
                status=status,
                version=current_version,
                created_at=created_at,
                changed_at=changed_at,
                confirmed_at=confirmed_at,
                valid_until=valid_until,
                expired=valid_until <= now,
                expires_soon=now < valid_until <= now + EXPIRES_SOON,
                legal_basis=legal_basis,
                subjects=content.subjects,
                acknowledged=bool(acknowledged),
                last_ack=last_ack,
            )
        )
    return result, contents


async def get(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    *,
    now: datetime,
    version: int | None = None,
) -> Detail:
    """One advisory (the current or an earlier version) with history; audited."""
    adv = await access.get_visible(db, user, advisory_id, "advisory.read")
    (summary,) = await _summaries(db, vault, [adv], now)
    shown_row = await version_row(db, adv.id, version or adv.current_version)
    content = await content_of(db, vault, shown_row)
    version_rows = (
        await db.scalars(
            select(AdvisoryVersion)
            .where(AdvisoryVersion.advisory_id == adv.id)
            .order_by(AdvisoryVersion.version.desc())
        )
    ).all()
    ack_rows = (
        await db.scalars(
            select(AdvisoryAcknowledgement)
            .where(AdvisoryAcknowledgement.advisory_id == adv.id)
            .order_by(AdvisoryAcknowledgement.at.desc())
        )
    ).all()
    people = [v.created_by for v in version_rows] + [a.user_id for a in ack_rows]
    names = await user_names(
        db, vault, [*people, *([adv.withdrawn_by] if adv.withdrawn_by else [])]
    )
    infos = tuple(
        VersionInfo(v.version, v.kind, v.created_at, names.get(v.created_by, ""), v.valid_until)
        for v in version_rows
    )
    jour = await db.get(Organisation, adv.jour_id)
    unit = await db.get(Unit, adv.unit_id) if adv.unit_id else None
    files = await attachments.list_attachments(db, vault, owner_type=OWNER_TYPE, owner_id=adv.id)
    reason = (
        vault.decrypt(adv.withdraw_reason_enc, field_context(Advisory.withdraw_reason_enc, adv.id))
        if adv.withdraw_reason_enc
        else None
    )
    active = adv.status == "active"
    acked_by_me = any(
        a.user_id == user.user_id and a.version == adv.current_version for a in ack_rows
    )
    await audit.record(
        db, "advisory.read", actor=access.actor_for(user, adv), owner_org_id=adv.organisation_id,
        object_type="advisory", object_id=adv.id, details={"version": shown_row.version},
    )  # fmt: skip
    return Detail(
        summary=summary,
        shown=next(i for i in infos if i.version == shown_row.version),
        content=content,
        jour_name=jour.name if jour else "",
        unit_name=unit.name if unit else None,
        versions=infos,
        acks=tuple(Ack(a.version, names.get(a.user_id, ""), a.at) for a in ack_rows),
        attachments=tuple(files),
        withdrawn_at=adv.withdrawn_at,
        withdrawn_by=names.get(adv.withdrawn_by) if adv.withdrawn_by else None,
        withdraw_reason=reason,
        can_change=active and adv.organisation_id in access.own_orgs(user),
        can_acknowledge=active and adv.jour_id in access.jour_orgs(user) and not acked_by_me,
    )


async def open_attachment(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> OpenedFile:
    """Open an attachment of a visible advisory for download (audited; the object store is read
    after the request's transaction is released, see `portal.attachments.service`)."""
    action = "attachment.download"
    adv = await access.get_visible(db, user, advisory_id, action)
    try:
        return await attachments.open_attachment(
            db, sessions, files, vault, owner_type=OWNER_TYPE, owner_id=adv.id,
            attachment_id=attachment_id, actor=access.actor_for(user, adv),
        )  # fmt: skip
    except NotFound:
        raise NotFound(
            audit=AuditNote(
                action, "not_found", adv.organisation_id, "attachment", str(attachment_id)
            )
        ) from None


def shift_start(now: datetime) -> datetime:
    """Start of the current jour shift: the latest 08:00 or 16:00 in Stockholm at or before now."""
    local = now.astimezone(STOCKHOLM)
    candidates = [
        (local - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
        for days in (0, 1)
        for hour in (8, 16)
    ]
    return max(c for c in candidates if c <= local)
