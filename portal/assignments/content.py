"""What an assignment says: validation of a draft, the encrypted JSON blob, and the labels.

Error keys name the form fields (and the API's `errors[].field`): `task`, `due_at`,
`personal_identity_number` … so the page's error summary links straight to the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.errors import InvalidInput
from portal.pii import InvalidPersonnummer, invalid_personnummer, normalise_personnummer

KINDS: dict[str, str] = {
    "visit": "Hembesök",
    "call": "Samtal",
    "check": "Kontroll",
    "other": "Annat",
}
"""What kind of task: a visit, a phone call, a check (e.g. that a child is home), other."""
STATUS: dict[str, str] = {
    "sent": "Skickat – inte accepterat",
    "accepted": "Accepterat – pågår",
    "done": "Utfört",
    "not_done": "Inte utfört",
    "withdrawn": "Återkallat",
}
OPEN = ("sent", "accepted")
"""States in which the assignment is on every shift's dashboard."""
CLOSED = ("done", "not_done", "withdrawn")
MAX_AHEAD = timedelta(days=14)
"""Latest deadline: an assignment covers a night or a weekend, not an open-ended duty."""

_LIMITS = {
    "task": 2000,
    "subject_name": 200,
    "requester_name": 200,
    "contact_phone": 40,
    "report_back": 1000,
}
NOTE_LIMIT = 2000
"""Longest outcome note, withdrawal reason or handover note."""
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,38}[0-9]")


@dataclass
class AssignmentDraft:
    """An assignment as typed; `validate` turns it into AssignmentContent or field errors."""

    kind: str = "visit"
    """visit | call | check | other."""
    task: str = ""
    """What the jour should do."""
    personal_identity_number: str = ""
    """For whom (optional): personnummer or samordningsnummer."""
    subject_name: str = ""
    """For whom: the name (optional)."""
    requester_name: str = ""
    """Who asked: the handler."""
    contact_phone: str = ""
    """Where the jour reaches them (or whoever covers) during jour time."""
    due_at: datetime | None = None
    """Until when the task must be done (aware)."""
    report_back: str = ""
    """How to report back, beyond the portal (e.g. "ring Hanna måndag 08:15")."""


@dataclass(frozen=True, slots=True)
class AssignmentContent:
    """A validated assignment."""

    kind: str
    """visit | call | check | other."""
    task: str
    """What to do."""
    personnummer: str | None
    """12 digits, or None when not given."""
    subject_name: str
    """For whom (may be empty)."""
    requester_name: str
    """Who asked."""
    contact_phone: str
    """Their number."""
    due_at: datetime
    """Deadline, aware UTC."""
    report_back: str
    """How to report back."""


def clean(value: str) -> str:
    """Trimmed text with normalised line ends and no trailing spaces."""
    return "\n".join(line.rstrip() for line in value.strip().replace("\r\n", "\n").split("\n"))


def validate(
    draft: AssignmentDraft, *, now: datetime, errors: dict[str, str] | None = None
) -> AssignmentContent:
    """Validate and normalise; raise InvalidInput with every field error at once."""
    errors = dict(errors or {})
    texts = {k: clean(str(getattr(draft, k))) for k in _LIMITS}
    for key in ("subject_name", "requester_name"):
        texts[key] = " ".join(texts[key].split())
    for key, limit in _LIMITS.items():
        if len(texts[key]) > limit:
            errors[key] = f"Högst {limit} tecken."
    if draft.kind not in KINDS:
        errors["kind"] = "Välj vad för slags uppdrag det är."
    if not texts["task"]:
        errors["task"] = "Beskriv vad jouren ska göra."
    if not texts["requester_name"]:
        errors["requester_name"] = "Ange vem som lämnar uppdraget."
    if not _PHONE.fullmatch(texts["contact_phone"]):
        errors["contact_phone"] = "Ange ett telefonnummer, t.ex. 0650-190 00."
    pnr: str | None = None
    if draft.personal_identity_number.strip():
        try:
            pnr = normalise_personnummer(draft.personal_identity_number)
        except InvalidPersonnummer:
            errors["personal_identity_number"] = invalid_personnummer("eller lämna fältet tomt")
    if pnr and not texts["subject_name"]:
        errors["subject_name"] = "Ange personens namn."
    due = draft.due_at
    if "due_at" not in errors:
        if due is None:
            errors["due_at"] = "Ange till när uppdraget ska vara utfört."
        elif due.tzinfo is None:
            errors["due_at"] = "Ange datum och tid med tidszon."
        elif due <= now:
            errors["due_at"] = "Tiden måste ligga i framtiden."
        elif due > now + MAX_AHEAD:
            errors["due_at"] = "Ett uppdrag kan gälla högst 14 dagar framåt."
    if errors:
        raise InvalidInput(errors=errors)
    assert due is not None
    return AssignmentContent(
        kind=draft.kind,
        task=texts["task"],
        personnummer=pnr,
        subject_name=texts["subject_name"],
        requester_name=texts["requester_name"],
        contact_phone=texts["contact_phone"],
        due_at=due.astimezone(UTC),
        report_back=texts["report_back"],
    )


def note_text(value: str, field: str, missing: str) -> str:
    """A required free-text note of at most NOTE_LIMIT characters; InvalidInput otherwise."""
    text = clean(value)
    if not text:
        raise InvalidInput(errors={field: missing})
    if len(text) > NOTE_LIMIT:
        raise InvalidInput(errors={field: f"Högst {NOTE_LIMIT} tecken."})
    return text


def to_blob(content: AssignmentContent) -> str:
    """The free text as JSON (the personnummer excluded: it has its own columns)."""
    body = {
        "task": content.task,
        "subject_name": content.subject_name,
        "requester_name": content.requester_name,
        "contact_phone": content.contact_phone,
        "report_back": content.report_back,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def from_blob(blob: str, *, kind: str, pnr: str | None, due_at: datetime) -> AssignmentContent:
    """Rebuild the content from its decrypted blob and personnummer."""
    body = json.loads(blob)
    return AssignmentContent(
        kind=kind,
        task=body["task"],
        personnummer=pnr,
        subject_name=body["subject_name"],
        requester_name=body["requester_name"],
        contact_phone=body["contact_phone"],
        due_at=due_at,
        report_back=body["report_back"],
    )
