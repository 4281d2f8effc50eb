"""Request and response bodies of the police-request API, and the page form's parsing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.police.content import RequestDraft
from portal.police.queries import Detail, Summary
from portal.police.service import Assessment


@dataclass
class PoliceRequestIn:
    """A request for police assistance (or, for /check, just the person and the act)."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer of the person."""
    act: str = ""
    """lvu (43 § LVU) or lvm (45 § LVM)."""
    organisation_id: uuid.UUID | None = None
    """The member municipality on whose behalf the request is made."""
    name: str = ""
    """The person's name."""
    purpose: str = ""
    """return (the person absconded from the placement) or transport (to a placement, a medical
    examination or a care institution)."""
    whereabouts: str = ""
    """Where the person is thought to be."""
    destination: str = ""
    """Where the police are asked to bring the person."""
    grounds: str = ""
    """Why the police's help is needed."""
    police_station: str = ""
    """The addressee, e.g. "Polisen, stationsbefäl Gävle"."""
    contact_phone: str = ""
    """The jour's number for the police."""
    confirm_unregistered: bool = False
    """Confirms the legal basis when the check warns that nothing is registered."""

    def draft(self) -> RequestDraft:
        """The service's draft."""
        return RequestDraft(**vars(self))


@dataclass(frozen=True)
class CheckOut:
    """The legal-basis check."""

    outcome: str
    """allowed | warning (confirm with confirm_unregistered) | blocked (no request possible)."""
    message: str
    """Why, in Swedish."""
    checked_against: list[str]
    """The current placements and active advisories it was checked against."""


@dataclass(frozen=True)
class CreatedOut:
    """A request made."""

    id: uuid.UUID
    """The request."""
    status: str
    """signed (under delegation) or awaiting_chair (the delegation matrix says the chair)."""


@dataclass(frozen=True)
class ApprovalOut:
    """The chair's approval started: the identity check comes next."""

    identity_provider_url: str
    """Where to send the chair's browser: the step-up at the identity provider (prompt=login,
    bound to the document's digest). When it answers, the request is signed in the verified
    chair's name and the browser returns to the request's page."""


@dataclass
class TransitionIn:
    """The next step of a request's life."""

    status: str
    """sent | granted | refused | executed | not_found | revoked."""
    note: str = ""
    """E.g. the commander's name, where the person was found (encrypted)."""
    revision: int | None = None
    """The revision the step is based on (409 if someone else recorded a step meanwhile)."""


@dataclass(frozen=True)
class EventOut:
    """One step."""

    status: str
    """created | signed | sent | ..."""
    label: str
    """In Swedish."""
    at: datetime
    """When."""
    by: str
    """Who recorded it."""
    note: str
    """Their note."""


@dataclass(frozen=True)
class SummaryOut:
    """A request in a list."""

    id: uuid.UUID
    """The request."""
    municipality: str
    """On whose behalf."""
    act: str
    """lvu | lvm."""
    act_label: str
    """43 § LVU | 45 § LVM."""
    status: str
    """awaiting_chair | signed | sent | granted | refused | executed | not_found | revoked."""
    status_label: str
    """In Swedish."""
    status_at: datetime
    """Since when."""
    created_at: datetime
    """Made."""
    name: str
    """The person."""
    decided_by: str
    """jour | chair (from the delegation matrix)."""
    legal_check: str
    """ok | warning_confirmed."""
    revision: int
    """For TransitionIn.revision."""


@dataclass(frozen=True)
class DetailOut:
    """A request with its life."""

    request: SummaryOut
    """The request."""
    personal_identity_number: str
    """12 digits."""
    purpose: str
    """return | transport."""
    whereabouts: str
    """Where the person is thought to be."""
    destination: str
    """Where to bring them."""
    grounds: str
    """Why help is needed."""
    police_station: str
    """Addressee."""
    contact_phone: str
    """The jour's number."""
    check_message: str
    """What the legal-basis check said when the request was made."""
    checked_against: list[str]
    """What it was checked against."""
    events: list[EventOut]
    """Its life, oldest first."""
    signed: bool
    """The signed PDF is available at .../document.pdf."""


@dataclass(frozen=True)
class DelegationOut:
    """A municipality's delegation matrix: matter -> jour | chair."""

    rules: dict[str, str]
    """handrackning_lvu, handrackning_lvm -> jour | chair."""


@dataclass
class DelegationIn:
    """Cells to set."""

    rules: dict[str, str]
    """handrackning_lvu / handrackning_lvm -> jour | chair."""


def check_out(a: Assessment) -> CheckOut:
    """API shape of a check."""
    return CheckOut(a.check.outcome, a.check.message, [b.label for b in a.check.found])


def summary_out(s: Summary) -> SummaryOut:
    """API shape of a request in a list."""
    return SummaryOut(**{k: getattr(s, k) for k in SummaryOut.__dataclass_fields__})


def detail_out(d: Detail) -> DetailOut:
    """API shape of one request."""
    c = d.stored.content
    return DetailOut(
        request=summary_out(d.summary), personal_identity_number=c.personnummer,
        purpose=c.purpose, whereabouts=c.whereabouts, destination=c.destination,
        grounds=c.grounds, police_station=c.police_station, contact_phone=c.contact_phone,
        check_message=d.stored.check_message, checked_against=list(d.stored.checked_against),
        events=[EventOut(e.status, e.label, e.at, e.by, e.note) for e in d.events],
        signed=d.signed,
    )  # fmt: skip


FORM_FIELDS = (
    "personal_identity_number",
    "act",
    "organisation_id",
    "name",
    "purpose",
    "whereabouts",
    "destination",
    "grounds",
    "police_station",
    "contact_phone",
    "submission_key",  # the one-time key of this form (hidden; service.submission_key)
)


def _text(form: Any, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def draft_from_form(form: Any) -> tuple[RequestDraft, dict[str, str]]:
    """The draft from a posted page form, plus errors of fields that could not be parsed."""
    errors: dict[str, str] = {}
    org: uuid.UUID | None = None
    raw = _text(form, "organisation_id").strip()
    if raw:
        try:
            org = uuid.UUID(raw)
        except ValueError:
            errors["organisation_id"] = "Välj en av jourens kommuner."
    draft = RequestDraft(
        **{
            k: _text(form, k) for k in FORM_FIELDS if k not in ("organisation_id", "submission_key")
        },
        organisation_id=org,
        confirm_unregistered=_text(form, "confirm_unregistered") == "on",
    )
    return draft, errors


def form_values(form: Any = None) -> dict[str, str]:
    """Values to fill the form with: every text field as posted, and the warning confirmation
    (`confirm_unregistered`, "on" when ticked, else ""), so that every re-render of the form
    (the check step, a validation error, a 503) shows exactly what the worker entered."""
    if form is None:
        return dict.fromkeys((*FORM_FIELDS, "confirm_unregistered"), "")
    values = {k: _text(form, k) for k in FORM_FIELDS}
    values["confirm_unregistered"] = "on" if _text(form, "confirm_unregistered") == "on" else ""
    return values
