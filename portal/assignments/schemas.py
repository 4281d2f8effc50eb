"""Request and response bodies of the assignment and handover API, and the page forms' parsing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from portal.assignments.content import AssignmentContent, AssignmentDraft
from portal.assignments.queries import Detail, NoteView, Summary
from portal.timefmt import format_local, parse_local

Kind = Literal["visit", "call", "check", "other"]

# -- requests ------------------------------------------------------------------------------


@dataclass
class AssignmentIn:
    """A new assignment to the municipality's jour."""

    task: str = ""
    """What the jour should do (required)."""
    due_at: datetime | None = None
    """Until when it must be done, with time zone (required; at most 14 days ahead)."""
    requester_name: str = ""
    """Who asks: the handler (required)."""
    contact_phone: str = ""
    """Where the jour reaches them during jour time (required)."""
    kind: Kind = "visit"
    """visit (hembesök) | call (samtal) | check (kontroll) | other."""
    personal_identity_number: str = ""
    """For whom (optional): personnummer or samordningsnummer, any common format."""
    subject_name: str = ""
    """For whom: the name (required with a personnummer)."""
    report_back: str = ""
    """How to report back beyond the portal, e.g. "ring Hanna måndag 08:15"."""
    organisation_id: uuid.UUID | None = None
    """Sending municipality; needed only if the caller is a handler in several."""

    def draft(self) -> AssignmentDraft:
        """As a draft for validation."""
        return AssignmentDraft(
            kind=self.kind,
            task=self.task,
            personal_identity_number=self.personal_identity_number,
            subject_name=self.subject_name,
            requester_name=self.requester_name,
            contact_phone=self.contact_phone,
            due_at=self.due_at,
            report_back=self.report_back,
        )


@dataclass
class OutcomeIn:
    """The outcome, recorded by whoever carried the assignment out."""

    outcome: Literal["done", "not_done"]
    """done (utfört) | not_done (inte utfört)."""
    note: str = ""
    """What was done, or why not (required)."""


@dataclass
class WithdrawIn:
    """Withdraw an open assignment."""

    reason: str = ""
    """Why (required)."""


@dataclass
class HandoverIn:
    """A handover note from the outgoing shift."""

    body: str = ""
    """What the next shift needs to know (required, at most 2000 characters)."""
    jour_id: uuid.UUID | None = None
    """The jour; needed only if the caller works for several."""


# -- responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentSummaryOut:
    """An assignment in a list."""

    id: uuid.UUID
    """The assignment."""
    organisation_name: str
    """Sending municipality."""
    status: str
    """sent | accepted | done | not_done | withdrawn."""
    kind: str
    """visit | call | check | other."""
    task: str
    """What to do."""
    subject_name: str
    """For whom (may be empty)."""
    personal_identity_number: str | None
    """For whom: 12 digits, or null."""
    requester_name: str
    """Who asked."""
    contact_phone: str
    """Their number."""
    report_back: str
    """How to report back."""
    created_at: datetime
    """Sent."""
    due_at: datetime
    """Deadline."""
    overdue: bool
    """Still open and past its deadline."""
    accepted_by: str | None
    """Who at the jour accepted it."""
    accepted_at: datetime | None
    """When."""
    outcome_by: str | None
    """Who recorded the outcome."""
    outcome_at: datetime | None
    """When."""


@dataclass(frozen=True)
class AssignmentOut:
    """One assignment with its outcome."""

    assignment: AssignmentSummaryOut
    """The assignment."""
    jour_name: str
    """The jour it is addressed to."""
    unit_name: str | None
    """Sending unit."""
    created_by: str
    """Who sent it."""
    outcome_note: str | None
    """What was done, or why not."""
    withdrawn_at: datetime | None
    """When withdrawn."""
    withdrawn_by: str | None
    """Who withdrew it."""
    withdraw_reason: str | None
    """Why."""


@dataclass(frozen=True)
class CreatedOut:
    """Result of a create."""

    id: uuid.UUID
    """The new record."""


@dataclass(frozen=True)
class ReadByOut:
    """A receipt of a handover note."""

    name: str
    """Who read it."""
    at: datetime
    """When."""


@dataclass(frozen=True)
class HandoverNoteOut:
    """A handover note."""

    id: uuid.UUID
    """The note."""
    author: str
    """Who wrote it."""
    created_at: datetime
    """When."""
    shift_start: datetime
    """Start of the shift it was written in."""
    body: str
    """The text."""
    read_by: list[ReadByOut]
    """Who has acknowledged it."""
    read_by_me: bool
    """The caller has acknowledged it."""


def summary_out(s: Summary) -> AssignmentSummaryOut:
    """A list row as JSON."""
    c = s.content
    return AssignmentSummaryOut(
        id=s.id, organisation_name=s.organisation_name, status=s.status, kind=s.kind,
        task=c.task, subject_name=c.subject_name, personal_identity_number=c.personnummer,
        requester_name=c.requester_name, contact_phone=c.contact_phone,
        report_back=c.report_back, created_at=s.created_at, due_at=s.due_at, overdue=s.overdue,
        accepted_by=s.accepted_by, accepted_at=s.accepted_at, outcome_by=s.outcome_by,
        outcome_at=s.outcome_at,
    )  # fmt: skip


def detail_out(d: Detail) -> AssignmentOut:
    """One assignment as JSON."""
    return AssignmentOut(
        assignment=summary_out(d.summary), jour_name=d.jour_name, unit_name=d.unit_name,
        created_by=d.created_by, outcome_note=d.outcome_note, withdrawn_at=d.withdrawn_at,
        withdrawn_by=d.withdrawn_by, withdraw_reason=d.withdraw_reason,
    )  # fmt: skip


def note_out(n: NoteView) -> HandoverNoteOut:
    """A handover note as JSON."""
    return HandoverNoteOut(
        id=n.id, author=n.author, created_at=n.created_at, shift_start=n.shift_start,
        body=n.body, read_by=[ReadByOut(name, at) for name, at in n.read_by],
        read_by_me=n.read_by_me,
    )  # fmt: skip


# -- the page form -------------------------------------------------------------------------

FORM_FIELDS = (
    "kind",
    "task",
    "personal_identity_number",
    "subject_name",
    "requester_name",
    "contact_phone",
    "report_back",
)


def text(form: Any, key: str) -> str:
    """A text field of a posted form ("" when missing or not text)."""
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def draft_from_form(form: Any) -> tuple[AssignmentDraft, dict[str, str]]:
    """The draft from the posted page form, plus errors of fields that could not be parsed."""
    errors: dict[str, str] = {}
    due: datetime | None = None
    raw = text(form, "due_at")
    if raw.strip():
        try:
            due = parse_local(raw)
        except ValueError:
            errors["due_at"] = "Ange datum och tid som ÅÅÅÅ-MM-DD TT:MM."
    values = {k: text(form, k) for k in FORM_FIELDS}
    return AssignmentDraft(due_at=due, **values), errors


def form_values(draft: AssignmentDraft | None, raw_due: str = "") -> dict[str, Any]:
    """What the form shows: the typed values (or defaults)."""
    d = draft or AssignmentDraft()
    values: dict[str, Any] = {k: getattr(d, k) for k in FORM_FIELDS}
    values["due_at"] = raw_due or (format_local(d.due_at, "%Y-%m-%dT%H:%M") if d.due_at else "")
    return values


def content_line(c: AssignmentContent) -> str:
    """ "Kalle Klient (20110305-9893)" / "Kalle Klient" / "" — for whom, in one line."""
    if c.personnummer:
        return f"{c.subject_name} ({c.personnummer[:8]}-{c.personnummer[8:]})"
    return c.subject_name
