"""Parse the report page's form into the same ReportInput the JSON API takes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from portal.reports.schemas import AssessmentInput, ReportInput, SubjectInput

SUBJECT_ROWS = 3
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
