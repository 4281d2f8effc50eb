"""What an advisory says: validation of a draft, and the encrypted JSON blob of a version.

Error keys name the form fields (and the API's `errors[].field`): `subjects-0-name`,
`plan`, `valid_until` … so the page's error summary links straight to the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.errors import InvalidInput
from portal.pii import InvalidPersonnummer, invalid_personnummer, normalise_personnummer

DEFAULT_VALIDITY = timedelta(days=14)
"""valid_until when the sender gives none, and the one-click re-confirmation's extension."""
MAX_VALIDITY = timedelta(days=180)
"""Longest validity: advisories are perishable ("färskvara"), a plan must be re-confirmed."""
MAX_SUBJECTS = 10
"""Persons in one advisory (a family, "kvinna med barn")."""

LEGAL_BASES: dict[str, str] = {
    "none": "Ingen placering",
    "sol": "SoL (frivillig placering)",
    "lvu": "LVU",
    "lvm": "LVM",
}
"""Legal basis of a placement: decides whether police assistance (handräckning) is lawful."""

_LIMITS = {
    "plan": 4000,
    "alternative_plans": 4000,
    "instructions": 2000,
    "contact_name": 200,
    "contact_phone": 40,
}
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,38}[0-9]")


def police_assistance_lawful(legal_basis: str) -> bool:
    """Handräckning can only be requested for a placement under LVU or LVM, never SoL."""
    return legal_basis in ("lvu", "lvm")


@dataclass
class SubjectDraft:
    """A person as the sender typed them."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer; empty when the identity is unknown."""
    name: str = ""
    """Name (required when the identity is known)."""
    identity_unknown: bool = False
    """True for "identitet okänd": then a description is required instead."""
    description: str = ""
    """Description of a person whose identity is unknown (appearance, alias, age)."""


@dataclass
class AdvisoryDraft:
    """An advisory as typed; `validate` turns it into AdvisoryContent or field errors."""

    subjects: list[SubjectDraft] = field(default_factory=list)
    """The persons (at least one)."""
    plan: str = ""
    """The current plan."""
    alternative_plans: str = ""
    """Alternative plans if the first does not work."""
    instructions: str = ""
    """Explicit instructions to the jour, e.g. "bevilja inte akutboende"."""
    legal_basis: str = "none"
    """none | sol | lvu | lvm."""
    contact_name: str = ""
    """Who the jour can reach about the plan."""
    contact_phone: str = ""
    """Their phone number."""
    valid_until: datetime | None = None
    """Aware datetime; None means 14 days from now."""


@dataclass(frozen=True, slots=True)
class Subject:
    """A validated person."""

    personnummer: str | None
    """12 digits, or None for an unknown identity."""
    name: str
    """Name (may be empty for an unknown identity)."""
    description: str
    """Description (required for an unknown identity)."""


@dataclass(frozen=True, slots=True)
class AdvisoryContent:
    """A validated advisory version."""

    subjects: tuple[Subject, ...]
    """The persons."""
    plan: str
    """The current plan."""
    alternative_plans: str
    """Alternative plans."""
    instructions: str
    """Explicit instructions to the jour."""
    legal_basis: str
    """none | sol | lvu | lvm."""
    contact_name: str
    """Contact on call."""
    contact_phone: str
    """Their phone number."""
    valid_until: datetime
    """Aware UTC datetime in the future."""


def _text(value: str) -> str:
    return "\n".join(line.rstrip() for line in value.strip().replace("\r\n", "\n").split("\n"))


def _subject(i: int, d: SubjectDraft, errors: dict[str, str]) -> Subject | None:
    key = f"subjects-{i}"
    name, desc = " ".join(d.name.split()), _text(d.description)
    if len(name) > 200:
        errors[f"{key}-name"] = "Namnet får vara högst 200 tecken."
    if len(desc) > 1000:
        errors[f"{key}-description"] = "Beskrivningen får vara högst 1000 tecken."
    if d.identity_unknown:
        if not desc:
            errors[f"{key}-description"] = "Beskriv personen när identiteten är okänd."
        return Subject(None, name, desc)
    try:
        pnr = normalise_personnummer(d.personal_identity_number)
    except InvalidPersonnummer:
        errors[f"{key}-personal_identity_number"] = invalid_personnummer(
            "eller markera att identiteten är okänd"
        )
        pnr = None
    if not name:
        errors[f"{key}-name"] = "Ange personens namn."
    return Subject(pnr, name, desc)


def _is_blank(d: SubjectDraft) -> bool:
    return not (d.personal_identity_number.strip() or d.name.strip() or d.description.strip())


def validate(
    draft: AdvisoryDraft, *, now: datetime, errors: dict[str, str] | None = None
) -> AdvisoryContent:
    """Validate and normalise; raise InvalidInput with every field error at once."""
    errors = dict(errors or {})
    # Blank rows of the form are skipped; indexes stay those of the form's fields.
    drafts = [
        (i, d) for i, d in enumerate(draft.subjects) if d.identity_unknown or not _is_blank(d)
    ]
    subjects = [s for i, d in drafts if (s := _subject(i, d, errors))]
    if not drafts:
        errors["subjects-0-personal_identity_number"] = "Ange minst en person."
    elif len(drafts) > MAX_SUBJECTS:
        errors["subjects"] = f"Högst {MAX_SUBJECTS} personer i en avisering."
    texts = {k: _text(str(getattr(draft, k))) for k in _LIMITS}
    texts["contact_name"] = " ".join(texts["contact_name"].split())
    for key, limit in _LIMITS.items():
        if len(texts[key]) > limit:
            errors[key] = f"Högst {limit} tecken."
    if not texts["plan"]:
        errors["plan"] = "Beskriv planeringen."
    if not texts["contact_name"]:
        errors["contact_name"] = "Ange vem jouren kan kontakta."
    if not _PHONE.fullmatch(texts["contact_phone"]):
        errors["contact_phone"] = "Ange ett telefonnummer, t.ex. 0650-190 00."
    if draft.legal_basis not in LEGAL_BASES:
        errors["legal_basis"] = "Välj placeringens lagrum."
    valid_until = draft.valid_until or now + DEFAULT_VALIDITY
    if "valid_until" not in errors:
        if valid_until.tzinfo is None:
            errors["valid_until"] = "Ange datum och tid med tidszon."
        elif valid_until <= now:
            errors["valid_until"] = "Giltig till måste ligga i framtiden."
        elif valid_until > now + MAX_VALIDITY:
            errors["valid_until"] = "En avisering kan gälla högst 180 dagar; bekräfta den igen då."
    if errors:
        raise InvalidInput(errors=errors)
    return AdvisoryContent(
        subjects=tuple(subjects),
        plan=texts["plan"],
        alternative_plans=texts["alternative_plans"],
        instructions=texts["instructions"],
        legal_basis=draft.legal_basis,
        contact_name=texts["contact_name"],
        contact_phone=texts["contact_phone"],
        valid_until=valid_until.astimezone(UTC),
    )


def to_blob(content: AdvisoryContent) -> str:
    """The free text of a version as JSON (personnummer excluded: they live in subject rows)."""
    body: dict[str, Any] = {
        "subjects": [
            {"name": s.name, "unknown": s.personnummer is None, "description": s.description}
            for s in content.subjects
        ],
        "plan": content.plan,
        "alternative_plans": content.alternative_plans,
        "instructions": content.instructions,
        "contact_name": content.contact_name,
        "contact_phone": content.contact_phone,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def from_blob(
    blob: str, pnrs: dict[int, str], *, legal_basis: str, valid_until: datetime
) -> AdvisoryContent:
    """Rebuild a version from its decrypted blob and its subjects' personnummer by position."""
    body = json.loads(blob)
    subjects = tuple(
        Subject(None if s["unknown"] else pnrs.get(i), s["name"], s["description"])
        for i, s in enumerate(body["subjects"])
    )
    return AdvisoryContent(
        subjects=subjects,
        plan=body["plan"],
        alternative_plans=body["alternative_plans"],
        instructions=body["instructions"],
        legal_basis=legal_basis,
        contact_name=body["contact_name"],
        contact_phone=body["contact_phone"],
        valid_until=valid_until,
    )
