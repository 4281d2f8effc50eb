"""What a report says: validation of a new report, its encrypted columns, and its labels.

Error keys name the fields of ReportInput (`subjects[0].personal_identity_number`,
`assessment.facts`, …); the page turns them into ids with `schemas.field_id`. Every check runs
before anything is written, and the errors come back together. Personal data is stored only
as ciphertext bound to its column and row (`context`); codes, times, minutes and flags stay in
clear for statistics.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.codelists import service as codelists
from portal.codelists.service import CodeLists
from portal.db.models import Organisation, Unit
from portal.errors import InvalidInput
from portal.pii import (
    InvalidPersonnummer,
    Vault,
    field_context,
    invalid_personnummer,
    normalise_personnummer,
)
from portal.reports.models import Report, ReportAddendum, ReportSubject
from portal.reports.schemas import (
    URGENCIES,
    AddendumOut,
    AssessmentOut,
    CodeRef,
    ReportInput,
    SubjectOut,
)
from portal.timefmt import STOCKHOLM, format_local

MAX_MINUTES = 24 * 60
"""Most minutes one report can account for."""
MAX_SUBJECTS = 10
"""Persons in one report."""
MAX_TEXT = 20_000
"""Characters in the narrative, an assessment text or an addendum."""
FUTURE_SLACK = timedelta(minutes=10)
"""How far in the future a time may lie (clocks differ)."""
MAX_AGE = timedelta(days=366)
"""How far back the event (and its assessment) may lie."""


def local_time(value: datetime | None) -> str:
    """2026-11-23 22:15 in Swedish time; empty for None."""
    return format_local(value)


def as_utc(value: datetime) -> datetime:
    """A timezone-aware UTC time; naive values are taken as Swedish local time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=STOCKHOLM)
    return value.astimezone(UTC)


def clean(text: str | None) -> str:
    """The text without surrounding white space."""
    return (text or "").strip()


def one_line(text: str | None) -> str:
    """The text on one line, runs of white space made one space."""
    return " ".join((text or "").split())


# --- validation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedSubject:
    """A person of a new report, checked."""

    position: int
    """Row on the form / index in the input."""
    identity_unknown: bool
    """"Identitet okänd"."""
    pnr: str | None
    """Normalised 12-digit number, or None."""
    name: str | None
    """Name on one line, or None."""


@dataclass(frozen=True, slots=True)
class CheckedReport:
    """A new report after every check passed: what is stored."""

    jour_id: uuid.UUID
    """The writing jour."""
    unit: Unit | None
    """The receiving unit (None for "Annan kommun")."""
    other_municipality: str | None
    """The non-member municipality's name, or None."""
    code_list_version: str
    """The version the codes were checked against."""
    occurred_at: datetime
    """When it happened (UTC)."""
    initiator: str
    """Initiator code."""
    category: str
    """Category code."""
    character: str
    """Character code."""
    actions: list[str]
    """Action codes, without duplicates."""
    minutes: int
    """Time spent."""
    subjects: list[CheckedSubject]
    """The persons."""
    narrative: str
    """What happened."""
    assessment: tuple[str, str, datetime, str] | None
    """(assessment, facts, assessed_at UTC, assessed_by) when a child is involved."""
    urgency: str | None
    """Follow-up urgency code, when a follow-up is requested."""


def _check_time(
    errors: dict[str, str], key: str, value: datetime | None, missing: str, now: datetime
) -> datetime | None:
    if value is None:
        errors[key] = missing
        return None
    at = as_utc(value)
    if at > now + FUTURE_SLACK:
        errors[key] = "Tidpunkten kan inte ligga i framtiden."
    elif at < now - MAX_AGE:
        errors[key] = "Tidpunkten ligger mer än ett år bakåt. Kontrollera datumet."
    return at


def _escape_like(text: str) -> str:
    """`text` as a LIKE pattern that matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _destination(
    db: AsyncSession, data: ReportInput, jours: frozenset[uuid.UUID], errors: dict[str, str]
) -> tuple[uuid.UUID | None, Unit | None, str | None]:
    """(jour id, unit, other municipality name) after validating where the report goes."""
    other = one_line(data.other_municipality)
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


def _check_codes(data: ReportInput, lists: CodeLists, errors: dict[str, str]) -> list[str]:
    labels = {"initiator": "initiativtagare", "category": "kategori", "character": "karaktär"}
    for key, what in labels.items():
        code = clean(getattr(data, key))
        if not code:
            errors[key] = f"Välj {what}."
        elif lists.get(key, code) is None:
            errors[key] = f"Koden finns inte bland {what} i kodlistan {lists.version}."
    actions = list(dict.fromkeys(clean(a) for a in data.actions if clean(a)))
    if not actions:
        errors["actions"] = "Välj minst en åtgärd."
    elif any(lists.get("action", a) is None for a in actions):
        errors["actions"] = f"En eller flera åtgärder finns inte i kodlistan {lists.version}."
    return actions


def _check_subjects(data: ReportInput, errors: dict[str, str]) -> list[CheckedSubject]:
    found: list[CheckedSubject] = []
    for i, s in enumerate(data.subjects):
        raw_pnr, name = clean(s.personal_identity_number), one_line(s.name)
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
                errors[f"{key}.personal_identity_number"] = invalid_personnummer()
        if not name and not s.identity_unknown:
            errors[f"{key}.name"] = "Ange namn."
        elif len(name) > 200:
            errors[f"{key}.name"] = "Namnet får vara högst 200 tecken."
        found.append(CheckedSubject(i, s.identity_unknown, pnr, name or None))
    if not found and not any(k.startswith("subjects[") for k in errors):
        errors["subjects"] = "Ange minst en person, eller markera att identiteten är okänd."
    elif len(found) > MAX_SUBJECTS:
        errors["subjects"] = f"Högst {MAX_SUBJECTS} personer per rapport."
    return found


def check_text(errors: dict[str, str], key: str, text: str, missing: str) -> str:
    """The text stripped; `missing` or a length error under `key` when it won't do."""
    value = clean(text)
    if not value:
        errors[key] = missing
    elif len(value) > MAX_TEXT:
        errors[key] = "Texten får vara högst 20 000 tecken."
    return value


def _check_assessment(
    data: ReportInput, errors: dict[str, str], now: datetime
) -> tuple[str, str, datetime, str] | None:
    """The protection assessment (SOSFS 2014:5), required when a child is involved."""
    if not data.child_involved:
        return None
    a = data.assessment
    assessment = check_text(
        errors, "assessment.assessment", a.assessment if a else "", "Skriv skyddsbedömningen."
    )
    facts = check_text(
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
        now,
    )
    assessed_by = one_line(a.assessed_by if a else "")
    if not assessed_by:
        errors["assessment.assessed_by"] = "Ange vem som gjorde skyddsbedömningen."
    elif len(assessed_by) > 200:
        errors["assessment.assessed_by"] = "Högst 200 tecken."
    if assessed_at is None:
        return None
    return assessment, facts, assessed_at, assessed_by


async def validate(
    db: AsyncSession,
    data: ReportInput,
    jours: frozenset[uuid.UUID],
    *,
    now: datetime,
    pre_errors: dict[str, str] | None = None,
) -> CheckedReport:
    """Every check of a new report written for one of `jours`; InvalidInput with all the
    problems (and `pre_errors`, found while parsing a form) when any fails."""
    errors = dict(pre_errors or {})
    version = await codelists.current_version(db)
    if data.code_list_version and data.code_list_version != version:
        errors["code_list_version"] = (
            f"Rapporter skrivs nu enligt kodlista {version}; "
            f"koder ur version {one_line(data.code_list_version)[:20]} kan inte användas."
        )
    lists = await codelists.load(db, version)
    jour_id, unit, other = await _destination(db, data, jours, errors)
    occurred_at = _check_time(errors, "occurred_at", data.occurred_at, "Ange när det hände.", now)
    actions = _check_codes(data, lists, errors)
    if data.minutes is None:
        errors.setdefault("minutes", "Ange tidsåtgång i minuter.")
    elif not 0 <= data.minutes <= MAX_MINUTES:
        errors["minutes"] = f"Ange tidsåtgång i hela minuter, 0–{MAX_MINUTES}."
    subjects = _check_subjects(data, errors)
    category = lists.get("category", clean(data.category))
    if category is not None and category.involves_child and not data.child_involved:
        errors["child_involved"] = (
            "Kategorin gäller barn eller unga – markera att barn berörs och fyll i "
            "skyddsbedömningen."
        )
    assessment = _check_assessment(data, errors, now)
    narrative = check_text(errors, "narrative", data.narrative, "Beskriv händelsen.")
    urgency: str | None = None
    if data.follow_up_requested:
        urgency = clean(data.follow_up_urgency)
        if urgency not in URGENCIES:
            errors["follow_up_urgency"] = "Välj hur snart kommunen behöver följa upp."
    if errors:
        raise InvalidInput(errors=errors)
    assert jour_id is not None and occurred_at is not None and data.minutes is not None
    return CheckedReport(
        jour_id=jour_id,
        unit=unit,
        other_municipality=other,
        code_list_version=version,
        occurred_at=occurred_at,
        initiator=clean(data.initiator),
        category=clean(data.category),
        character=clean(data.character),
        actions=actions,
        minutes=data.minutes,
        subjects=subjects,
        narrative=narrative,
        assessment=assessment,
        urgency=urgency,
    )


# --- encrypting and decrypting --------------------------------------------------------------


def encrypt_report(
    vault: Vault,
    report_id: uuid.UUID,
    checked: CheckedReport,
    author_id: uuid.UUID,
    *,
    now: datetime,
    child_involved: bool,
    on_call: bool,
    follow_up_requested: bool,
) -> Report:
    """The report row: codes, times and flags in clear, texts encrypted."""
    unit = checked.unit
    report = Report(
        id=report_id,
        jour_id=checked.jour_id,
        author_id=author_id,
        municipality_id=unit.organisation_id if unit else None,
        unit_id=unit.id if unit else None,
        other_municipality=checked.other_municipality,
        code_list_version=checked.code_list_version,
        occurred_at=checked.occurred_at,
        on_call=on_call,
        initiator_code=checked.initiator,
        category_code=checked.category,
        character_code=checked.character,
        minutes=checked.minutes,
        child_involved=child_involved,
        narrative_enc=vault.encrypt(
            checked.narrative, field_context(Report.narrative_enc, report_id)
        ),
        follow_up_requested=follow_up_requested,
        follow_up_urgency=checked.urgency,
        created_at=now,
        changed_at=now,
    )
    if checked.assessment is not None:
        assessment, facts, assessed_at, assessed_by = checked.assessment
        report.assessment_enc = vault.encrypt(
            assessment, field_context(Report.assessment_enc, report_id)
        )
        report.assessment_facts_enc = vault.encrypt(
            facts, field_context(Report.assessment_facts_enc, report_id)
        )
        report.assessed_at = assessed_at
        report.assessed_by_enc = vault.encrypt(
            assessed_by, field_context(Report.assessed_by_enc, report_id)
        )
    return report


def encrypt_subject(vault: Vault, report_id: uuid.UUID, subject: CheckedSubject) -> ReportSubject:
    """A subject row: the number as blind index and ciphertext, the name as ciphertext."""
    sid = uuid.uuid4()
    pnr, name = subject.pnr, subject.name
    return ReportSubject(
        id=sid,
        report_id=report_id,
        position=subject.position,
        identity_unknown=subject.identity_unknown,
        pnr_index=vault.index(pnr) if pnr else None,
        pnr_enc=vault.encrypt(pnr, field_context(ReportSubject.pnr_enc, sid)) if pnr else None,
        name_enc=vault.encrypt(name, field_context(ReportSubject.name_enc, sid)) if name else None,
    )


def encrypt_addendum(
    vault: Vault, report_id: uuid.UUID, author_id: uuid.UUID, text: str, *, now: datetime
) -> ReportAddendum:
    """An addendum row, its text encrypted."""
    aid = uuid.uuid4()
    return ReportAddendum(
        id=aid,
        report_id=report_id,
        author_id=author_id,
        created_at=now,
        text_enc=vault.encrypt(text, field_context(ReportAddendum.text_enc, aid)),
    )


def narrative(vault: Vault, report: Report) -> str:
    """What happened, decrypted."""
    return vault.decrypt(report.narrative_enc, field_context(Report.narrative_enc, report.id))


def assessment(vault: Vault, report: Report) -> AssessmentOut | None:
    """The protection assessment, decrypted; None when the report has none."""
    rid = report.id
    if not (report.child_involved and report.assessment_enc and report.assessed_at):
        return None
    return AssessmentOut(
        assessment=vault.decrypt(report.assessment_enc, field_context(Report.assessment_enc, rid)),
        facts=vault.decrypt(
            report.assessment_facts_enc or "", field_context(Report.assessment_facts_enc, rid)
        ),
        assessed_at=report.assessed_at,
        assessed_by=vault.decrypt(
            report.assessed_by_enc or "", field_context(Report.assessed_by_enc, rid)
        ),
    )


def subject(vault: Vault, row: ReportSubject) -> SubjectOut:
    """A person of the report, decrypted."""
    return SubjectOut(
        identity_unknown=row.identity_unknown,
        personal_identity_number=(
            vault.decrypt(row.pnr_enc, field_context(ReportSubject.pnr_enc, row.id))
            if row.pnr_enc
            else None
        ),
        name=(
            vault.decrypt(row.name_enc, field_context(ReportSubject.name_enc, row.id))
            if row.name_enc
            else None
        ),
    )


def addendum(vault: Vault, row: ReportAddendum, author_name: str) -> AddendumOut:
    """An addendum, decrypted."""
    return AddendumOut(
        id=row.id,
        created_at=row.created_at,
        author_name=author_name,
        text=vault.decrypt(row.text_enc, field_context(ReportAddendum.text_enc, row.id)),
    )


# --- labels ---------------------------------------------------------------------------------


async def org_names(db: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Organisation names by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await db.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted))
    )
    return {r.id: r.name for r in rows}


async def unit_names(db: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Unit names by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await db.execute(select(Unit.id, Unit.name).where(Unit.id.in_(wanted)))
    return {r.id: r.name for r in rows}


def municipality_name(report: Report, orgs: dict[uuid.UUID, str]) -> str:
    """The receiving municipality's name, or the free-text name of a non-member."""
    if report.municipality_id:
        return orgs.get(report.municipality_id, "")
    return report.other_municipality or ""


class Labels:
    """Code labels of any code list version, each version loaded once."""

    def __init__(self, db: AsyncSession) -> None:
        self._db = db
        self._lists: dict[str, CodeLists] = {}

    async def ref(self, version: str, list_name: str, code: str) -> CodeRef:
        """The code with its label in `version` (the version the report was written under)."""
        if version not in self._lists:
            self._lists[version] = await codelists.load(self._db, version)
        return CodeRef(code, self._lists[version].label(list_name, code))
