"""Request and response bodies of the advisory API, and the page form's parsing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from litestar.datastructures import UploadFile

from portal.advisories.content import (
    MAX_SUBJECTS,
    AdvisoryContent,
    AdvisoryDraft,
    Subject,
    SubjectDraft,
)
from portal.advisories.queries import Ack, Detail, Summary, VersionInfo
from portal.attachments.service import AttachmentView, Upload
from portal.timefmt import format_local, parse_local

LegalBasis = Literal["none", "sol", "lvu", "lvm"]
FORM_SUBJECT_ROWS = 3
"""Person rows on the page form (the API takes up to 10)."""


# -- requests ------------------------------------------------------------------------------


@dataclass
class AdvisoryIn(AdvisoryDraft):
    """A new advisory, or (with base_version) an amendment: the service's draft, plus the sender.

    The fields are AdvisoryDraft's (one definition); the API narrows `legal_basis` to its values.
    """

    legal_basis: LegalBasis = "none"
    """Legal basis of a placement: handräckning is lawful only under lvu/lvm."""
    organisation_id: uuid.UUID | None = None
    """Sending municipality; needed only if the caller is a handler in several."""


@dataclass
class AmendIn(AdvisoryIn):
    """An amendment: the full new content and the version it was based on."""

    base_version: int = 0
    """The version the change was based on; a stale one answers 409."""


@dataclass
class WithdrawIn:
    """Withdraw an advisory."""

    reason: str = ""
    """Why (required)."""
    base_version: int | None = None
    """Optional: refuse (409) if the advisory changed since this version."""


@dataclass
class ReconfirmIn:
    """Confirm that the plan still holds."""

    base_version: int = 0
    """The version being confirmed."""
    valid_until: datetime | None = None
    """New expiry; default 14 days from now."""


@dataclass
class AcknowledgeIn:
    """The jour's receipt."""

    version: int | None = None
    """The version read (default: the current one; an older one answers 409)."""


# -- responses -----------------------------------------------------------------------------


@dataclass
class AttachmentsIn:
    """Files to attach (multipart/form-data)."""

    attachments: list[UploadFile]
    """One or more PDF, PNG or JPEG files, at most 20 MB each; the content decides the type."""


@dataclass(frozen=True)
class SubjectOut:
    """A person."""

    personal_identity_number: str | None
    """12 digits, or null when the identity is unknown."""
    name: str
    """Name."""
    identity_unknown: bool
    """Identity unknown."""
    description: str
    """Description."""


@dataclass(frozen=True)
class AckOut:
    """An acknowledgement."""

    version: int
    """Acknowledged version."""
    acknowledged_by: str
    """Name of the jour worker."""
    acknowledged_at: datetime
    """When."""


@dataclass(frozen=True)
class AttachmentOut:
    """An attached file (download: GET .../attachments/{id})."""

    id: uuid.UUID
    """The attachment."""
    name: str
    """File name."""
    content_type: str
    """application/pdf, image/png or image/jpeg (decided from the content)."""
    size: int
    """Bytes."""
    created_at: datetime
    """When attached."""


@dataclass(frozen=True)
class VersionOut:
    """A history entry."""

    version: int
    """Number."""
    kind: str
    """created | amended | reconfirmed."""
    created_at: datetime
    """When."""
    created_by: str
    """Who."""
    valid_until: datetime
    """Expiry set by this version."""


@dataclass(frozen=True)
class AdvisorySummaryOut:
    """An advisory in a list."""

    id: uuid.UUID
    """The advisory."""
    organisation_name: str
    """Sending municipality."""
    status: str
    """active | withdrawn."""
    version: int
    """Current version."""
    created_at: datetime
    """First posted."""
    confirmed_at: datetime
    """Last amended or re-confirmed."""
    valid_until: datetime
    """Expiry."""
    expired: bool
    """valid_until has passed: treat the plan with care."""
    expires_soon: bool
    """Active and expiring within two days (the sending unit is reminded then)."""
    legal_basis: str
    """none | sol | lvu | lvm."""
    police_assistance_lawful: bool
    """True only for LVU and LVM placements."""
    subjects: list[SubjectOut]
    """The persons."""
    acknowledged: bool
    """The jour acknowledged the current content."""
    last_acknowledgement: AckOut | None
    """Newest acknowledgement."""


@dataclass(frozen=True)
class AdvisoryOut:
    """One version of an advisory with its history."""

    advisory: AdvisorySummaryOut
    """Current state."""
    shown_version: VersionOut
    """The version whose content follows."""
    subjects: list[SubjectOut]
    """Persons (shown version)."""
    plan: str
    """Plan."""
    alternative_plans: str
    """Alternative plans."""
    instructions: str
    """Instructions to the jour."""
    legal_basis: str
    """Legal basis (shown version)."""
    contact_name: str
    """Contact on call."""
    contact_phone: str
    """Their phone."""
    valid_until: datetime
    """Expiry (shown version)."""
    jour_name: str
    """Addressed jour."""
    unit_name: str | None
    """Sending unit."""
    versions: list[VersionOut]
    """History, newest first."""
    acknowledgements: list[AckOut]
    """Acknowledgements, newest first."""
    attachments: list[AttachmentOut]
    """Files."""
    withdrawn_at: datetime | None
    """When withdrawn."""
    withdrawn_by: str | None
    """Who withdrew."""
    withdraw_reason: str | None
    """Why."""


@dataclass(frozen=True)
class CreatedOut:
    """Result of create, amend, re-confirm and acknowledge."""

    id: uuid.UUID
    """The advisory."""
    version: int
    """The version created or acknowledged."""


@dataclass(frozen=True)
class AttachmentsCreatedOut:
    """Result of an upload."""

    ids: list[uuid.UUID]
    """The new attachments."""


def _subjects(subjects: tuple[Subject, ...]) -> list[SubjectOut]:
    return [
        SubjectOut(s.personnummer, s.name, s.personnummer is None, s.description) for s in subjects
    ]


def _ack(a: Ack) -> AckOut:
    return AckOut(a.version, a.user_name, a.at)


def _version(v: VersionInfo) -> VersionOut:
    return VersionOut(v.version, v.kind, v.created_at, v.created_by, v.valid_until)


def _attachment(a: AttachmentView) -> AttachmentOut:
    return AttachmentOut(a.id, a.name, a.content_type, a.size, a.created_at)


def summary_out(s: Summary) -> AdvisorySummaryOut:
    """API shape of a list row."""
    return AdvisorySummaryOut(
        id=s.id,
        organisation_name=s.organisation_name,
        status=s.status,
        version=s.version,
        created_at=s.created_at,
        confirmed_at=s.confirmed_at,
        valid_until=s.valid_until,
        expired=s.expired,
        expires_soon=s.expires_soon,
        legal_basis=s.legal_basis,
        police_assistance_lawful=s.legal_basis in ("lvu", "lvm"),
        subjects=_subjects(s.subjects),
        acknowledged=s.acknowledged,
        last_acknowledgement=_ack(s.last_ack) if s.last_ack else None,
    )


def detail_out(d: Detail) -> AdvisoryOut:
    """API shape of one advisory."""
    c: AdvisoryContent = d.content
    return AdvisoryOut(
        advisory=summary_out(d.summary),
        shown_version=_version(d.shown),
        subjects=_subjects(c.subjects),
        plan=c.plan,
        alternative_plans=c.alternative_plans,
        instructions=c.instructions,
        legal_basis=c.legal_basis,
        contact_name=c.contact_name,
        contact_phone=c.contact_phone,
        valid_until=c.valid_until,
        jour_name=d.jour_name,
        unit_name=d.unit_name,
        versions=[_version(v) for v in d.versions],
        acknowledgements=[_ack(a) for a in d.acks],
        attachments=[_attachment(a) for a in d.attachments],
        withdrawn_at=d.withdrawn_at,
        withdrawn_by=d.withdrawn_by,
        withdraw_reason=d.withdraw_reason,
    )


# -- the page form -------------------------------------------------------------------------


def _text(form: Any, key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def draft_from_form(form: Any) -> tuple[AdvisoryDraft, dict[str, str]]:
    """The draft from a posted page form, plus errors of fields that could not be parsed."""
    errors: dict[str, str] = {}
    valid_until: datetime | None = None
    raw_until = _text(form, "valid_until")
    if raw_until.strip():
        try:
            valid_until = parse_local(raw_until)
        except ValueError:
            errors["valid_until"] = "Ange datum och tid som ÅÅÅÅ-MM-DD TT:MM."
    else:
        errors["valid_until"] = "Ange hur länge aviseringen gäller."
    subjects = [
        SubjectDraft(
            personal_identity_number=_text(form, f"subjects-{i}-personal_identity_number"),
            name=_text(form, f"subjects-{i}-name"),
            identity_unknown=_text(form, f"subjects-{i}-identity_unknown") == "on",
            description=_text(form, f"subjects-{i}-description"),
        )
        for i in range(MAX_SUBJECTS)
    ]
    draft = AdvisoryDraft(
        subjects=subjects,
        plan=_text(form, "plan"),
        alternative_plans=_text(form, "alternative_plans"),
        instructions=_text(form, "instructions"),
        legal_basis=_text(form, "legal_basis"),
        contact_name=_text(form, "contact_name"),
        contact_phone=_text(form, "contact_phone"),
        valid_until=valid_until,
    )
    return draft, errors


def uploads_from_form(form: Any, key: str = "attachments") -> list[Upload]:
    """The files of a multipart form (the browser's empty file part is skipped)."""
    values = form.getall(key, []) if hasattr(form, "getall") else []
    return [
        Upload(v.file, v.filename)
        for v in values
        if isinstance(v, UploadFile) and (v.filename or v.file.seek(0, 2) > 0)
    ]


def _blank(s: SubjectDraft) -> bool:
    return not (s.personal_identity_number.strip() or s.name.strip() or s.description.strip())


def form_values(content: AdvisoryContent | None, draft: AdvisoryDraft | None) -> dict[str, Any]:
    """Values to refill the page form from saved content or a rejected draft."""
    if draft is not None:
        until = draft.valid_until
        subjects = [vars(s) for s in draft.subjects]
        # The form posts MAX_SUBJECTS rows; give back the filled ones (indexes kept: errors name
        # them), not a wall of empty blocks.
        filled = [i for i, s in enumerate(draft.subjects) if s.identity_unknown or not _blank(s)]
        subjects = subjects[: filled[-1] + 1] if filled else []
        base = {k: getattr(draft, k) for k in ("plan", "alternative_plans", "instructions")}
        base |= {k: getattr(draft, k) for k in ("legal_basis", "contact_name", "contact_phone")}
    elif content is not None:
        until = content.valid_until
        subjects = [
            {
                "personal_identity_number": s.personnummer or "",
                "name": s.name,
                "identity_unknown": s.personnummer is None,
                "description": s.description,
            }
            for s in content.subjects
        ]
        base = {k: getattr(content, k) for k in ("plan", "alternative_plans", "instructions")}
        base |= {k: getattr(content, k) for k in ("legal_basis", "contact_name", "contact_phone")}
    else:
        return {"subjects": [{} for _ in range(FORM_SUBJECT_ROWS)], "legal_basis": "none"}
    rows = max(FORM_SUBJECT_ROWS, len(subjects))
    subjects += [{} for _ in range(rows - len(subjects))]
    base["subjects"] = subjects
    base["valid_until"] = format_local(until, "%Y-%m-%dT%H:%M") if until else ""
    return base
