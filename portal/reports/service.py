"""Incident reports: write, route to a unit's inbox, read, acknowledge, add addenda, render PDF.

Tenancy (DESIGN.md §6): a report is visible to the jour that wrote it (WRITE_REPORTS) and to
the receiving municipality's handlers (READ_REPORTS): a handler whose role is scoped to a unit
sees that unit's reports; a handler without a unit sees every unit of the municipality. Nobody
else learns that a report exists: a wrong-tenant id answers 404 exactly like a missing one,
and both are audited. Every opening, acknowledgement, addendum and download is audited in the
request's transaction — except files: attaching and downloading them release the request's
transaction before the object store is used and audit in a short transaction of their own
(`portal.attachments.service`), so an S3 outage holds no pooled connection or row lock. Lists
hold no personal data and are not audited; names and texts are decrypted only on the (audited)
detail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from auth.roles import ROLE_PERMISSIONS, Permission, Role
from portal.attachments import service as attachments
from portal.attachments.service import OpenedFile, Upload
from portal.audit import service as audit
from portal.codelists import service as codelists
from portal.codelists.service import CodeLists
from portal.db.base import utcnow
from portal.db.models import Membership, Organisation, Unit
from portal.errors import AuditNote, Conflict, Forbidden, InvalidInput, NotFound
from portal.lookup import names
from portal.notify.service import queue_mail
from portal.people import user_names
from portal.pii import InvalidPersonnummer, Vault, normalise_personnummer
from portal.principal import Principal
from portal.reports.models import Report, ReportAction, ReportAddendum, ReportRead, ReportSubject
from portal.reports.schemas import (
    URGENCIES,
    AddendumOut,
    AssessmentOut,
    AttachmentRef,
    CodeRef,
    PersonOption,
    ReportInput,
    ReportOut,
    ReportSummary,
    SubjectOut,
)
from portal.timefmt import STOCKHOLM, format_local
from storage import EncryptedObjectStore

MAX_MINUTES = 24 * 60
MAX_SUBJECTS = 10
MAX_TEXT = 20_000
FUTURE_SLACK = timedelta(minutes=10)
MAX_AGE = timedelta(days=366)
LIST_LIMIT = 500
"""Most rows of an unpaged search (a person's reports)."""
PAGE_SIZE = 50
"""Reports per page of the inbox and the sent list (keyset paging, newest first)."""
SHOW = ("all", "unacknowledged", "unread")
"""List filters."""
OWNER_TYPE = "report"
"""owner_type of report attachments in portal/attachments."""
READER_ROLES = tuple(r.value for r in Role if Permission.READ_REPORTS in ROLE_PERMISSIONS[r])


@dataclass(frozen=True, slots=True)
class Scope:
    """What a principal may see: jours they write for, municipalities and units they read for."""

    jours: frozenset[uuid.UUID]
    """Jours where the user holds WRITE_REPORTS."""
    municipalities: frozenset[uuid.UUID]
    """Municipalities where the user reads every unit's reports."""
    units: frozenset[uuid.UUID]
    """Units whose reports the user reads (unit-scoped handler roles)."""

    def writes(self, report: Report) -> bool:
        """The user is on the writing jour's side of this report."""
        return report.jour_id in self.jours

    def receives(self, report: Report) -> bool:
        """The user is on the receiving municipality's side of this report."""
        return report.municipality_id in self.municipalities or (
            report.unit_id is not None and report.unit_id in self.units
        )

    def sees(self, report: Report) -> bool:
        """The user may know this report exists."""
        return self.writes(report) or self.receives(report)

    def receiving_clause(self) -> ColumnElement[bool]:
        """SQL: reports addressed to the user's municipalities or units."""
        parts: list[ColumnElement[bool]] = []
        if self.municipalities:
            parts.append(Report.municipality_id.in_(self.municipalities))
        if self.units:
            parts.append(Report.unit_id.in_(self.units))
        return or_(*parts) if parts else false()

    def visible_clause(self) -> ColumnElement[bool]:
        """SQL: every report the user may see."""
        if not self.jours:
            return self.receiving_clause()
        return or_(Report.jour_id.in_(self.jours), self.receiving_clause())


def scope_of(principal: Principal) -> Scope:
    """The principal's report scope from their live memberships."""
    jours = principal.orgs_with(Permission.WRITE_REPORTS)
    munis: set[uuid.UUID] = set()
    units: set[uuid.UUID] = set()
    for m in principal.memberships:
        if Permission.READ_REPORTS not in ROLE_PERMISSIONS[m.role]:
            continue
        if m.unit_id is None:
            munis.add(m.org_id)
        else:
            units.add(m.unit_id)
    return Scope(frozenset(jours), frozenset(munis), frozenset(units))


def local_time(value: datetime | None) -> str:
    """2026-11-23 22:15 in Swedish time; empty for None."""
    return format_local(value)


def as_utc(value: datetime) -> datetime:
    """A timezone-aware UTC time; naive values are taken as Swedish local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=STOCKHOLM)
    return value.astimezone(UTC)


def _clean(text: str | None) -> str:
    return (text or "").strip()


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _owner_org(report: Report) -> uuid.UUID:
    return report.municipality_id or report.jour_id


def _note(action: str, outcome: str, report_id: uuid.UUID, report: Report | None) -> AuditNote:
    return AuditNote(
        action,
        outcome,
        owner_org_id=_owner_org(report) if report else None,
        object_type="report",
        object_id=str(report_id),
    )


async def _visible(
    db: AsyncSession, principal: Principal, report_id: uuid.UUID, action: str
) -> tuple[Report, Scope]:
    """The report if the principal may see it; otherwise an audited 404 (missing or not theirs)."""
    report = await db.get(Report, report_id)
    if report is None:
        raise NotFound(audit=_note(action, "not_found", report_id, None))
    scope = scope_of(principal)
    if not scope.sees(report):
        raise NotFound(audit=_note(action, "denied", report_id, report))
    return report, scope


# --- writing -------------------------------------------------------------------------------


def _check_time(
    errors: dict[str, str], key: str, value: datetime | None, missing: str
) -> datetime | None:
    if value is None:
        errors[key] = missing
        return None
    at = as_utc(value)
    now = utcnow()
    if at > now + FUTURE_SLACK:
        errors[key] = "Tidpunkten kan inte ligga i framtiden."
    elif at < now - MAX_AGE:
        errors[key] = "Tidpunkten ligger mer än ett år bakåt. Kontrollera datumet."
    return at


async def _destination(
    db: AsyncSession, data: ReportInput, jours: frozenset[uuid.UUID], errors: dict[str, str]
) -> tuple[uuid.UUID | None, Unit | None, str | None]:
    """(jour id, unit, other municipality name) after validating where the report goes."""
    other = _one_line(data.other_municipality)
    if data.unit_id is not None and other:
        errors["unit_id"] = "Välj antingen en enhet eller Annan kommun, inte båda."
        return None, None, None
    if data.unit_id is not None:
        unit = await db.get(Unit, data.unit_id)
        org = await db.get(Organisation, unit.organisation_id) if unit else None
        if unit is None or org is None or org.kind != "municipality" or org.jour_id not in jours:
            errors["unit_id"] = "Välj en enhet i en av jourens medlemskommuner."
            return None, None, None
        return org.jour_id, unit, None
    if not other:
        errors["unit_id"] = "Välj mottagande enhet, eller Annan kommun och skriv kommunens namn."
        return None, None, None
    if len(other) > 100:
        errors["other_municipality"] = "Kommunens namn får vara högst 100 tecken."
    member = await db.scalar(
        select(Organisation.name).where(
            Organisation.kind == "municipality",
            Organisation.jour_id.in_(jours),
            # Case-insensitive equality: the typed name's % and _ are not wildcards.
            Organisation.name.ilike(_escape_like(other), escape="\\"),
        )
    )
    if member:
        errors["other_municipality"] = (
            f"{member} är medlemskommun – välj en av kommunens enheter i stället."
        )
    if data.jour_id is not None:
        if data.jour_id not in jours:
            errors["jour_id"] = "Välj en jour du arbetar för."
        return data.jour_id, None, other
    if len(jours) != 1:
        errors["jour_id"] = "Välj vilken jour rapporten skrivs för."
        return None, None, other
    return next(iter(jours)), None, other


def _escape_like(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _check_codes(data: ReportInput, lists: CodeLists, errors: dict[str, str]) -> list[str]:
    labels = {"initiator": "initiativtagare", "category": "kategori", "character": "karaktär"}
    for key, what in labels.items():
        code = _clean(getattr(data, key))
        if not code:
            errors[key] = f"Välj {what}."
        elif lists.get(key, code) is None:
            errors[key] = f"Koden finns inte bland {what} i kodlistan {lists.version}."
    actions = list(dict.fromkeys(_clean(a) for a in data.actions if _clean(a)))
    if not actions:
        errors["actions"] = "Välj minst en åtgärd."
    elif any(lists.get("action", a) is None for a in actions):
        errors["actions"] = f"En eller flera åtgärder finns inte i kodlistan {lists.version}."
    return actions


@dataclass(frozen=True, slots=True)
class _Subject:
    position: int
    identity_unknown: bool
    pnr: str | None
    name: str | None


def _check_subjects(data: ReportInput, errors: dict[str, str]) -> list[_Subject]:
    found: list[_Subject] = []
    for i, s in enumerate(data.subjects):
        raw_pnr, name = _clean(s.personal_identity_number), _one_line(s.name)
        if not (raw_pnr or name or s.identity_unknown):
            continue  # an empty row of the form
        key = f"subjects[{i}]"
        pnr: str | None = None
        if s.identity_unknown:
            if raw_pnr:
                errors[f"{key}.personal_identity_number"] = (
                    "Lämna personnumret tomt när identiteten är okänd."
                )
        elif not raw_pnr:
            errors[f"{key}.personal_identity_number"] = (
                "Ange personnummer, eller markera att identiteten är okänd."
            )
        else:
            try:
                pnr = normalise_personnummer(raw_pnr)
            except InvalidPersonnummer:
                errors[f"{key}.personal_identity_number"] = (
                    "Ange ett giltigt person- eller samordningsnummer, t.ex. 20110305-9893."
                )
        if not name and not s.identity_unknown:
            errors[f"{key}.name"] = "Ange namn."
        elif len(name) > 200:
            errors[f"{key}.name"] = "Namnet får vara högst 200 tecken."
        found.append(_Subject(i, s.identity_unknown, pnr, name or None))
    if not found and not any(k.startswith("subjects[") for k in errors):
        errors["subjects"] = "Ange minst en person, eller markera att identiteten är okänd."
    elif len(found) > MAX_SUBJECTS:
        errors["subjects"] = f"Högst {MAX_SUBJECTS} personer per rapport."
    return found


def _check_text(errors: dict[str, str], key: str, text: str, missing: str) -> str:
    value = _clean(text)
    if not value:
        errors[key] = missing
    elif len(value) > MAX_TEXT:
        errors[key] = "Texten får vara högst 20 000 tecken."
    return value


async def create_report(
    db: AsyncSession,
    vault: Vault,
    principal: Principal,
    data: ReportInput,
    *,
    pre_errors: dict[str, str] | None = None,
) -> uuid.UUID:
    """Validate everything, then store the report encrypted, audit it and queue the unit's mail.

    `pre_errors` are problems found while parsing a form (e.g. an unreadable date); they are
    reported together with the rest. Nothing is written unless every check passes.
    """
    scope = scope_of(principal)
    if not scope.jours:
        raise Forbidden(audit=AuditNote("report.create", "denied", object_type="report"))
    errors = dict(pre_errors or {})
    version = await codelists.current_version(db)
    if data.code_list_version and data.code_list_version != version:
        errors["code_list_version"] = (
            f"Rapporter skrivs nu enligt kodlista {version}; "
            f"koder ur version {_one_line(data.code_list_version)[:20]} kan inte användas."
        )
    lists = await codelists.load(db, version)
    jour_id, unit, other = await _destination(db, data, scope.jours, errors)
    occurred_at = _check_time(errors, "occurred_at", data.occurred_at, "Ange när det hände.")
    actions = _check_codes(data, lists, errors)
    if data.minutes is None:
        errors.setdefault("minutes", "Ange tidsåtgång i minuter.")
    elif not 0 <= data.minutes <= MAX_MINUTES:
        errors["minutes"] = f"Ange tidsåtgång i hela minuter, 0–{MAX_MINUTES}."
    subjects = _check_subjects(data, errors)
    category = lists.get("category", _clean(data.category))
    if category is not None and category.involves_child and not data.child_involved:
        errors["child_involved"] = (
            "Kategorin gäller barn eller unga – markera att barn berörs och fyll i "
            "skyddsbedömningen."
        )
    a = data.assessment
    assessment = assessment_facts = assessed_by = ""
    assessed_at: datetime | None = None
    if data.child_involved:
        assessment = _check_text(
            errors, "assessment.assessment", a.assessment if a else "", "Skriv skyddsbedömningen."
        )
        assessment_facts = _check_text(
            errors,
            "assessment.facts",
            a.facts if a else "",
            "Ange vilka uppgifter skyddsbedömningen grundar sig på.",
        )
        assessed_at = _check_time(
            errors,
            "assessment.assessed_at",
            a.assessed_at if a else None,
            "Ange när skyddsbedömningen gjordes.",
        )
        assessed_by = _one_line(a.assessed_by if a else "")
        if not assessed_by:
            errors["assessment.assessed_by"] = "Ange vem som gjorde skyddsbedömningen."
        elif len(assessed_by) > 200:
            errors["assessment.assessed_by"] = "Högst 200 tecken."
    narrative = _check_text(errors, "narrative", data.narrative, "Beskriv händelsen.")
    urgency: str | None = None
    if data.follow_up_requested:
        urgency = _clean(data.follow_up_urgency)
        if urgency not in URGENCIES:
            errors["follow_up_urgency"] = "Välj hur snart kommunen behöver följa upp."
    if errors:
        raise InvalidInput(errors=errors)
    assert jour_id is not None and occurred_at is not None

    rid = uuid.uuid4()
    report = Report(
        id=rid,
        jour_id=jour_id,
        author_id=principal.user_id,
        municipality_id=unit.organisation_id if unit else None,
        unit_id=unit.id if unit else None,
        other_municipality=other,
        code_list_version=version,
        occurred_at=occurred_at,
        on_call=data.on_call,
        initiator_code=_clean(data.initiator),
        category_code=_clean(data.category),
        character_code=_clean(data.character),
        minutes=data.minutes,
        child_involved=data.child_involved,
        narrative_enc=vault.encrypt(narrative, f"reports.narrative:{rid}"),
        follow_up_requested=data.follow_up_requested,
        follow_up_urgency=urgency,
    )
    if data.child_involved:
        report.assessment_enc = vault.encrypt(assessment, f"reports.assessment:{rid}")
        report.assessment_facts_enc = vault.encrypt(
            assessment_facts, f"reports.assessment_facts:{rid}"
        )
        report.assessed_at = assessed_at
        report.assessed_by_enc = vault.encrypt(assessed_by, f"reports.assessed_by:{rid}")
    db.add(report)
    await db.flush()
    for s in subjects:
        sid = uuid.uuid4()
        db.add(
            ReportSubject(
                id=sid,
                report_id=rid,
                position=s.position,
                identity_unknown=s.identity_unknown,
                pnr_index=vault.index(s.pnr) if s.pnr else None,
                pnr_enc=vault.encrypt(s.pnr, f"report_subjects.pnr:{sid}") if s.pnr else None,
                name_enc=vault.encrypt(s.name, f"report_subjects.name:{sid}") if s.name else None,
            )
        )
    await names.index_names(db, vault, "report", rid, [s.name for s in subjects if s.name])
    for code in actions:
        db.add(ReportAction(report_id=rid, action_code=code))
    db.add(ReportRead(report_id=rid, user_id=principal.user_id))
    await db.flush()
    await audit.record(
        db,
        "report.create",
        actor=principal.actor(jour_id),
        owner_org_id=_owner_org(report),
        object_type="report",
        object_id=rid,
        details={"code_list_version": version, "other_municipality": other is not None},
    )
    if unit is not None and unit.mailbox:
        await queue_mail(db, to=unit.mailbox, template="new_report", link_path=f"/rapporter/{rid}")
    return rid


# --- reading -------------------------------------------------------------------------------


async def _org_names(db: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await db.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted))
    )
    return {r.id: r.name for r in rows}


async def _unit_names(db: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await db.execute(select(Unit.id, Unit.name).where(Unit.id.in_(wanted)))
    return {r.id: r.name for r in rows}


class _ListCache:
    """Code lists by version, loaded once per call."""

    def __init__(self, db: AsyncSession) -> None:
        self._db = db
        self._lists: dict[str, CodeLists] = {}

    async def ref(self, version: str, list_name: str, code: str) -> CodeRef:
        if version not in self._lists:
            self._lists[version] = await codelists.load(self._db, version)
        return CodeRef(code, self._lists[version].label(list_name, code))


def _unread(principal: Principal) -> ColumnElement[bool]:
    """SQL: the principal has not opened the report since it was sent or last changed."""
    seen = aliased(ReportRead)  # the list query joins ReportRead itself: don't correlate to it
    return ~(
        select(seen.report_id)
        .where(
            seen.report_id == Report.id,
            seen.user_id == principal.user_id,
            seen.read_at >= Report.changed_at,
        )
        .exists()
    )


def _shown(principal: Principal, show: str) -> ColumnElement[bool]:
    """SQL for a list filter: all | unacknowledged | unread."""
    if show == "unacknowledged":
        return Report.acknowledged_at.is_(None) & Report.municipality_id.is_not(None)
    if show == "unread":
        return _unread(principal)
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


async def _page(
    db: AsyncSession,
    vault: Vault,
    principal: Principal,
    where: ColumnElement[bool],
    *,
    show: str,
    before: str | None,
    size: int,
) -> ReportPage:
    """A keyset page of `where` (filtered by `show`), newest first, and the list's counts."""
    filtered = where & _shown(principal, show)
    rows = await _summaries(db, vault, principal, filtered & _after_cursor(before), limit=size + 1)
    count = select(func.count()).select_from(Report)
    total = await db.scalar(count.where(filtered))
    unread = await db.scalar(count.where(where & _unread(principal)))
    open_ = await db.scalar(count.where(where & _shown(principal, "unacknowledged")))
    last = rows[size - 1] if len(rows) > size else None
    return ReportPage(
        rows=rows[:size],
        next_cursor=f"{last.created_at.isoformat()}_{last.id}" if last else None,
        total=int(total or 0),
        unread=int(unread or 0),
        unacknowledged=int(open_ or 0),
    )


async def _summaries(
    db: AsyncSession,
    vault: Vault | None,
    principal: Principal,
    where: ColumnElement[bool],
    *,
    join_subject_index: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[ReportSummary]:
    stmt = (
        select(Report, ReportRead.read_at)
        .outerjoin(
            ReportRead,
            (ReportRead.report_id == Report.id) & (ReportRead.user_id == principal.user_id),
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
    orgs = await _org_names(db, [x.jour_id for x in reports] + [x.municipality_id for x in reports])
    units = await _unit_names(db, [x.unit_id for x in reports])
    owners = await user_names(db, vault, [x.follow_up_owner_id for x in reports]) if vault else {}
    cache = _ListCache(db)
    out: list[ReportSummary] = []
    for report, read_at in rows:
        out.append(
            ReportSummary(
                id=report.id,
                created_at=report.created_at,
                occurred_at=report.occurred_at,
                jour_name=orgs.get(report.jour_id, ""),
                municipality_name=(
                    orgs.get(report.municipality_id, "")
                    if report.municipality_id
                    else report.other_municipality or ""
                ),
                other_municipality=report.municipality_id is None,
                unit_name=units.get(report.unit_id) if report.unit_id else None,
                category=await cache.ref(
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
    principal: Principal,
    box: str,
    *,
    show: str = "all",
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> ReportPage:
    """A page of a box, newest first: "inbox" (reports addressed to the principal's
    municipalities or units) or "sent" (written by the principal's jours, with receipts)."""
    scope = scope_of(principal)
    where: ColumnElement[bool] = scope.receiving_clause()
    if box == "sent":
        where = Report.jour_id.in_(scope.jours) if scope.jours else false()
    return await _page(db, vault, principal, where, show=show, before=before, size=size)


async def find_by_ids(
    db: AsyncSession, principal: Principal, ids: set[uuid.UUID]
) -> list[ReportSummary]:
    """Reports among `ids` (a name search's matches) that the principal may see."""
    if not ids:
        return []
    where = scope_of(principal).visible_clause() & Report.id.in_(ids)
    return await _summaries(db, None, principal, where)


async def find_by_person(
    db: AsyncSession, principal: Principal, pnr_index: str
) -> list[ReportSummary]:
    """Reports about the person with this blind index that the principal may see.

    The jour sees its own reports, handlers their municipality's (or unit's). Uses the indexed
    report_subjects.pnr_index; the caller (the lookup) audits the search itself.
    """
    return await _summaries(
        db,
        None,
        principal,
        scope_of(principal).visible_clause(),
        join_subject_index=pnr_index,
    )


async def _mark_read(db: AsyncSession, report_id: uuid.UUID, user_id: uuid.UUID) -> None:
    existing = await db.get(ReportRead, (report_id, user_id))
    if existing is not None:
        existing.read_at = utcnow()
        return
    try:
        async with db.begin_nested():
            db.add(ReportRead(report_id=report_id, user_id=user_id))
    except IntegrityError:  # the same user opened it twice at once; the other write wins
        pass


async def _view(db: AsyncSession, vault: Vault, report: Report, scope: Scope) -> ReportOut:
    rid = report.id
    subjects = (
        await db.scalars(
            select(ReportSubject)
            .where(ReportSubject.report_id == rid)
            .order_by(ReportSubject.position)
        )
    ).all()
    actions = (
        await db.scalars(
            select(ReportAction.action_code)
            .where(ReportAction.report_id == rid)
            .order_by(ReportAction.action_code)
        )
    ).all()
    addenda = (
        await db.scalars(
            select(ReportAddendum)
            .where(ReportAddendum.report_id == rid)
            .order_by(ReportAddendum.created_at, ReportAddendum.id)
        )
    ).all()
    names = await user_names(
        db,
        vault,
        [report.author_id, report.acknowledged_by, report.follow_up_owner_id]
        + [a.author_id for a in addenda],
    )
    orgs = await _org_names(db, [report.jour_id, report.municipality_id])
    units = await _unit_names(db, [report.unit_id])
    lists = await codelists.load(db, report.code_list_version)
    files = await attachments.list_attachments(db, vault, owner_type=OWNER_TYPE, owner_id=rid)

    def ref(list_name: str, code: str) -> CodeRef:
        return CodeRef(code, lists.label(list_name, code))

    assessment: AssessmentOut | None = None
    if report.child_involved and report.assessment_enc and report.assessed_at:
        assessment = AssessmentOut(
            assessment=vault.decrypt(report.assessment_enc, f"reports.assessment:{rid}"),
            facts=vault.decrypt(
                report.assessment_facts_enc or "", f"reports.assessment_facts:{rid}"
            ),
            assessed_at=report.assessed_at,
            assessed_by=vault.decrypt(report.assessed_by_enc or "", f"reports.assessed_by:{rid}"),
        )
    return ReportOut(
        id=rid,
        jour_name=orgs.get(report.jour_id, ""),
        author_name=names.get(report.author_id, ""),
        municipality_name=(
            orgs.get(report.municipality_id, "")
            if report.municipality_id
            else report.other_municipality or ""
        ),
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
        subjects=[
            SubjectOut(
                identity_unknown=s.identity_unknown,
                personal_identity_number=(
                    vault.decrypt(s.pnr_enc, f"report_subjects.pnr:{s.id}") if s.pnr_enc else None
                ),
                name=vault.decrypt(s.name_enc, f"report_subjects.name:{s.id}")
                if s.name_enc
                else None,
            )
            for s in subjects
        ],
        child_involved=report.child_involved,
        assessment=assessment,
        narrative=vault.decrypt(report.narrative_enc, f"reports.narrative:{rid}"),
        follow_up_requested=report.follow_up_requested,
        follow_up_urgency=URGENCIES.get(report.follow_up_urgency or ""),
        created_at=report.created_at,
        acknowledged_at=report.acknowledged_at,
        acknowledged_by_name=names.get(report.acknowledged_by) if report.acknowledged_by else None,
        follow_up_owner_name=(
            names.get(report.follow_up_owner_id) if report.follow_up_owner_id else None
        ),
        addenda=[
            AddendumOut(
                id=a.id,
                created_at=a.created_at,
                author_name=names.get(a.author_id, ""),
                text=vault.decrypt(a.text_enc, f"report_addenda.text:{a.id}"),
            )
            for a in addenda
        ],
        attachments=[
            AttachmentRef(f.id, f.name, f.content_type, f.size, f.created_at) for f in files
        ],
        can_acknowledge=scope.receives(report) and report.acknowledged_at is None,
        can_add_addendum=scope.writes(report),
    )


async def open_report(
    db: AsyncSession, vault: Vault, principal: Principal, report_id: uuid.UUID
) -> ReportOut:
    """The whole report; marks it read for this user and audits the reading."""
    report, scope = await _visible(db, principal, report_id, "report.read")
    await _mark_read(db, report.id, principal.user_id)
    await audit.record(
        db,
        "report.read",
        actor=principal.actor(),
        owner_org_id=_owner_org(report),
        object_type="report",
        object_id=report.id,
    )
    return await _view(db, vault, report, scope)


async def follow_up_candidates(
    db: AsyncSession, vault: Vault, principal: Principal, report_id: uuid.UUID
) -> list[PersonOption]:
    """Handlers of the receiving municipality who can take over the follow-up, by name."""
    report, _ = await _visible(db, principal, report_id, "report.read")
    if report.municipality_id is None:
        return []
    ids = set(
        await db.scalars(
            select(Membership.user_id).where(
                Membership.organisation_id == report.municipality_id,
                Membership.role.in_(READER_ROLES),
                Membership.revoked_at.is_(None),
            )
        )
    )
    names = await user_names(db, vault, ids)
    return sorted(
        (PersonOption(uid, n) for uid, n in names.items()), key=lambda p: p.name.casefold()
    )


async def acknowledge(
    db: AsyncSession,
    principal: Principal,
    report_id: uuid.UUID,
    follow_up_owner_id: uuid.UUID | None,
) -> None:
    """Acknowledge receipt and record who takes over the follow-up (default: the caller)."""
    action = "report.acknowledge"
    report, scope = await _visible(db, principal, report_id, action)
    if not scope.receives(report):
        raise Forbidden(
            "Bara handläggare i den mottagande kommunen kan kvittera rapporten.",
            audit=_note(action, "denied", report_id, report),
        )
    owner = follow_up_owner_id or principal.user_id
    is_handler = await db.scalar(
        select(Membership.id).where(
            Membership.user_id == owner,
            Membership.organisation_id == report.municipality_id,
            Membership.role.in_(READER_ROLES),
            Membership.revoked_at.is_(None),
        )
    )
    if is_handler is None:
        raise InvalidInput(
            errors={"follow_up_owner_id": "Välj en handläggare i kommunen som tar över."}
        )
    now = utcnow()
    # Conditional update: of two handlers acknowledging at once, exactly one wins.
    done = await db.execute(
        update(Report)
        .where(Report.id == report.id, Report.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=principal.user_id, follow_up_owner_id=owner)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict("Rapporten är redan kvitterad.")
    await db.refresh(report)
    await _mark_read(db, report.id, principal.user_id)
    await audit.record(
        db,
        action,
        actor=principal.actor(report.municipality_id),
        owner_org_id=_owner_org(report),
        object_type="report",
        object_id=report.id,
        details={"follow_up_owner_id": str(owner)},
    )


async def add_addendum(
    db: AsyncSession, vault: Vault, principal: Principal, report_id: uuid.UUID, text: str
) -> uuid.UUID:
    """Append an addendum (the jour only); the report itself never changes."""
    action = "report.addendum"
    report, scope = await _visible(db, principal, report_id, action)
    if not scope.writes(report):
        raise Forbidden(
            "Bara socialjouren som skrev rapporten kan lägga till tillägg.",
            audit=_note(action, "denied", report_id, report),
        )
    errors: dict[str, str] = {}
    value = _check_text(errors, "text", text, "Skriv tillägget.")
    if errors:
        raise InvalidInput(errors=errors)
    aid = uuid.uuid4()
    db.add(
        ReportAddendum(
            id=aid,
            report_id=report.id,
            author_id=principal.user_id,
            text_enc=vault.encrypt(value, f"report_addenda.text:{aid}"),
        )
    )
    report.changed_at = utcnow()
    await db.flush()
    await _mark_read(db, report.id, principal.user_id)
    await audit.record(
        db,
        action,
        actor=principal.actor(report.jour_id),
        owner_org_id=_owner_org(report),
        object_type="report",
        object_id=report.id,
        details={"addendum_id": str(aid)},
    )
    if report.unit_id is not None:
        unit = await db.get(Unit, report.unit_id)
        if unit is not None and unit.mailbox:
            await queue_mail(
                db, to=unit.mailbox, template="report_addendum", link_path=f"/rapporter/{report.id}"
            )
    return aid


async def report_for_download(
    db: AsyncSession, vault: Vault, principal: Principal, report_id: uuid.UUID
) -> ReportOut:
    """The report for a PDF download; audits the download."""
    report, scope = await _visible(db, principal, report_id, "report.download")
    await audit.record(
        db,
        "report.download",
        actor=principal.actor(),
        owner_org_id=_owner_org(report),
        object_type="report",
        object_id=report.id,
        details={"format": "pdf"},
    )
    return await _view(db, vault, report, scope)


async def add_attachments(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    principal: Principal,
    report_id: uuid.UUID,
    uploads: list[Upload],
) -> list[uuid.UUID]:
    """Attach files to a sent report (the writing jour only); every file is checked first.

    Checked in the request's transaction (which is then released), stored with no connection
    held, recorded in a short transaction that re-checks and locks the report
    (`portal.attachments.service`).
    """
    await _writable(db, principal, report_id)
    if not uploads:
        raise InvalidInput(errors={"attachments": "Välj minst en fil."})
    checked = await attachments.check_uploads(uploads)  # all, before storing any
    await attachments.release(db)
    staged = await attachments.store_files(files, uploads, checked)
    async with attachments.recording(sessions, files, staged) as tx:
        report = await _writable(tx, principal, report_id, lock=True)
        rows = await attachments.record_files(
            tx,
            vault,
            staged,
            owner_type=OWNER_TYPE,
            owner_id=report.id,
            org_id=_owner_org(report),
            actor=principal.actor(report.jour_id),
        )
        report.changed_at = utcnow()
    return [row.id for row in rows]


async def _writable(
    db: AsyncSession, principal: Principal, report_id: uuid.UUID, *, lock: bool = False
) -> Report:
    """The report if the principal's jour wrote it (audited 404/403 otherwise); `lock` locks it."""
    action = "report.attach"
    if lock:
        await db.execute(select(Report.id).where(Report.id == report_id).with_for_update())
    report, scope = await _visible(db, principal, report_id, action)
    if not scope.writes(report):
        raise Forbidden(
            "Bara socialjouren som skrev rapporten kan bifoga filer.",
            audit=_note(action, "denied", report_id, report),
        )
    return report


async def open_attachment(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    principal: Principal,
    report_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> OpenedFile:
    """A report's file for download, for whoever may see the report (audited)."""
    report, _ = await _visible(db, principal, report_id, "report.attachment_download")
    return await attachments.open_attachment(
        db,
        sessions,
        files,
        vault,
        owner_type=OWNER_TYPE,
        owner_id=report.id,
        attachment_id=attachment_id,
        actor=principal.actor(),
    )


async def can_read_report(db: AsyncSession, principal: Principal, report_id: uuid.UUID) -> bool:
    """For attachments (owner_type "report"): may the principal see this report? Not audited."""
    report = await db.get(Report, report_id)
    return report is not None and scope_of(principal).sees(report)


async def form_units(db: AsyncSession, principal: Principal) -> list[tuple[str, list[Unit]]]:
    """Units of the member municipalities of the principal's jours, grouped by municipality."""
    jours = scope_of(principal).jours
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


async def describe(db: AsyncSession, vault: Vault, report: Report) -> ReportOut:
    """The whole report, decrypted, for the archive (the caller has checked ownership)."""
    return await _view(db, vault, report, Scope(frozenset(), frozenset(), frozenset()))
