"""Police-assistance requests: the legal-basis check, making a request, the chair's approval,
and recording its life (sent, granted, refused, executed, not found, revoked).

A request under delegation to the jour is signed at once by the jour worker who makes it; where
the municipality's delegation matrix says the chair decides, it waits ("awaiting_chair") until
a chair of the municipality approves it, and is then signed in the chair's name. Every step is
an event with its time and is audited; reads are in `portal.police.queries`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal import chair_signing
from portal.advisories import queries as advisories
from portal.advisories.texts import legal_basis as advisory_basis_label
from portal.attachments.store import stored_columns
from portal.audit import service as audit
from portal.chair_signing import SigningSetup, SigningUnavailable
from portal.db.base import utcnow
from portal.db.models import Organisation, User
from portal.errors import AuditNote, Conflict, InvalidInput, NotFound
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.placements import records as placements
from portal.police import access, delegation, document, rules
from portal.police.content import RequestContent, RequestDraft, from_blob, person, to_blob, validate
from portal.police.models import PoliceRequest, PoliceRequestEvent
from portal.principal import Principal
from storage import EncryptedObjectStore, StoredObject

log = logging.getLogger("jourpost.police")


@dataclass(frozen=True, slots=True)
class Assessment:
    """The check of one person for a request under one act."""

    check: rules.Check
    """allowed | warning | blocked, and why."""
    placement_id: uuid.UUID | None
    """The current placement under the act asked for, if any."""
    pnr_index: str
    """The person's blind index."""


async def assess(
    db: AsyncSession, vault: Vault, user: Principal, pnr: str, act: str, *, now: datetime
) -> Assessment:
    """Check the person's current placements and active advisories (what the caller may see);
    audited like a lookup (the blind index, never the number)."""
    index = vault.index(pnr)
    current = [
        s for s in await placements.find_by_person(db, vault, user, index, now=now)
        if s.status == "active"
    ]  # fmt: skip
    advised = [
        a for a in await advisories.find_by_pnr_index(db, vault, user, index, now=now)
        if a.status == "active" and not a.expired
    ]  # fmt: skip
    found_placements = [
        rules.Basis("placement", s.content.legal_basis,
                    f"Placering: {placements.describe_section(s.content.legal_section)}, "
                    f"{s.organisation_name} ({s.content.place_name})")
        for s in current
    ]  # fmt: skip
    found_advisories = [
        rules.Basis("advisory", a.legal_basis,
                    f"Avisering från {a.organisation_name}: {advisory_basis_label(a.legal_basis)}")
        for a in advised
    ]  # fmt: skip
    result = rules.check(act, found_placements, found_advisories)
    match = next((s.id for s in current if s.content.legal_basis == act), None)
    await audit.record(
        db, "police_request.check", actor=user.actor(), object_type="person", object_id=index,
        details={"act": act, "outcome": result.outcome,
                 "placements": [str(s.id) for s in current],
                 "advisories": [str(a.id) for a in advised]},
    )  # fmt: skip
    return Assessment(result, match, index)


async def check_only(
    db: AsyncSession, vault: Vault, user: Principal, draft: RequestDraft, *, now: datetime
) -> Assessment:
    """The check alone (the form's first step): personnummer and act must be valid."""
    access.require_jour(user, "police_request.check")
    errors: dict[str, str] = {}
    pnr = person(draft, errors)
    if draft.act not in rules.ACTS:
        errors["act"] = "Välj lagrum: 43 § LVU eller 45 § LVM."
    if errors:
        raise InvalidInput(errors=errors)
    return await assess(db, vault, user, pnr, draft.act, now=now)


async def _user_identity(db: AsyncSession, vault: Vault, user_id: uuid.UUID) -> tuple[str, str]:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound()
    names = await user_names(db, vault, [user_id])
    return names.get(user_id, ""), vault.decrypt(user.pnr_enc, field_context(User.pnr_enc, user.id))


def _event(r: PoliceRequest, status: str, by: uuid.UUID, now: datetime,
           vault: Vault, note: str = "") -> PoliceRequestEvent:  # fmt: skip
    event_id = uuid.uuid4()
    context = field_context(PoliceRequestEvent.note_enc, event_id)
    return PoliceRequestEvent(
        id=event_id, request_id=r.id, status=status, at=now, by=by,
        note_enc=vault.encrypt(note, context) if note else None,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Document:
    """A request's document as one signer would sign it."""

    html: str
    """What is rendered to PDF/A (deterministic: the same request and signer, the same PDF)."""
    signer_name: str
    """The signer's name as registered in the portal."""
    signer_pnr: str
    """The signer's personnummer."""
    committee: str
    """The municipality's committee, e.g. "Socialnämnden i Hudiksvall"."""
    location: str
    """The municipality's name (the signature's location)."""


async def document_for(
    db: AsyncSession, vault: Vault, r: PoliceRequest, signer_id: uuid.UUID
) -> Document:
    """The request's document naming `signer_id` as the one who decided it."""
    stored = from_blob(
        vault.decrypt(r.content_enc, field_context(PoliceRequest.content_enc, r.id)),
        vault.decrypt(r.pnr_enc, field_context(PoliceRequest.pnr_enc, r.id)),
        act=r.act, purpose=r.purpose,
    )  # fmt: skip
    org = await db.get(Organisation, r.organisation_id)
    jour = await db.get(Organisation, r.jour_id)
    assert org is not None and jour is not None
    committee = org.committee_name or f"Socialnämnden i {org.name}"
    name, pnr = await _user_identity(db, vault, signer_id)
    basis = stored.check_message
    if stored.checked_against:
        basis += " Kontrollerat mot: " + "; ".join(stored.checked_against) + "."
    decided = (
        f"Begäran är beslutad av {name}, ordförande, {committee}."
        if r.decided_by == "chair"
        else f"Begäran är beslutad av {name}, socialsekreterare vid {jour.name}, "
        f"med stöd av delegation från {committee}."
    )
    pdf_html = document.html(
        c=stored.content, act_label=rules.ACTS[r.act], purpose_label=rules.PURPOSES[r.purpose],
        committee=committee, jour_name=jour.name, created_at=r.created_at, request_id=r.id,
        basis_text=basis, decided_text=decided,
    )  # fmt: skip
    return Document(pdf_html, name, pnr, committee, org.name)


async def sign_released(
    db: AsyncSession,
    setup: SigningSetup | None,
    files: EncryptedObjectStore,
    r: PoliceRequest,
    doc: Document,
    *,
    signer: document.Signer,
    role: str,
    now: datetime,
    pdf: bytes | None = None,
) -> tuple[StoredObject, datetime]:
    """Release the caller's transaction `db` (`chair_signing.release`: no connection,
    transaction or lock across the network), then sign `pdf` (rendered from `doc` when None)
    in `signer`'s name and store it under a key of its own; the stored PDF and the signature's
    own time (after the trust services answered). SigningUnavailable: nothing stored."""
    await chair_signing.release(db)
    if pdf is None:
        pdf = await document.render(doc.html)
    stored = await document.sign_and_store(
        setup, files, request_id=r.id, document_pdf=pdf, signer=signer, signer_role=role,
        reason=signing_reason(r), location=doc.location, now=now,
    )  # fmt: skip
    return stored, max(now, utcnow())


def signing_reason(r: PoliceRequest) -> str:
    """The reason in the request's signature."""
    return f"Begäran om handräckning enligt {rules.ACTS[r.act]}"


def _signed(signer_id: uuid.UUID, obj: StoredObject, now: datetime) -> dict[str, object]:
    """The columns of a request signed by `signer_id` at `now`, its signed PDF `obj`."""
    return {
        "signed_by": signer_id, "signed_at": now, "status": "signed", "status_at": now,
        **stored_columns(obj, "signed_"),
    }  # fmt: skip


async def deliver_approval(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    r: PoliceRequest,
    obj: StoredObject,
    now: datetime,
    *,
    action: str,
    acr: str,
) -> bool:
    """The chair's signed PDF `obj` (stored with no transaction open) put on the request if it
    still awaits the chair at the revision checked (conditional UPDATE, a short transaction of
    the caller's), with its event; audited as `action`. False when another completion or a
    change (revoked) came first: `obj` is then audited as superseded (`chair_signing.deliver`).
    `r` is the request as checked, detached from its ended transaction: only its keys are read."""
    won = await chair_signing.deliver(
        db,
        update(PoliceRequest)
        .where(
            PoliceRequest.id == r.id,
            PoliceRequest.status == "awaiting_chair",
            PoliceRequest.revision == r.revision,
        )
        .values(revision=PoliceRequest.revision + 1, **_signed(user.user_id, obj, now)),
        action=action, user=user, owner_org_id=r.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=r.id, stored=obj,
        details={"sha256": obj.sha256, "acr": acr, "step_up": True},
    )  # fmt: skip
    if won:
        db.add(_event(r, "signed", user.user_id, now, vault))
    return won


_SUBMISSION_KEY = re.compile(r"[A-Za-z0-9._:~+/=-]{8,64}")

REUSED_KEY = (
    "Begäran har redan skickats en gång med andra uppgifter, så ingen ny begäran har skapats. "
    "Kontrollera uppgifterna och skicka igen."
)
"""Why a submission key already used for another request is refused."""


def submission_key(raw: str | None) -> str | None:
    """A one-time submission key as given (the form's hidden field, the API's Idempotency-Key
    header, surrounding quotes of a structured-header string dropped); None when none was
    given. InvalidInput unless it is 8-64 characters of letters, digits and `._:~+/=-`."""
    if raw is None or not raw.strip():
        return None
    key = raw.strip().removeprefix('"').removesuffix('"')
    if not _SUBMISSION_KEY.fullmatch(key):
        raise InvalidInput(
            errors={"submission_key": "Ogiltig Idempotency-Key: 8–64 tecken, bokstäver A–Z "
                    "och a–z, siffror och ._:~+/=-."}
        )  # fmt: skip
    return key


def new_submission_key() -> str:
    """A fresh key for a form about to be rendered."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Made:
    """What `create` answered."""

    request_id: uuid.UUID
    """The request."""
    repeated: bool = False
    """True when the submission key had made the request already (a form sent twice, an API
    call retried): this call made nothing new and `request_id` is the earlier request."""


async def _by_key(db: AsyncSession, user: Principal, key: str) -> PoliceRequest | None:
    return await db.scalar(
        select(PoliceRequest).where(
            PoliceRequest.created_by == user.user_id, PoliceRequest.submission_key == key
        )
    )


def _same(vault: Vault, r: PoliceRequest, org_id: uuid.UUID, content: RequestContent) -> bool:
    """Whether the recorded request `r` says what `content` for `org_id` says."""
    stored = from_blob(
        vault.decrypt(r.content_enc, field_context(PoliceRequest.content_enc, r.id)),
        vault.decrypt(r.pnr_enc, field_context(PoliceRequest.pnr_enc, r.id)),
        act=r.act, purpose=r.purpose,
    )  # fmt: skip
    return r.organisation_id == org_id and stored.content == content


def _repeat(vault: Vault, r: PoliceRequest, org_id: uuid.UUID, content: RequestContent) -> Made:
    """The answer to a repeat of the submission that made `r`; InvalidInput (nothing made)
    when the repeat asks for something else under the same key."""
    if not _same(vault, r, org_id, content):
        raise InvalidInput(REUSED_KEY, errors={"submission_key": REUSED_KEY})
    return Made(r.id, repeated=True)


Track = Callable[[Awaitable[Made]], Awaitable[Made]]
"""Counts a signing attempt and its outcome (`portal.metrics.Metrics.track_signing`)."""


async def create(
    db: AsyncSession,
    vault: Vault,
    setup: SigningSetup | None,
    files: EncryptedObjectStore,
    user: Principal,
    draft: RequestDraft,
    *,
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    errors: dict[str, str] | None = None,
    key: str | None = None,
    track: Track | None = None,
) -> Made:
    """Check, record and (under delegation) sign a request; returns it.

    Blocked by the legal-basis check: InvalidInput on `act` with the explanation (audited as
    "blocked"); a warning not confirmed: InvalidInput on `confirm_unregistered`.

    `key` is the submission's one-time key (`submission_key`): a request the caller already
    made with it is answered (`Made.repeated`, audited as `police_request.create_repeated`)
    instead of a second one, if the repeat says the same (else InvalidInput on
    `submission_key`). Two submissions with the same key racing both get this far; the
    database's unique index lets one request in, and the other is answered with it, its
    signed PDF (if any) audited as `police_request.create_superseded` (docs/police-requests.md).

    The request is recorded in one short transaction of its own from `sessions`, after the
    caller's transaction `db` is released (the check's audit entry is committed). Where the
    chair decides, it is recorded awaiting the chair. Under the jour's delegation it is signed
    *before* it is recorded, so no transaction or pooled connection is held across the trust
    services and the object store: every input is checked and the document rendered from the
    request as it will be stored (nothing of it added to `db`), the caller's transaction is
    released, the PDF is signed and stored with no transaction open, and the request goes in
    already signed, with its events and audit entry. A trust service or the store failing
    (SigningUnavailable) leaves no request at all (docs/signing.md). The signing and
    recording are counted by `track` (the signing metrics), as the chair's signatures are.
    """
    jour_id = access.require_jour(user)
    errors = dict(errors or {})
    org: Organisation | None = None
    try:
        org = await access.member(db, user, draft.organisation_id)
    except InvalidInput as exc:
        errors.update(exc.errors)
    content = validate(draft, errors=errors)
    assert org is not None
    if key is not None and (earlier := await _by_key(db, user, key)) is not None:
        made = _repeat(vault, earlier, org.id, content)
        await audit.record(
            db, "police_request.create_repeated", actor=user.actor(earlier.jour_id),
            owner_org_id=earlier.organisation_id, object_type=access.OBJECT_TYPE,
            object_id=earlier.id,
        )  # fmt: skip
        return made
    jour_id = org.jour_id or jour_id
    found = await assess(db, vault, user, content.personnummer, content.act, now=now)
    check = found.check
    if check.outcome == "blocked":
        raise InvalidInput(
            check.message,
            errors={"act": check.message},
            audit=AuditNote("police_request.create", "blocked", org.id, "person",
                            found.pnr_index, details={"act": content.act}),
        )  # fmt: skip
    if check.outcome == "warning" and not draft.confirm_unregistered:
        raise InvalidInput(check.message, errors={"confirm_unregistered": check.message})
    decided_by = await delegation.decider(db, org.id, delegation.matter_for(content.act))
    r = PoliceRequest(
        id=uuid.uuid4(), organisation_id=org.id, jour_id=jour_id, created_by=user.user_id,
        created_at=now, act=content.act, purpose=content.purpose,
        stat_code=rules.stat_code(content.act, content.purpose),
        legal_check="ok" if check.outcome == "allowed" else "warning_confirmed",
        placement_id=found.placement_id, decided_by=decided_by, status="awaiting_chair",
        status_at=now, pnr_index=found.pnr_index, submission_key=key,
    )  # fmt: skip
    r.pnr_enc = vault.encrypt(content.personnummer, field_context(PoliceRequest.pnr_enc, r.id))
    r.content_enc = vault.encrypt(
        _blob(content, check), field_context(PoliceRequest.content_enc, r.id)
    )
    if decided_by == "chair":
        await chair_signing.release(db)
        return await _insert(sessions, vault, user, r, check.outcome, content, None)
    doc = await document_for(db, vault, r, user.user_id)

    async def sign_and_record() -> Made:
        if setup is None:
            raise SigningUnavailable(chair_signing.NOT_CONFIGURED)
        signer = document.Signer(doc.signer_name or "Okänd", doc.signer_pnr)
        obj, signed_at = await sign_released(
            db, setup, files, r, doc, signer=signer, role="socialsekreterare, socialjouren",
            now=now,
        )  # fmt: skip
        for column, value in _signed(user.user_id, obj, signed_at).items():
            setattr(r, column, value)
        return await _insert(sessions, vault, user, r, check.outcome, content, obj)

    return await (track or _untracked)(sign_and_record())


async def _untracked(attempt: Awaitable[Made]) -> Made:
    return await attempt


async def _insert(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    user: Principal,
    r: PoliceRequest,
    check: str,
    content: RequestContent,
    obj: StoredObject | None,
) -> Made:
    """Record the new request `r` (its signed PDF `obj`, None while it awaits the chair) in a
    short transaction of its own. When another submission with the same key got in first (the
    unique index refuses `r`), that request is the answer and `obj` is audited as
    `police_request.create_superseded` (locked for its retention, named by no row)."""
    try:
        async with sessions() as tx, tx.begin():
            await _record(tx, vault, user, r, check)
        return Made(r.id)
    except IntegrityError as exc:
        if r.submission_key is None:
            _orphaned(obj)
            _raise_if_changed_meanwhile(exc)
            raise
        async with sessions() as tx, tx.begin():
            winner = await _by_key(tx, user, r.submission_key)
            if winner is None:  # refused for another reason
                _orphaned(obj)
                _raise_if_changed_meanwhile(exc)
                raise
            if obj is not None:
                await audit.record(
                    tx, "police_request.create_superseded", actor=user.actor(winner.jour_id),
                    owner_org_id=winner.organisation_id, object_type=access.OBJECT_TYPE,
                    object_id=winner.id,
                    details={"object_id": obj.object_id, "sha256": obj.sha256},
                )  # fmt: skip
                log.info("police request submitted twice; the later PDF %s is superseded",
                         obj.object_id)  # fmt: skip
        return _repeat(vault, winner, r.organisation_id, content)
    except Exception:
        _orphaned(obj)
        raise


CHANGED_MEANWHILE = (
    "Uppgifterna som begäran bygger på ändrades medan den signerades, så den kunde inte sparas. "
    "Kontrollera uppgifterna och skicka igen."
)


def _raise_if_changed_meanwhile(exc: IntegrityError) -> None:
    """A refused insert of a new request other than the submission key's, because a row it
    refers to went away while it was being signed (a placement culled, a user removed), is a
    Conflict: 409 with a Swedish message. Any other refusal is left as it is (a bug: 500)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code == "23503" or "FOREIGN KEY constraint failed" in str(exc.orig):
        raise Conflict(CHANGED_MEANWHILE) from exc


def _orphaned(obj: StoredObject | None) -> None:
    if obj is not None:
        # The PDF stays, locked for its retention and named by no row: `jourpost storage
        # sweep` lists it among the locked orphans. The key holds no personal data.
        log.warning("police request not recorded; its signed PDF %s is an orphan", obj.object_id)


async def _record(
    db: AsyncSession, vault: Vault, user: Principal, r: PoliceRequest, check: str
) -> None:
    """Insert the new request `r` (signed already, or awaiting the chair) with its events, and
    audit its creation with the check's outcome."""
    db.add(r)
    await db.flush()
    db.add(_event(r, "created", r.created_by, r.created_at, vault))
    if r.signed_by is not None and r.signed_at is not None:
        db.add(_event(r, "signed", r.signed_by, r.signed_at, vault))
    await db.flush()
    await audit.record(
        db, "police_request.create", actor=user.actor(r.jour_id), owner_org_id=r.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=r.id,
        details={"act": r.act, "check": check, "decided_by": r.decided_by,
                 "status": r.status, "sha256": r.signed_sha256},
    )  # fmt: skip


async def record_blocked(db: AsyncSession, user: Principal, note: AuditNote) -> None:
    """Audit a refused request in the caller's transaction (a page that answers with the form
    again keeps its transaction, so the refusal is written in it)."""
    await audit.record(
        db, note.action, actor=user.actor(), outcome=note.outcome, owner_org_id=note.owner_org_id,
        object_type=note.object_type, object_id=note.object_id, details=note.details,
    )  # fmt: skip


def _blob(content: RequestContent, check: rules.Check) -> str:
    return to_blob(content, check_message=check.message,
                   checked_against=[b.label for b in check.found])  # fmt: skip


async def transition(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    request_id: uuid.UUID,
    status: str,
    *,
    note: str = "",
    revision: int | None = None,
    now: datetime,
) -> None:
    """Record the next step of the request's life (by the jour), with its time; audited."""
    action = f"police_request.{status}" if status in rules.STATUSES else "police_request.update"
    r = await access.get_for_jour(db, user, request_id, action)
    text = note.strip()
    if status not in rules.STATUSES or len(text) > 1000:
        raise InvalidInput(
            errors={"status": "Välj ett giltigt nästa steg."}
            if status not in rules.STATUSES
            else {"note": "Högst 1000 tecken."}
        )
    if revision is not None and revision != r.revision:
        raise Conflict("Begäran har ändrats av någon annan. Ladda om sidan.")
    if status not in rules.TRANSITIONS[r.status]:
        raise Conflict(
            f"En begäran som är ”{rules.STATUSES[r.status].lower()}” kan inte bli "
            f"”{rules.STATUSES[status].lower()}”."
        )
    moved = await db.execute(
        update(PoliceRequest)
        .where(PoliceRequest.id == r.id, PoliceRequest.revision == r.revision)
        .values(status=status, status_at=now, revision=r.revision + 1)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Begäran har ändrats av någon annan. Ladda om sidan.")
    r.status, r.status_at, r.revision = status, now, r.revision + 1
    db.add(_event(r, status, user.user_id, now, vault, text))
    await audit.record(
        db, action, actor=user.actor(r.jour_id), owner_org_id=r.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=r.id, details={"status": status},
    )  # fmt: skip
