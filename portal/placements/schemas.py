"""Request and response bodies of the placement API, and the page form's parsing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from portal.placements.content import (
    LEGAL_BASES,
    PLACE_KINDS,
    SECTIONS,
    STATUS_LABELS,
    PlacementContent,
    PlacementDraft,
)
from portal.placements.queries import Detail, Summary, VersionInfo

# -- requests ------------------------------------------------------------------------------


@dataclass
class PlacementIn:
    """A new placement, or (with base_version) an amendment."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer of the placed person (any common format)."""
    name: str = ""
    """The placed person's name."""
    legal_section: str = ""
    """Legal basis and section: sol, lvu-2, lvu-3, lvu-6, lvm-4 or lvm-13."""
    place_kind: str = ""
    """Kind of home or institution: familjehem, jourhem, hvb, sis, stodboende or annat."""
    place_name: str = ""
    """Name of the home or institution."""
    starts_on: date | None = None
    """First day of the placement."""
    ends_on: date | None = None
    """Last day; omit while it lasts."""
    place_address: str = ""
    """Address of the home or institution."""
    place_phone: str = ""
    """Its phone number."""
    note: str = ""
    """Anything the jour should know, e.g. "Rymningsbenägen"."""
    organisation_id: uuid.UUID | None = None
    """The placing municipality; needed only if the caller is a handler in several."""
    base_version: int | None = None
    """Amendments only: the version the change is based on (409 if it is no longer current)."""

    def draft(self) -> PlacementDraft:
        """The service's draft."""
        return PlacementDraft(
            personal_identity_number=self.personal_identity_number,
            name=self.name,
            legal_section=self.legal_section,
            place_kind=self.place_kind,
            place_name=self.place_name,
            place_address=self.place_address,
            place_phone=self.place_phone,
            starts_on=self.starts_on,
            ends_on=self.ends_on,
            note=self.note,
        )


# -- responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedOut:
    """Result of create and amend."""

    id: uuid.UUID
    """The placement."""
    version: int
    """The version created."""


@dataclass(frozen=True)
class PlacementContentOut:
    """What one version says."""

    personal_identity_number: str
    """12 digits."""
    name: str
    """The placed person."""
    legal_basis: Literal["sol", "lvu", "lvm"]
    """sol | lvu | lvm: police assistance (handräckning) is lawful only under lvu or lvm."""
    legal_basis_label: str
    """The legal basis in Swedish."""
    legal_section: str
    """The section code."""
    legal_section_label: str
    """The section in Swedish."""
    place_kind: str
    """Kind of home or institution."""
    place_kind_label: str
    """In Swedish."""
    place_name: str
    """The home or institution."""
    place_address: str
    """Its address."""
    place_phone: str
    """Its phone number."""
    starts_on: date
    """First day."""
    ends_on: date | None
    """Last day, or null while it lasts."""
    note: str
    """Anything the jour should know."""


@dataclass(frozen=True)
class PlacementSummaryOut:
    """A placement's current version."""

    id: uuid.UUID
    """The placement."""
    organisation_name: str
    """The placing municipality."""
    version: int
    """Current version."""
    changed_at: datetime
    """Last change."""
    status: Literal["planned", "active", "ended"]
    """Today (Stockholm): planned, active or ended."""
    status_label: str
    """In Swedish."""
    content: PlacementContentOut
    """The current version."""


@dataclass(frozen=True)
class VersionOut:
    """One entry of the history."""

    version: int
    """Number, from 1."""
    kind: str
    """created | amended."""
    created_at: datetime
    """When."""
    created_by: str
    """Who."""


@dataclass(frozen=True)
class PlacementOut:
    """A placement with one version and its history."""

    placement: PlacementSummaryOut
    """The current state."""
    shown_version: int
    """The version in `content`."""
    content: PlacementContentOut
    """What the shown version says."""
    versions: list[VersionOut]
    """History, newest first."""


def content_out(c: PlacementContent) -> PlacementContentOut:
    """API shape of a version's content."""
    return PlacementContentOut(
        personal_identity_number=c.personnummer,
        name=c.name,
        legal_basis=c.legal_basis,  # type: ignore[arg-type]
        legal_basis_label=LEGAL_BASES[c.legal_basis],
        legal_section=c.legal_section,
        legal_section_label=SECTIONS[c.legal_section][1],
        place_kind=c.place_kind,
        place_kind_label=PLACE_KINDS.get(c.place_kind, c.place_kind),
        place_name=c.place_name,
        place_address=c.place_address,
        place_phone=c.place_phone,
        starts_on=c.starts_on,
        ends_on=c.ends_on,
        note=c.note,
    )


def summary_out(s: Summary) -> PlacementSummaryOut:
    """API shape of a placement in a list."""
    return PlacementSummaryOut(
        id=s.id,
        organisation_name=s.organisation_name,
        version=s.version,
        changed_at=s.changed_at,
        status=s.status,  # type: ignore[arg-type]
        status_label=STATUS_LABELS[s.status],
        content=content_out(s.content),
    )


def _version_out(v: VersionInfo) -> VersionOut:
    return VersionOut(v.version, v.kind, v.created_at, v.created_by)


def detail_out(d: Detail) -> PlacementOut:
    """API shape of one placement."""
    return PlacementOut(
        placement=summary_out(d.summary),
        shown_version=d.shown.version,
        content=content_out(d.content),
        versions=[_version_out(v) for v in d.versions],
    )


# -- the page form -------------------------------------------------------------------------

FORM_FIELDS = (
    "personal_identity_number",
    "name",
    "legal_section",
    "place_kind",
    "place_name",
    "place_address",
    "place_phone",
    "starts_on",
    "ends_on",
    "note",
)


def _text(form: Any, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def _date(form: Any, key: str, errors: dict[str, str]) -> date | None:
    raw = _text(form, key).strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[key] = "Ange datum som ÅÅÅÅ-MM-DD."
        return None


def draft_from_form(form: Any) -> tuple[PlacementDraft, dict[str, str]]:
    """The draft from a posted page form, plus errors of fields that could not be parsed."""
    errors: dict[str, str] = {}
    draft = PlacementDraft(
        personal_identity_number=_text(form, "personal_identity_number"),
        name=_text(form, "name"),
        legal_section=_text(form, "legal_section"),
        place_kind=_text(form, "place_kind"),
        place_name=_text(form, "place_name"),
        place_address=_text(form, "place_address"),
        place_phone=_text(form, "place_phone"),
        starts_on=_date(form, "starts_on", errors),
        ends_on=_date(form, "ends_on", errors),
        note=_text(form, "note"),
    )
    return draft, errors


def form_values(form: Any = None, content: PlacementContent | None = None) -> dict[str, str]:
    """Values to fill the form with: what was posted, else the content, else empty."""
    if form is not None:
        return {k: _text(form, k) for k in FORM_FIELDS}
    if content is None:
        return dict.fromkeys(FORM_FIELDS, "")
    pnr = content.personnummer
    return {
        "personal_identity_number": f"{pnr[:8]}-{pnr[8:]}",
        "name": content.name,
        "legal_section": content.legal_section,
        "place_kind": content.place_kind,
        "place_name": content.place_name,
        "place_address": content.place_address,
        "place_phone": content.place_phone,
        "starts_on": content.starts_on.isoformat(),
        "ends_on": content.ends_on.isoformat() if content.ends_on else "",
        "note": content.note,
    }
