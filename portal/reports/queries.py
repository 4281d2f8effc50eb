"""Reading reports: the inbox and the sent list (keyset pages), searches for the lookup, one
report (marked read, audited), its PDF, its files, and the choices the pages offer.

Lists hold no personal data and are not audited; names and texts are decrypted only on the
audited detail. Files are downloaded through `portal.attachments.service`, which releases the
request's transaction before the object store is used and audits in a short transaction of its
own. Who may read what: `portal.reports.access`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from portal.attachments import service as attachments
from portal.attachments.service import OpenedFile
from portal.audit import service as audit
from portal.codelists import service as codelists
from portal.db.models import Membership, Organisation, Unit
from portal.errors import InvalidInput
from portal.people import user_names
from portal.pii import Vault
from portal.principal import Principal
from portal.reports import access, content
from portal.reports.access import Scope
from portal.reports.models import Report, ReportAction, ReportAddendum, ReportRead, ReportSubject
from portal.reports.schemas import (
    URGENCIES,
    AttachmentRef,
    CodeRef,
    PersonOption,
    ReportOut,
    ReportSummary,
)
from storage import EncryptedObjectStore

LIST_LIMIT = 500
"""Most rows of an unpaged search (a person's reports)."""
PAGE_SIZE = 50
"""Reports per page of the inbox and the sent list (keyset paging, newest first)."""
SHOW = ("all", "unacknowledged", "unread")
"""List filters."""
OWNER_TYPE = "report"
"""owner_type of report attachments in portal/attachments."""


# --- lists ----------------------------------------------------------------------------------


def _unread(user: Principal) -> ColumnElement[bool]:
    """SQL: the principal has not opened the report since it was sent or last changed."""
    seen = aliased(ReportRead)  # the list query joins ReportRead itself: don't correlate to it
    return ~(
        select(seen.report_id)
        .where(
            seen.report_id == Report.id,
            seen.user_id == user.user_id,
            seen.read_at >= Report.changed_at,
        )
        .exists()
    )


def _shown(user: Principal, show: str) -> ColumnElement[bool]:
    """SQL for a list filter: all | unacknowledged | unread."""
    if show == "unacknowledged":
        return Report.acknowledged_at.is_(None) & Report.municipality_id.is_not(None)
    if show == "unread":
        return _unread(user)
    return true()


def _after_cursor(cursor: str | None) -> ColumnElement[bool]:
    """SQL: rows after the cursor in (created_at, id) descending order (keyset paging)."""
    if not cursor:
        return true()
    try:
        at_text, _, id_text = cursor.rpartition("_")
        at, rid = datetime.fromisoformat(at_text), uuid.UUID(id_text)
    except ValueError:
        raise InvalidInput(errors={"before": "Ogiltig sidmarkering."}) from None
    return or_(Report.created_at < at, (Report.created_at == at) & (Report.id < rid))


@dataclass(frozen=True, slots=True)
class ReportPage:
    """One page of a report list, with the totals of the whole list."""

    rows: list[ReportSummary]
    """The page, newest first."""
    next_cursor: str | None
    """Where the next (older) page starts; None on the last page."""
    total: int
    """Reports in the list (the filter applied)."""
    unread: int
    """Of all the list's reports (no filter), how many this user has not opened."""
    unacknowledged: int
    """Of all the list's reports (no filter), how many no unit has acknowledged."""


async def _summaries(
    db: AsyncSession,
    vault: Vault | None,
    user: Principal,
    where: ColumnElement[bool],
    *,
    join_subject_index: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[ReportSummary]:
    stmt = (
        select(Report, ReportRead.read_at)
        .outerjoin(
            ReportRead,
            (ReportRead.report_id == Report.id) & (ReportRead.user_id == user.user_id),
        )
        .where(where)
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(limit)
    )
    if join_subject_index is not None:
        stmt = stmt.where(
            Report.id.in_(
                select(ReportSubject.report_id).where(ReportSubject.pnr_index == join_subject_index)
            )
        )
    rows = (await db.execute(stmt)).all()
    reports = [r for r, _ in rows]
    orgs = await content.org_names(
        db, [x.jour_id for x in reports] + [x.municipality_id for x in reports]
    )
    units = await content.unit_names(db, [x.unit_id for x in reports])
    owners = await user_names(db, vault, [x.follow_up_owner_id for x in reports]) if vault else {}
    labels = content.Labels(db)
    out: list[ReportSummary] = []
    for report, read_at in rows:
        out.append(
            ReportSummary(
                id=report.id,
                created_at=report.created_at,
                occurred_at=report.occurred_at,
                jour_name=orgs.get(report.jour_id, ""),
                municipality_name=content.municipality_name(report, orgs),
                other_municipality=report.municipality_id is None,
                unit_name=units.get(report.unit_id) if report.unit_id else None,
                category=await labels.ref(
                    report.code_list_version, "category", report.category_code
                ),
                child_involved=report.child_involved,
                follow_up_requested=report.follow_up_requested,
                follow_up_urgency=URGENCIES.get(report.follow_up_urgency or ""),
                unread=read_at is None or read_at < report.changed_at,
                acknowledged_at=report.acknowledged_at,
                follow_up_owner_name=(
                    owners.get(report.follow_up_owner_id) if report.follow_up_owner_id else None
                ),
            )
        )
    return out


async def list_box(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    box: str,
    *,
    show: str = "all",
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> ReportPage:
    """A page of a box, newest first: "inbox" (reports addressed to the principal's
    municipalities or units) or "sent" (written by the principal's jours, with receipts),
    filtered by `show`, starting after the cursor `before`; with the whole box's counts."""
    scope = access.scope_of(user)
    where = scope.sent_clause() if box == "sent" else scope.receiving_clause()
    filtered = where & _shown(user, show)
    rows = await _summaries(db, vault, user, filtered & _after_cursor(before), limit=size + 1)
    count = select(func.count()).select_from(Report)
    total = await db.scalar(count.where(filtered))
    unread = await db.scalar(count.where(where & _unread(user)))
    open_ = await db.scalar(count.where(where & _shown(user, "unacknowledged")))
    last = rows[size - 1] if len(rows) > size else None
    return ReportPage(
        rows=rows[:size],
        next_cursor=f"{last.created_at.isoformat()}_{last.id}" if last else None,
        total=int(total or 0),
        unread=int(unread or 0),
        unacknowledged=int(open_ or 0),
    )


async def find_by_ids(
    db: AsyncSession, user: Principal, ids: set[uuid.UUID]
) -> list[ReportSummary]:
    """Reports among `ids` (a name search's matches) that the principal may see."""
    if not ids:
        return []
    where = access.scope_of(user).visible_clause() & Report.id.in_(ids)
    return await _summaries(db, None, user, where)


async def find_by_person(db: AsyncSession, user: Principal, pnr_index: str) -> list[ReportSummary]:
    """Reports about the person with this blind index that the principal may see.

    The jour sees its own reports, handlers their municipality's (or unit's). Uses the indexed
    report_subjects.pnr_index; the caller (the lookup) audits the search itself.
    """
    return await _summaries(
        db,
        None,
        user,
        access.scope_of(user).visible_clause(),
        join_subject_index=pnr_index,
    )


# --- one report -----------------------------------------------------------------------------


async def mark_read(
    db: AsyncSession, report_id: uuid.UUID, user_id: uuid.UUID, *, now: datetime
) -> None:
    """Record that the user has read the report as it is now."""
    existing = await db.get(ReportRead, (report_id, user_id))
    if existing is not None:
        existing.read_at = now
        return
    try:
        async with db.begin_nested():
            db.add(ReportRead(report_id=report_id, user_id=user_id, read_at=now))
    except IntegrityError:  # the same user opened it twice at once; the other write wins
        pass


async def _view(db: AsyncSession, vault: Vault, report: Report, scope: Scope) -> ReportOut:
    """The whole report, decrypted, with what `scope` may do with it."""
    return (await _views(db, vault, [report], scope))[report.id]


async def _views(
    db: AsyncSession, vault: Vault, reports: Sequence[Report], scope: Scope
) -> dict[uuid.UUID, ReportOut]:
    """`_view` of several reports with one query per kind of row (the archive export reads
    reports in batches; one report is a batch of one)."""
    ids = [r.id for r in reports]
    subjects: dict[uuid.UUID, list[ReportSubject]] = defaultdict(list)
    for subject in await db.scalars(
        select(ReportSubject)
        .where(ReportSubject.report_id.in_(ids))
        .order_by(ReportSubject.report_id, ReportSubject.position)
    ):
        subjects[subject.report_id].append(subject)
    actions: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in await db.execute(
        select(ReportAction.report_id, ReportAction.action_code)
        .where(ReportAction.report_id.in_(ids))
        .order_by(ReportAction.report_id, ReportAction.action_code)
    ):
        actions[row.report_id].append(row.action_code)
    addenda: dict[uuid.UUID, list[ReportAddendum]] = defaultdict(list)
    for added in await db.scalars(
        select(ReportAddendum)
        .where(ReportAddendum.report_id.in_(ids))
        .order_by(ReportAddendum.created_at, ReportAddendum.id)
    ):
        addenda[added.report_id].append(added)
    names = await user_names(
        db,
        vault,
        [u for r in reports for u in (r.author_id, r.acknowledged_by, r.follow_up_owner_id)]
        + [a.author_id for rows in addenda.values() for a in rows],
    )
    orgs = await content.org_names(db, [o for r in reports for o in (r.jour_id, r.municipality_id)])
    units = await content.unit_names(db, [r.unit_id for r in reports])
    lists = {
        version: await codelists.load(db, version)
        for version in sorted({r.code_list_version for r in reports})
    }
    files = await attachments.list_attachments_of(db, vault, owner_type=OWNER_TYPE, owner_ids=ids)
    return {
        r.id: _assemble(
            vault,
            r,
            scope,
            subjects[r.id],
            actions[r.id],
            addenda[r.id],
            names,
            orgs,
            units,
            lists[r.code_list_version],
            files.get(r.id, []),
        )
        for r in reports
    }


def _assemble(
    vault: Vault,
    report: Report,
    scope: Scope,
    subjects: Sequence[ReportSubject],
    actions: Sequence[str],
    addenda: Sequence[ReportAddendum],
    names: dict[uuid.UUID, str],
    orgs: dict[uuid.UUID, str],
    units: dict[uuid.UUID, str],
    lists: codelists.CodeLists,
    files: Sequence[attachments.AttachmentView],
) -> ReportOut:
    rid = report.id

    def ref(list_name: str, code: str) -> CodeRef:
        return CodeRef(code, lists.label(list_name, code))

    return ReportOut(
        id=rid,
        jour_name=orgs.get(report.jour_id, ""),
        author_name=names.get(report.author_id, ""),
        municipality_name=content.municipality_name(report, orgs),
        other_municipality=report.municipality_id is None,
        unit_name=units.get(report.unit_id) if report.unit_id else None,
        code_list_version=report.code_list_version,
        occurred_at=report.occurred_at,
        on_call=report.on_call,
        initiator=ref("initiator", report.initiator_code),
        category=ref("category", report.category_code),
        character=ref("character", report.character_code),
        actions=[ref("action", c) for c in actions],
        minutes=report.minutes,
        subjects=[content.subject(vault, s) for s in subjects],
        child_involved=report.child_involved,
        assessment=content.assessment(vault, report),
        narrative=content.narrative(vault, report),
        follow_up_requested=report.follow_up_requested,
        follow_up_urgency=URGENCIES.get(report.follow_up_urgency or ""),
        created_at=report.created_at,
        acknowledged_at=report.acknowledged_at,
        acknowledged_by_name=names.get(report.acknowledged_by) if report.acknowledged_by else None,
        follow_up_owner_name=(
            names.get(report.follow_up_owner_id) if report.follow_up_owner_id else None
        ),
        addenda=[content.addendum(vault, a, names.get(a.author_id, "")) for a in addenda],
        attachments=[
            AttachmentRef(f.id, f.name, f.content_type, f.size, f.created_at) for f in files
        ],
        can_acknowledge=scope.receives(report) and report.acknowledged_at is None,
        can_add_addendum=scope.writes(report),
    )


async def _audited(
    db: AsyncSession, user: Principal, report: Report, action: str, **details: str
) -> None:
    await audit.record(
        db,
        action,
        actor=user.actor(),
        owner_org_id=access.owner_org(report),
        object_type="report",
        object_id=report.id,
        details=details or None,
    )


async def open_report(
    db: AsyncSession, vault: Vault, user: Principal, report_id: uuid.UUID, *, now: datetime
) -> ReportOut:
    """The whole report; marks it read for this user and audits the reading."""
    report, scope = await access.get_visible(db, user, report_id, "report.read")
    await mark_read(db, report.id, user.user_id, now=now)
    await _audited(db, user, report, "report.read")
    return await _view(db, vault, report, scope)


async def report_for_download(
    db: AsyncSession, vault: Vault, user: Principal, report_id: uuid.UUID
) -> ReportOut:
    """The report for a PDF download; audits the download."""
    report, scope = await access.get_visible(db, user, report_id, "report.download")
    await _audited(db, user, report, "report.download", format="pdf")
    return await _view(db, vault, report, scope)


async def describe(db: AsyncSession, vault: Vault, report: Report) -> ReportOut:
    """The whole report, decrypted, for the archive (the caller has checked ownership)."""
    return await _view(db, vault, report, access.NOBODY)


async def describe_many(
    db: AsyncSession, vault: Vault, reports: Sequence[Report]
) -> dict[uuid.UUID, ReportOut]:
    """`describe` of several reports at once (the archive export's batches)."""
    return await _views(db, vault, reports, access.NOBODY)


async def open_attachment(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    user: Principal,
    report_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> OpenedFile:
    """A report's file for download, for whoever may see the report (audited)."""
    report, _ = await access.get_visible(db, user, report_id, "report.attachment_download")
    return await attachments.open_attachment(
        db,
        sessions,
        files,
        vault,
        owner_type=OWNER_TYPE,
        owner_id=report.id,
        attachment_id=attachment_id,
        actor=user.actor(),
    )


# --- choices on the pages -------------------------------------------------------------------


async def follow_up_candidates(
    db: AsyncSession, vault: Vault, user: Principal, report_id: uuid.UUID
) -> list[PersonOption]:
    """Handlers of the receiving municipality who can take over the follow-up, by name."""
    report, _ = await access.get_visible(db, user, report_id, "report.read")
    if report.municipality_id is None:
        return []
    ids = set(
        await db.scalars(
            select(Membership.user_id).where(
                Membership.organisation_id == report.municipality_id,
                Membership.role.in_(access.READER_ROLES),
                Membership.revoked_at.is_(None),
            )
        )
    )
    names = await user_names(db, vault, ids)
    return sorted(
        (PersonOption(uid, n) for uid, n in names.items()), key=lambda p: p.name.casefold()
    )


async def form_units(db: AsyncSession, user: Principal) -> list[tuple[str, list[Unit]]]:
    """Units of the member municipalities of the principal's jours, grouped by municipality."""
    jours = access.scope_of(user).jours
    if not jours:
        return []
    orgs = (
        await db.scalars(
            select(Organisation)
            .where(Organisation.kind == "municipality", Organisation.jour_id.in_(jours))
            .order_by(Organisation.name)
        )
    ).all()
    units = (
        await db.scalars(
            select(Unit).where(Unit.organisation_id.in_([o.id for o in orgs])).order_by(Unit.name)
        )
    ).all()
    return [(o.name, [u for u in units if u.organisation_id == o.id]) for o in orgs]
