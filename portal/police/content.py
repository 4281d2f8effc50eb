"""What a police-assistance request says: validation of a draft and its encrypted JSON blob."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from portal.errors import InvalidInput
from portal.pii import InvalidPersonnummer, invalid_personnummer, normalise_personnummer
from portal.police.rules import ACTS, PURPOSES

_LIMITS = {
    "name": 200,
    "whereabouts": 1000,
    "grounds": 4000,
    "destination": 300,
    "police_station": 200,
    "contact_phone": 40,
}
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,38}[0-9]")


@dataclass
class RequestDraft:
    """A request as typed by the jour."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer of the person."""
    name: str = ""
    """Their name."""
    organisation_id: uuid.UUID | None = None
    """The municipality on whose behalf (its committee) the request is made."""
    act: str = ""
    """lvu | lvm."""
    purpose: str = ""
    """return | transport."""
    whereabouts: str = ""
    """Where the person is thought to be."""
    destination: str = ""
    """Where the police are asked to bring the person."""
    grounds: str = ""
    """Why the police's help is needed (resistance, risk, earlier attempts)."""
    police_station: str = ""
    """Addressee: the station commander's station, e.g. "Polisen, stationsbefäl Gävle"."""
    contact_phone: str = ""
    """The jour's number the police can call back."""
    confirm_unregistered: bool = False
    """The jour confirms the legal basis although the register has no LVU/LVM placement."""


@dataclass(frozen=True, slots=True)
class RequestContent:
    """A validated request."""

    personnummer: str
    """12 digits."""
    name: str
    """The person."""
    act: str
    """lvu | lvm."""
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


def _text(value: str) -> str:
    return "\n".join(line.rstrip() for line in value.strip().replace("\r\n", "\n").split("\n"))


def person(draft: RequestDraft, errors: dict[str, str]) -> str:
    """The normalised personnummer, or "" with an error."""
    try:
        return normalise_personnummer(draft.personal_identity_number)
    except InvalidPersonnummer:
        errors["personal_identity_number"] = invalid_personnummer()
        return ""


def validate(draft: RequestDraft, *, errors: dict[str, str] | None = None) -> RequestContent:
    """Validate and normalise; raise InvalidInput with every field error at once."""
    errors = dict(errors or {})
    pnr = person(draft, errors)
    texts = {k: _text(str(getattr(draft, k))) for k in _LIMITS}
    for key in ("name", "police_station", "contact_phone", "destination"):
        texts[key] = " ".join(texts[key].split())
    for key, limit in _LIMITS.items():
        if len(texts[key]) > limit:
            errors[key] = f"Högst {limit} tecken."
    if draft.act not in ACTS:
        errors["act"] = "Välj lagrum: 43 § LVU eller 45 § LVM."
    if draft.purpose not in PURPOSES:
        errors["purpose"] = "Välj vad polisen ska hjälpa till med."
    for key, message in (
        ("name", "Ange personens namn."),
        ("grounds", "Beskriv varför polisens hjälp behövs."),
        ("destination", "Ange vart personen ska föras."),
        ("police_station", "Ange vilken polisstation (stationsbefäl) begäran går till."),
    ):
        if not texts[key] and key not in errors:
            errors[key] = message
    if not _PHONE.fullmatch(texts["contact_phone"]):
        errors["contact_phone"] = "Ange jourens telefonnummer, t.ex. 026-17 80 00."
    if errors:
        raise InvalidInput(errors=errors)
    return RequestContent(
        personnummer=pnr, name=texts["name"], act=draft.act, purpose=draft.purpose,
        whereabouts=texts["whereabouts"], destination=texts["destination"],
        grounds=texts["grounds"], police_station=texts["police_station"],
        contact_phone=texts["contact_phone"],
    )  # fmt: skip


def to_blob(c: RequestContent, *, check_message: str, checked_against: list[str]) -> str:
    """The request's free text (and what the check said) as JSON; the personnummer apart."""
    return json.dumps(
        {
            "name": c.name, "whereabouts": c.whereabouts, "destination": c.destination,
            "grounds": c.grounds, "police_station": c.police_station,
            "contact_phone": c.contact_phone, "check_message": check_message,
            "checked_against": checked_against,
        },
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    """A request's decrypted content with the legal-basis check as it was made."""

    content: RequestContent
    """What it says."""
    check_message: str
    """The check's explanation."""
    checked_against: tuple[str, ...]
    """The placements and advisories it was checked against (labels)."""


def from_blob(blob: str, pnr: str, *, act: str, purpose: str) -> Stored:
    """Rebuild from the decrypted blob."""
    b = json.loads(blob)
    content = RequestContent(
        personnummer=pnr, name=b["name"], act=act, purpose=purpose,
        whereabouts=b["whereabouts"], destination=b["destination"], grounds=b["grounds"],
        police_station=b["police_station"], contact_phone=b["contact_phone"],
    )  # fmt: skip
    return Stored(content, b["check_message"], tuple(b["checked_against"]))
