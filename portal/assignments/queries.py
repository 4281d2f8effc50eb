"""Reading assignments and handover notes: lists, the dashboard's open ones, one in detail.

Every read is audited in the request's transaction (lists with the ids they showed). Who may
read what: portal.assignments.access.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from portal import paging
from portal.assignments import access
from portal.assignments.content import OPEN, AssignmentContent, from_blob
from portal.assignments.models import Assignment, HandoverNote, HandoverRead
from portal.audit import service as audit
from portal.db.engine import core_execute
from portal.db.models import Organisation, Unit, User
from portal.db.reads import Read, Rows
from portal.errors import AuditNote, Forbidden
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.principal import Principal
from portal.records import in_period
from portal.timefmt import STOCKHOLM

RECENTLY_CLOSED = timedelta(days=7)
"""The jour's list keeps finished, not done and withdrawn assignments this long."""
HANDOVER_PAGE = timedelta(days=7)
"""The handover page shows notes this far back."""
LIST_LIMIT = 200
"""Most rows in one list."""


@dataclass(frozen=True, slots=True)
class Summary:
    """An assignment in a list (its text decrypted: the lists show what to do)."""

    id: uuid.UUID
    """The assignment."""
    organisation_name: str
    """Sending municipality."""
    status: str
    """sent | accepted | done | not_done | withdrawn."""
    kind: str
    """visit | call | check | other."""
    created_at: datetime
    """Sent."""
    due_at: datetime
    """Deadline."""
    overdue: bool
    """Still open and past its deadline."""
    content: AssignmentContent
    """What it asks, for whom, who asked."""
    accepted_by: str | None
    """Who at the jour accepted it."""
    accepted_at: datetime | None
    """When."""
    outcome_by: str | None
    """Who recorded the outcome (done / not done)."""
    outcome_at: datetime | None
    """When."""

    @property
    def is_open(self) -> bool:
        """Sent or accepted: on every shift's dashboard."""
        return self.status in OPEN


@dataclass(frozen=True, slots=True)
class Detail:
    """One assignment with its outcome and what the caller may do with it."""

    summary: Summary
    """The assignment."""
    jour_name: str
    """The jour it is addressed to."""
    unit_name: str | None
    """The sending unit."""
    created_by: str
    """Who sent it."""
    outcome_note: str | None
    """What was done, or why not."""
    withdrawn_by: str | None
    """Who withdrew it."""
    withdrawn_at: datetime | None
    """When."""
    withdraw_reason: str | None
    """Why."""
    can_accept: bool
    """The caller works at the jour and it is sent (not yet accepted)."""
    can_report: bool
    """The caller works at the jour and it is accepted."""
    can_withdraw: bool
    """The caller's municipality sent it and it is still open."""


@dataclass(frozen=True, slots=True)
class NoteView:
    """A handover note as shown."""

    id: uuid.UUID
    """The note."""
    author: str
    """Who wrote it."""
    mine: bool
    """The viewer wrote it."""
    created_at: datetime
    """When."""
    shift_start: datetime
    """Start of the shift it was written in."""
    body: str
    """The text."""
    read_by: tuple[tuple[str, datetime], ...]
    """Who has acknowledged it, and when."""
    read_by_me: bool
    """The viewer has acknowledged it."""


def shift_start(now: datetime) -> datetime:
    """Start of the current jour shift: the latest 08:00 or 16:00 in Stockholm at or before now."""
    local = now.astimezone(STOCKHOLM)
    candidates = [
        (local - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
        for days in (0, 1)
        for hour in (8, 16)
    ]
    return max(c for c in candidates if c <= local)


def previous_shift_start(now: datetime) -> datetime:
    """Start of the shift before the current one (the outgoing shift at handover)."""
    return shift_start(shift_start(now) - timedelta(seconds=1))


def decrypt_content(vault: Vault, a: Assignment) -> AssignmentContent:
    """The assignment's decrypted content."""
    pnr = vault.decrypt(a.pnr_enc, field_context(Assignment.pnr_enc, a.id)) if a.pnr_enc else None
    blob = vault.decrypt(a.content_enc, field_context(Assignment.content_enc, a.id))
    return from_blob(blob, kind=a.kind, pnr=pnr, due_at=a.due_at)


async def _summaries(
    db: AsyncSession, vault: Vault, rows: Sequence[Assignment], now: datetime
) -> list[Summary]:
    if not rows:
        return []
    org_ids = {a.organisation_id for a in rows}
    found = await db.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))
    )
    orgs: dict[uuid.UUID, str] = {row.id: row.name for row in found}
    names = await user_names(db, vault, [x for a in rows for x in (a.accepted_by, a.outcome_by)])
    return [
        Summary(
            id=a.id,
            organisation_name=orgs.get(a.organisation_id, ""),
            status=a.status,
            kind=a.kind,
            created_at=a.created_at,
            due_at=a.due_at,
            overdue=a.status in OPEN and a.due_at < now,
            content=decrypt_content(vault, a),
            accepted_by=names.get(a.accepted_by) if a.accepted_by else None,
            accepted_at=a.accepted_at,
            outcome_by=names.get(a.outcome_by) if a.outcome_by else None,
            outcome_at=a.outcome_at,
        )
        for a in rows
    ]


def open_or_recently_closed(now: datetime) -> ColumnElement[bool]:
    """SQL condition: open, or done / not done / withdrawn within RECENTLY_CLOSED."""
    closed_at = func.coalesce(Assignment.outcome_at, Assignment.withdrawn_at)
    return or_(Assignment.status.in_(OPEN), closed_at >= now - RECENTLY_CLOSED)


async def _audit_list(
    db: AsyncSession, user: Principal, scope: str, rows: Sequence[Summary]
) -> None:
    await audit.record(
        db, "assignment.list", actor=user.actor(), object_type="assignment",
        details={"scope": scope, "assignments": [str(r.id) for r in rows]},
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SentFilter:
    """What the municipality's list of sent assignments is narrowed to."""

    status: str | None = None
    """A key of content.STATUS."""
    kind: str | None = None
    """A key of content.KINDS."""
    since: datetime | None = None
    """Sent at or after."""
    until: datetime | None = None
    """Sent before."""


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
    """A page of the caller's municipality's assignments, newest first (keyset by (sent, id);
    every state unless filtered); audited with the ids shown, each page."""
    own = access.own_orgs(user)
    if not own:
        raise Forbidden(audit=AuditNote("assignment.list", "denied", details={"scope": "sent"}))
    cursor = paging.decode(before)
    where = and_(
        Assignment.organisation_id.in_(own),
        Assignment.status == filters.status if filters.status else true(),
        Assignment.kind == filters.kind if filters.kind else true(),
        *in_period(Assignment.created_at, filters.since, filters.until),
    )
    rows = (
        await db.scalars(
            select(Assignment)
            .where(where, paging.after(Assignment.created_at, Assignment.id, cursor))
            .order_by(Assignment.created_at.desc(), Assignment.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(Assignment).where(where))
    result = await _summaries(db, vault, rows[:size], now)
    await _audit_list(db, user, "sent", result)
    return paging.page_of(
        result, more=len(rows) > size, cursor=cursor, key=lambda r: (r.created_at, r.id),
        total=int(total or 0),
    )  # fmt: skip


async def list_for_jour(
    db: AsyncSession, vault: Vault, user: Principal, *, now: datetime, open_only: bool = False
) -> list[Summary]:
    """Assignments to the caller's jour: open ones by deadline (overdue first), then those
    closed within RECENTLY_CLOSED (unless `open_only`), newest first."""
    jours = access.jour_orgs(user)
    if not jours:
        raise Forbidden(audit=AuditNote("assignment.list", "denied", details={"scope": "jour"}))
    cond = Assignment.status.in_(OPEN) if open_only else open_or_recently_closed(now)
    rows = (
        await db.scalars(
            select(Assignment)
            .where(Assignment.jour_id.in_(jours), cond)
            .order_by(Assignment.due_at)
            .limit(LIST_LIMIT)
        )
    ).all()
    result = await _summaries(db, vault, rows, now)
    open_rows = [r for r in result if r.is_open]
    closed = sorted((r for r in result if not r.is_open), key=lambda r: r.created_at, reverse=True)
    ordered = open_rows + closed
    await _audit_list(db, user, "dashboard" if open_only else "jour", ordered)
    return ordered


@dataclass(frozen=True, slots=True)
class Brief:
    """An open assignment on the jour's night dashboard (its text is not shown there, so not
    decrypted)."""

    id: uuid.UUID
    """The assignment."""
    organisation_name: str
    """Sending municipality."""
    status: str
    """sent | accepted."""
    kind: str
    """visit | call | check | other."""
    due_at: datetime
    """Deadline."""
    overdue: bool
    """Past its deadline."""
    accepted_by: str | None
    """Who at the jour accepted it."""


# Built once: `list_for_jour(open_only=True)` (filter, order, limit) with the sender's name and
# the accepting user's encrypted name, in one statement of plain columns.
_Accepter = aliased(User)
_DASHBOARD = (
    select(
        Assignment.id,
        Organisation.name,
        Assignment.status,
        Assignment.kind,
        Assignment.due_at,
        Assignment.accepted_by,
        _Accepter.name_enc,
    )
    .join(Organisation, Organisation.id == Assignment.organisation_id)
    .outerjoin(_Accepter, _Accepter.id == Assignment.accepted_by)
    .where(Assignment.jour_id.in_(bindparam("jours", expanding=True)), Assignment.status.in_(OPEN))
    .order_by(Assignment.due_at)
    .limit(LIST_LIMIT)
)


def dashboard_read(user: Principal) -> Read:
    """The open assignments of `list_for_jour(open_only=True)`, briefly, as a read
    (`portal.db.reads`, one statement); `dashboard_from_rows` parses its rows."""
    jours = access.jour_orgs(user)
    if not jours:
        raise Forbidden(audit=AuditNote("assignment.list", "denied", details={"scope": "jour"}))
    return Read(_DASHBOARD, {"jours": list(jours)})


def dashboard_from_rows(
    rows: Rows, vault: Vault, user: Principal, *, now: datetime
) -> tuple[list[Brief], audit.NewEntry]:
    """The rows of `dashboard_read`, and the same audit entry as `list_for_jour(open_only=True)`
    (for the caller to append with the page's other entries)."""
    briefs = [
        Brief(
            id=assignment_id,
            organisation_name=org_name,
            status=status,
            kind=kind,
            due_at=due_at,
            overdue=due_at < now,
            accepted_by=(
                vault.decrypt(name_enc, field_context(User.name_enc, accepted_by))
                if accepted_by is not None and name_enc is not None
                else None
            ),
        )
        for assignment_id, org_name, status, kind, due_at, accepted_by, name_enc in rows
    ]
    entry = audit.NewEntry(
        "assignment.list", actor=user.actor(), object_type="assignment",
        details={"scope": "dashboard", "assignments": [str(b.id) for b in briefs]},
    )  # fmt: skip
    return briefs, entry


async def list_for_dashboard(
    db: AsyncSession, vault: Vault, user: Principal, *, now: datetime
) -> tuple[list[Brief], audit.NewEntry]:
    """`dashboard_read` executed alone, parsed by `dashboard_from_rows`."""
    read = dashboard_read(user)
    rows = (await core_execute(db, read.statement, read.params)).all()
    return dashboard_from_rows(rows, vault, user, now=now)


async def get(
    db: AsyncSession, vault: Vault, user: Principal, assignment_id: uuid.UUID, *, now: datetime
) -> Detail:
    """One assignment with its outcome; audited."""
    a = await access.get_visible(db, user, assignment_id, "assignment.read")
    (summary,) = await _summaries(db, vault, [a], now)
    names = await user_names(db, vault, [a.created_by, a.withdrawn_by])
    jour = await db.get(Organisation, a.jour_id)
    unit = await db.get(Unit, a.unit_id) if a.unit_id else None
    outcome = (
        vault.decrypt(a.outcome_enc, field_context(Assignment.outcome_enc, a.id))
        if a.outcome_enc
        else None
    )
    reason = (
        vault.decrypt(a.withdraw_reason_enc, field_context(Assignment.withdraw_reason_enc, a.id))
        if a.withdraw_reason_enc
        else None
    )
    at_jour = a.jour_id in access.jour_orgs(user)
    await audit.record(
        db, "assignment.read", actor=access.actor_for(user, a), owner_org_id=a.organisation_id,
        object_type="assignment", object_id=a.id,
    )  # fmt: skip
    return Detail(
        summary=summary,
        jour_name=jour.name if jour else "",
        unit_name=unit.name if unit else None,
        created_by=names.get(a.created_by, ""),
        outcome_note=outcome,
        withdrawn_by=names.get(a.withdrawn_by) if a.withdrawn_by else None,
        withdrawn_at=a.withdrawn_at,
        withdraw_reason=reason,
        can_accept=at_jour and a.status == "sent",
        can_report=at_jour and a.status == "accepted",
        can_withdraw=a.organisation_id in access.own_orgs(user) and a.status in OPEN,
    )


async def find_by_pnr_index(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Open assignments about the person, and those closed within RECENTLY_CLOSED, that the
    caller may see, open ones first by deadline (not audited: the lookup audits its search)."""
    own, jours = access.own_orgs(user), access.jour_orgs(user)
    if not own and not jours:
        return []
    rows = (
        await db.scalars(
            select(Assignment)
            .where(
                Assignment.pnr_index == pnr_index,
                or_(Assignment.organisation_id.in_(own), Assignment.jour_id.in_(jours)),
                open_or_recently_closed(now),
            )
            .order_by(Assignment.due_at)
            .limit(LIST_LIMIT)
        )
    ).all()
    result = await _summaries(db, vault, rows, now)
    return [r for r in result if r.is_open] + [r for r in result if not r.is_open]


# -- handover notes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteBrief:
    """A handover note on the night dashboard: who wrote it, when, its text, and whether the
    viewer has acknowledged it (who else has is on the handover page)."""

    id: uuid.UUID
    """The note."""
    author: str
    """Who wrote it."""
    mine: bool
    """The viewer wrote it."""
    created_at: datetime
    """When."""
    body: str
    """The text."""
    read_by_me: bool
    """The viewer has acknowledged it."""


_Author = aliased(User)
_DASHBOARD_NOTES = (
    select(
        HandoverNote.id,
        HandoverNote.created_by,
        _Author.name_enc,
        HandoverNote.created_at,
        HandoverNote.body_enc,
        select(HandoverRead.id)
        .where(HandoverRead.note_id == HandoverNote.id, HandoverRead.user_id == bindparam("me"))
        .exists(),
    )
    .outerjoin(_Author, _Author.id == HandoverNote.created_by)
    .where(
        HandoverNote.jour_id.in_(bindparam("jours", expanding=True)),
        HandoverNote.created_at >= bindparam("since"),
    )
    .order_by(HandoverNote.created_at.desc())
    .limit(LIST_LIMIT)
)


def handover_dashboard_read(user: Principal, *, since: datetime) -> Read:
    """`handover_notes(scope="dashboard")` as a read (`portal.db.reads`, one statement), without
    the readers' names (the dashboard shows only the viewer's own receipt);
    `handover_from_rows` parses its rows."""
    jours = access.require_jour(user, "handover.list")
    return Read(_DASHBOARD_NOTES, {"jours": list(jours), "since": since, "me": user.user_id})


def handover_from_rows(
    rows: Rows, vault: Vault, user: Principal
) -> tuple[list[NoteBrief], audit.NewEntry | None]:
    """The rows of `handover_dashboard_read`, and their audit entry (None when there are no
    notes, as `handover_notes` writes none then), for the caller to append."""
    notes = [
        NoteBrief(
            id=note_id,
            author=vault.decrypt(name_enc, field_context(User.name_enc, author))
            if name_enc
            else "",
            mine=author == user.user_id,
            created_at=created_at,
            body=vault.decrypt(body_enc, field_context(HandoverNote.body_enc, note_id)),
            read_by_me=bool(read),
        )
        for note_id, author, name_enc, created_at, body_enc, read in rows
    ]
    if not notes:
        return [], None
    jours = access.jour_orgs(user)
    entry = audit.NewEntry(
        "handover.list", actor=user.actor(next(iter(jours))), object_type="handover_note",
        details={"scope": "dashboard", "notes": [str(n.id) for n in notes]},
    )  # fmt: skip
    return notes, entry


async def handover_for_dashboard(
    db: AsyncSession, vault: Vault, user: Principal, *, since: datetime
) -> tuple[list[NoteBrief], audit.NewEntry | None]:
    """`handover_dashboard_read` executed alone, parsed by `handover_from_rows`."""
    read = handover_dashboard_read(user, since=since)
    rows = (await core_execute(db, read.statement, read.params)).all()
    return handover_from_rows(rows, vault, user)


async def handover_notes(
    db: AsyncSession, vault: Vault, user: Principal, *, since: datetime, scope: str
) -> list[NoteView]:
    """The caller's jours' handover notes written since `since`, newest first; audited."""
    jours = access.require_jour(user, "handover.list")
    notes = (
        await db.scalars(
            select(HandoverNote)
            .where(HandoverNote.jour_id.in_(jours), HandoverNote.created_at >= since)
            .order_by(HandoverNote.created_at.desc())
            .limit(LIST_LIMIT)
        )
    ).all()
    if not notes:
        return []
    reads = (
        await db.scalars(
            select(HandoverRead)
            .where(HandoverRead.note_id.in_([n.id for n in notes]))
            .order_by(HandoverRead.at)
        )
    ).all()
    names = await user_names(db, vault, [n.created_by for n in notes] + [r.user_id for r in reads])
    by_note: dict[uuid.UUID, list[HandoverRead]] = {}
    for r in reads:
        by_note.setdefault(r.note_id, []).append(r)
    views = [
        NoteView(
            id=n.id,
            author=names.get(n.created_by, ""),
            mine=n.created_by == user.user_id,
            created_at=n.created_at,
            shift_start=n.shift_start,
            body=vault.decrypt(n.body_enc, field_context(HandoverNote.body_enc, n.id)),
            read_by=tuple((names.get(r.user_id, ""), r.at) for r in by_note.get(n.id, [])),
            read_by_me=any(r.user_id == user.user_id for r in by_note.get(n.id, [])),
        )
        for n in notes
    ]
    await audit.record(
        db, "handover.list", actor=user.actor(next(iter(jours))), object_type="handover_note",
        details={"scope": scope, "notes": [str(v.id) for v in views]},
    )  # fmt: skip
    return views
