"""Inputs and outputs of the JSON API (typed: they appear in OpenAPI), and the report page's
form parsed into the same ReportInput the API takes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from litestar.datastructures import UploadFile

URGENCIES: dict[str, str] = {
    "omgaende": "Omgående",
    "nasta_vardag": "Nästa vardag",
    "inom_en_vecka": "Inom en vecka",
}
"""Follow-up urgency codes and their Swedish labels."""


@dataclass
class SubjectInput:
    """A person the report is about."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer; empty when the identity is unknown."""
    name: str = ""
    """Name; required unless the identity is unknown."""
    identity_unknown: bool = False
    """The person did not or could not identify themself ("identitet okänd")."""


@dataclass
class AssessmentInput:
    """The protection assessment (skyddsbedömning, SOSFS 2014:5) when a child is involved."""

    assessment: str = ""
    """The assessment itself."""
    facts: str = ""
    """The facts the assessment rests on."""
    assessed_at: datetime | None = None
    """When it was made (naive values are Swedish local time)."""
    assessed_by: str = ""
    """Who made it (name and title)."""


@dataclass
class ReportInput:
    """A new incident report. Give either `unit_id` or `other_municipality`."""

    occurred_at: datetime | None = None
    """When the event happened (naive values are Swedish local time)."""
    initiator: str = ""
    """Initiator code (kodlista initiativtagare)."""
    category: str = ""
    """Category code (kodlista kategori)."""
    character: str = ""
    """Character code (kodlista karaktär)."""
    actions: list[str] = field(default_factory=list)
    """Action codes (kodlista åtgärd), at least one."""
    minutes: int | None = None
    """Time spent in whole minutes, 0–1440."""
    subjects: list[SubjectInput] = field(default_factory=list)
    """The persons concerned, 1–10."""
    narrative: str = ""
    """What happened and what the jour did."""
    unit_id: uuid.UUID | None = None
    """The receiving unit of a member municipality."""
    other_municipality: str = ""
    """Name of a non-member municipality ("Annan kommun"); the jour keeps the report."""
    jour_id: uuid.UUID | None = None
    """The writing jour; needed only when the author works for several jours."""
    on_call: bool = False
    """The event happened during on-call time (beredskap)."""
    child_involved: bool = False
    """A child is involved: the protection assessment is required."""
    assessment: AssessmentInput | None = None
    """The protection assessment (required when `child_involved`)."""
    follow_up_requested: bool = False
    """The jour asks the municipality to follow up."""
    follow_up_urgency: str = ""
    """omgaende | nasta_vardag | inom_en_vecka (required when follow-up is requested)."""
    code_list_version: str | None = None
    """Optional: the code list version the client used; must be the current one."""


@dataclass
class AcknowledgeInput:
    """Acknowledge a report and name who takes over the follow-up."""

    follow_up_owner_id: uuid.UUID | None = None
    """A handler of the municipality; default the acknowledging user."""


@dataclass
class AddendumInput:
    """An addition or correction to a sent report."""

    text: str = ""
    """The addendum text."""


@dataclass(frozen=True, slots=True)
class CodeRef:
    """A code and its label in the report's code list version."""

    code: str
    """The code."""
    label: str
    """Swedish label."""


@dataclass(frozen=True, slots=True)
class SubjectOut:
    """A person the report is about."""

    identity_unknown: bool
    """The identity is unknown."""
    personal_identity_number: str | None
    """Personnummer (12 digits), when known."""
    name: str | None
    """Name, when given."""


@dataclass(frozen=True, slots=True)
class AssessmentOut:
    """The protection assessment."""

    assessment: str
    """The assessment."""
    facts: str
    """The facts it rests on."""
    assessed_at: datetime
    """When it was made (UTC)."""
    assessed_by: str
    """Who made it."""


@dataclass(frozen=True, slots=True)
class AddendumOut:
    """An addendum, in order of writing."""

    id: uuid.UUID
    """The addendum."""
    created_at: datetime
    """When it was written (UTC)."""
    author_name: str
    """Who wrote it."""
    text: str
    """The text."""


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """A file attached to the report (download: GET .../attachments/{id}, audited)."""

    id: uuid.UUID
    """The attachment."""
    name: str
    """File name as given."""
    content_type: str
    """Type decided from the content."""
    size: int
    """Bytes."""
    created_at: datetime
    """When it was attached (UTC)."""


@dataclass(frozen=True, slots=True)
class AttachmentsCreated:
    """Ids of the files just attached."""

    ids: list[uuid.UUID]
    """New attachment ids, in upload order."""


@dataclass
class AttachmentsIn:
    """Files to attach (multipart/form-data, field `attachments`)."""

    attachments: list[UploadFile]
    """One or more PDF, PNG or JPEG files; the content decides the type."""


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """A report in a list: no personal data (names and texts only on the audited detail)."""

    id: uuid.UUID
    """The report."""
    created_at: datetime
    """When it was sent (UTC)."""
    occurred_at: datetime
    """When the event happened (UTC)."""
    jour_name: str
    """The writing jour."""
    municipality_name: str
    """Receiving municipality, or the free-text name for "Annan kommun"."""
    other_municipality: bool
    """A non-member municipality: kept by the jour, sent by other means."""
    unit_name: str | None
    """Receiving unit."""
    category: CodeRef
    """Category."""
    child_involved: bool
    """A child is involved."""
    follow_up_requested: bool
    """Follow-up requested."""
    follow_up_urgency: str | None
    """Urgency label."""
    unread: bool
    """Not opened by this user since it was sent or last changed."""
    acknowledged_at: datetime | None
    """When the unit acknowledged it (UTC)."""
    follow_up_owner_name: str | None = None
    """Who took over the follow-up (lists only; not filled by find_by_person)."""


@dataclass(frozen=True, slots=True)
class ReportOut:
    """A whole report as its readers see it."""

    id: uuid.UUID
    """The report."""
    jour_name: str
    """The writing jour."""
    author_name: str
    """Who wrote it."""
    municipality_name: str
    """Receiving municipality, or the free-text name for "Annan kommun"."""
    other_municipality: bool
    """A non-member municipality."""
    unit_name: str | None
    """Receiving unit."""
    code_list_version: str
    """The code list version the report was written under."""
    occurred_at: datetime
    """When the event happened (UTC)."""
    on_call: bool
    """During on-call time."""
    initiator: CodeRef
    """Initiator."""
    category: CodeRef
    """Category."""
    character: CodeRef
    """Character."""
    actions: list[CodeRef]
    """Actions taken."""
    minutes: int
    """Time spent."""
    subjects: list[SubjectOut]
    """The persons concerned."""
    child_involved: bool
    """A child is involved."""
    assessment: AssessmentOut | None
    """The protection assessment."""
    narrative: str
    """What happened."""
    follow_up_requested: bool
    """Follow-up requested."""
    follow_up_urgency: str | None
    """Urgency label."""
    created_at: datetime
    """When it was sent (UTC)."""
    acknowledged_at: datetime | None
    """When it was acknowledged (UTC)."""
    acknowledged_by_name: str | None
    """Who acknowledged it."""
    follow_up_owner_name: str | None
    """Who took over the follow-up."""
    addenda: list[AddendumOut]
    """Additions and corrections, oldest first."""
    attachments: list[AttachmentRef]
    """Attached files, oldest first."""
    can_acknowledge: bool
    """This user may acknowledge it now."""
    can_add_addendum: bool
    """This user may write an addendum."""


@dataclass(frozen=True, slots=True)
class PersonOption:
    """A handler who can take over a follow-up."""

    user_id: uuid.UUID
    """The user."""
    name: str
    """Their name."""


# --- the page form -------------------------------------------------------------------------

SUBJECT_ROWS = 3
"""Person rows on the page form (the API takes up to 10)."""
_TRUE = {"1", "on", "true", "ja"}


def field_id(name: str) -> str:
    """A safe HTML id for a field name: "subjects[0].name" -> "subjects-0-name"."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")


@dataclass(frozen=True, slots=True)
class ParsedForm:
    """The input, problems found while parsing, and the raw values to show again."""

    data: ReportInput
    """What the service validates."""
    errors: dict[str, str]
    """Parse problems (unreadable number or date)."""
    values: Mapping[str, str]
    """Raw single values by field name."""
    actions: list[str]
    """Checked action codes."""


def _local(text: str, key: str, errors: dict[str, str]) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        errors[key] = "Ange datum och tid som ÅÅÅÅ-MM-DD TT:MM."
        return None


def parse_report_form(form: Mapping[str, list[str]]) -> ParsedForm:
    """Convert the form; naive times are Swedish local time (the service converts to UTC)."""
    errors: dict[str, str] = {}
    values = {k: (form.get(k) or [""])[0] for k in _single_fields()}

    def flag(name: str) -> bool:
        return values.get(name, "").strip().lower() in _TRUE

    unit_raw = values["unit_id"].strip()
    unit_id: uuid.UUID | None = None
    other = ""
    if unit_raw == "annan":
        other = values["other_municipality"]
    elif unit_raw:
        try:
            unit_id = uuid.UUID(unit_raw)
        except ValueError:
            errors["unit_id"] = "Välj en enhet i listan."
    minutes: int | None = None
    if values["minutes"].strip():
        try:
            minutes = int(values["minutes"].strip())
        except ValueError:
            errors["minutes"] = "Ange tidsåtgång i hela minuter, t.ex. 45."
    subjects = [
        SubjectInput(
            personal_identity_number=values[f"subjects[{i}].personal_identity_number"],
            name=values[f"subjects[{i}].name"],
            identity_unknown=flag(f"subjects[{i}].identity_unknown"),
        )
        for i in range(SUBJECT_ROWS)
    ]
    assessment = AssessmentInput(
        assessment=values["assessment.assessment"],
        facts=values["assessment.facts"],
        assessed_at=_local(values["assessment.assessed_at"], "assessment.assessed_at", errors),
        assessed_by=values["assessment.assessed_by"],
    )
    actions = [a for a in form.get("actions", []) if a]
    data = ReportInput(
        occurred_at=_local(values["occurred_at"], "occurred_at", errors),
        initiator=values["initiator"],
        category=values["category"],
        character=values["character"],
        actions=actions,
        minutes=minutes,
        subjects=subjects,
        narrative=values["narrative"],
        unit_id=unit_id,
        other_municipality=other,
        on_call=flag("on_call"),
        child_involved=flag("child_involved"),
        assessment=assessment,
        follow_up_requested=flag("follow_up_requested"),
        follow_up_urgency=values["follow_up_urgency"],
    )
    return ParsedForm(data, errors, values, actions)


def _single_fields() -> list[str]:
    names = [
        "unit_id",
        "other_municipality",
        "occurred_at",
        "on_call",
        "initiator",
        "category",
        "character",
        "minutes",
        "child_involved",
        "assessment.assessment",
        "assessment.facts",
        "assessment.assessed_at",
        "assessment.assessed_by",
        "narrative",
        "follow_up_requested",
        "follow_up_urgency",
    ]
    for i in range(SUBJECT_ROWS):
        names += [
            f"subjects[{i}].personal_identity_number",
            f"subjects[{i}].name",
            f"subjects[{i}].identity_unknown",
        ]
    return names
