"""What a placement says: the legal bases and sections, validation of a draft, and the
encrypted JSON blob of a version.

Error keys name the form fields (and the API's `errors[].field`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from portal.errors import InvalidInput
from portal.pii import InvalidPersonnummer, invalid_personnummer, normalise_personnummer

SECTIONS: dict[str, tuple[str, str]] = {
    "sol": ("sol", "SoL – frivillig placering (bistånd)"),
    "lvu-2": ("lvu", "2 § LVU – brister i hemmiljön"),
    "lvu-3": ("lvu", "3 § LVU – eget beteende"),
    "lvu-6": ("lvu", "6 § LVU – omedelbart omhändertagande"),
    "lvm-4": ("lvm", "4 § LVM – tvångsvård"),
    "lvm-13": ("lvm", "13 § LVM – omedelbart omhändertagande"),
}
"""Legal section code -> (legal basis, Swedish label). The basis (sol | lvu | lvm) decides
whether police assistance (handräckning) may be requested: never under SoL."""

LEGAL_BASES: dict[str, str] = {"sol": "SoL (frivillig)", "lvu": "LVU", "lvm": "LVM"}
"""Legal basis -> short Swedish label."""

PLACE_KINDS: dict[str, str] = {
    "familjehem": "Familjehem",
    "jourhem": "Jourhem",
    "hvb": "HVB-hem (institution)",
    "sis": "Särskilt ungdomshem eller LVM-hem (SiS)",
    "stodboende": "Stödboende",
    "annat": "Annat",
}
"""Kind of home or institution."""

_LIMITS = {
    "name": 200,
    "place_name": 200,
    "place_address": 300,
    "place_phone": 40,
    "note": 2000,
}
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,38}[0-9]")


@dataclass
class PlacementDraft:
    """A placement as typed; `validate` turns it into PlacementContent or field errors."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer of the placed person."""
    name: str = ""
    """Their name."""
    legal_section: str = ""
    """A key of SECTIONS."""
    place_kind: str = ""
    """A key of PLACE_KINDS."""
    place_name: str = ""
    """Name of the home or institution."""
    place_address: str = ""
    """Its address (optional)."""
    place_phone: str = ""
    """Its phone number (optional)."""
    starts_on: date | None = None
    """First day of the placement."""
    ends_on: date | None = None
    """Last day, or None while it lasts."""
    note: str = ""
    """Anything the jour should know (e.g. tends to abscond)."""


@dataclass(frozen=True, slots=True)
class PlacementContent:
    """A validated placement version."""

    personnummer: str
    """12 digits."""
    name: str
    """The placed person's name."""
    legal_section: str
    """A key of SECTIONS."""
    place_kind: str
    """A key of PLACE_KINDS."""
    place_name: str
    """The home or institution."""
    place_address: str
    """Its address."""
    place_phone: str
    """Its phone number."""
    starts_on: date
    """First day."""
    ends_on: date | None
    """Last day, or None."""
    note: str
    """Anything the jour should know."""

    @property
    def legal_basis(self) -> str:
        """sol | lvu | lvm."""
        return SECTIONS[self.legal_section][0]


def _text(value: str) -> str:
    return "\n".join(line.rstrip() for line in value.strip().replace("\r\n", "\n").split("\n"))


def validate(draft: PlacementDraft, *, errors: dict[str, str] | None = None) -> PlacementContent:
    """Validate and normalise; raise InvalidInput with every field error at once."""
    errors = dict(errors or {})
    pnr = ""
    try:
        pnr = normalise_personnummer(draft.personal_identity_number)
    except InvalidPersonnummer:
        errors["personal_identity_number"] = invalid_personnummer()
    texts = {k: _text(str(getattr(draft, k))) for k in _LIMITS}
    for key in ("name", "place_name", "place_phone"):
        texts[key] = " ".join(texts[key].split())
    for key, limit in _LIMITS.items():
        if len(texts[key]) > limit:
            errors[key] = f"Högst {limit} tecken."
    if not texts["name"]:
        errors["name"] = "Ange personens namn."
    if draft.legal_section not in SECTIONS:
        errors["legal_section"] = "Välj lagrum för placeringen."
    if draft.place_kind not in PLACE_KINDS:
        errors["place_kind"] = "Välj typ av hem eller institution."
    if not texts["place_name"]:
        errors["place_name"] = "Ange hemmets eller institutionens namn."
    if texts["place_phone"] and not _PHONE.fullmatch(texts["place_phone"]):
        errors["place_phone"] = "Ange ett telefonnummer, t.ex. 026-17 80 00."
    if draft.starts_on is None:
        errors.setdefault("starts_on", "Ange när placeringen började.")
    elif draft.ends_on is not None and draft.ends_on < draft.starts_on:
        errors["ends_on"] = "Slutdatum kan inte ligga före startdatum."
    if errors:
        raise InvalidInput(errors=errors)
    assert draft.starts_on is not None
    return PlacementContent(
        personnummer=pnr,
        name=texts["name"],
        legal_section=draft.legal_section,
        place_kind=draft.place_kind,
        place_name=texts["place_name"],
        place_address=texts["place_address"],
        place_phone=texts["place_phone"],
        starts_on=draft.starts_on,
        ends_on=draft.ends_on,
        note=texts["note"],
    )


def to_blob(content: PlacementContent) -> str:
    """The names and free text of a version as JSON (the personnummer is stored apart)."""
    body: dict[str, Any] = {
        "name": content.name,
        "place_kind": content.place_kind,
        "place_name": content.place_name,
        "place_address": content.place_address,
        "place_phone": content.place_phone,
        "note": content.note,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def from_blob(
    blob: str, pnr: str, *, legal_section: str, starts_on: date, ends_on: date | None
) -> PlacementContent:
    """Rebuild a version from its decrypted blob, personnummer and clear columns."""
    body = json.loads(blob)
    return PlacementContent(
        personnummer=pnr,
        name=body["name"],
        legal_section=legal_section,
        place_kind=body["place_kind"],
        place_name=body["place_name"],
        place_address=body["place_address"],
        place_phone=body["place_phone"],
        starts_on=starts_on,
        ends_on=ends_on,
        note=body["note"],
    )


def status(starts_on: date, ends_on: date | None, today: date) -> str:
    """planned | active | ended, on `today` (a Stockholm date)."""
    if starts_on > today:
        return "planned"
    if ends_on is not None and ends_on < today:
        return "ended"
    return "active"


STATUS_LABELS = {"planned": "Planerad", "active": "Pågående", "ended": "Avslutad"}
"""Status -> Swedish label."""
