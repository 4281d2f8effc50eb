"""The chair signs on a phone: step-up at the identity provider, then PAdES-B-LTA.

Flow (DESIGN.md §5, "federated signing"):
1. `begin` — only the decision-maker, only while the decision awaits signature. The chair is
   sent to the identity provider (the step-up of `portal.chair_signing`) with the oidc-sweden
   signRequest (`tbs_data` = SHA-256 of the frozen PDF, `sign_message` = a Swedish sentence
   naming the decision) — where the provider lacks that extension the nonce is bound to the
   document digest instead. The pending request is kept in the chair's server-side session.
2. `complete` — the ID token must be fresh and carry the decision-maker's personnummer. Then
   an ephemeral key pair, a short-lived certificate from the portal's signing CA
   (serialNumber PNOSE-<personnummer>, nonRepudiation), and a B-LTA signature with the TSA's
   timestamp and the CA's OCSP response embedded. The signed PDF goes to the object store
   with retention and the decision becomes signed and delivered in the same transaction.

Exactly one signature, and no lock or pooled connection held across a network call:
1. the step-up answer and the decision are checked in the request's transaction, which is then
   released (committed: the pending request is used up, the connection goes back, nothing is
   locked) — a completion that finds the decision signed already returns it unchanged;
2. the signature is made (TSA, OCSP) and the signed PDF stored under a key of its own for this
   attempt (locked ten years the moment it is stored) with no transaction open;
3. a short transaction of its own moves the decision from awaiting_signature to delivered with
   a conditional UPDATE (the only row lock, held for that transaction) and audits it.
If the TSA or OCSP responder is unreachable nothing is stored, the decision stays awaiting
signature, and the chair can try again; the same when the object store can't take the signed
PDF (503, bounded by the S3 timeouts and attempts). Meanwhile the decision, the jour's list of
decisions awaiting signature and the reminder job read and write it as usual.

Two completions racing (a double click, two devices) may both sign and store; the conditional
UPDATE lets exactly one through. The loser's PDF is then an object no row names, under
retention for ten years, so it can't be deleted: it is recorded as `decision.sign_superseded`
in the audit log (its key and SHA-256) and left to `jourpost storage sweep`, which reports it
among the locked orphans until its retention ends and deletes it then (docs/signing.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.roles import Permission
from portal import chair_signing
from portal.attachments.store import stored_columns, stored_object
from portal.audit import service as audit
from portal.chair_signing import SigningRefused, SigningSetup, SigningUnavailable
from portal.db.base import utcnow
from portal.db.models import User
from portal.decisions import service
from portal.decisions.models import Decision
from portal.decisions.rules import KINDS, in_running_text
from portal.errors import AuditNote, Conflict, Forbidden, NotFound
from portal.pii import Vault, field_context
from portal.principal import Principal
from portal.rosters import service as rosters
from portal.timefmt import format_local
from storage import EncryptedObjectStore, StorageError, StoredObject

if TYPE_CHECKING:
    from auth.oidc import RelyingParty, VerifiedIdentity
    from portal.account.service import StepUp
    from portal.runtime import PortalState

log = logging.getLogger("jourpost.signing")

RETENTION = dt.timedelta(days=365 * 10 + 3)
"""Signed decisions are kept at least ten years (object lock / filesystem retention)."""
PURPOSE = "signing"
"""The step-up purpose of a signature: the key of the pending request in the session's data."""


def _sign_message(d: Decision, committee: str) -> str:
    kind = KINDS[d.kind]
    return (
        f"Jag undertecknar {kind.title.lower()} enligt {kind.act}, {committee}, "
        f"ärende {service.short_reference(d.id)}, "
        f"muntligt beslut {format_local(d.oral_decision_at)}."
    )


async def _pnr_of(db: AsyncSession, vault: Vault, user_id: uuid.UUID) -> str:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound()
    return vault.decrypt(user.pnr_enc, field_context(User.pnr_enc, user.id))


async def begin(
    db: AsyncSession,
    vault: Vault,
    rp: RelyingParty,
    setup: SigningSetup | None,
    user: Principal,
    decision_id: uuid.UUID,
) -> str:
    """Start the step-up for signing; return the identity provider URL to send the chair to."""
    d = await service.load_visible(db, user, decision_id, "decision.sign")
    if setup is None:
        raise SigningUnavailable(chair_signing.NOT_CONFIGURED)
    if d.decision_maker_id != user.user_id:
        raise Forbidden(
            "Endast den som fattade beslutet kan skriva under det.",
            audit=AuditNote(
                "decision.sign",
                "denied",
                owner_org_id=d.municipality_id,
                object_type="decision",
                object_id=str(d.id),
            ),
        )
    if d.status in ("signed", "delivered"):
        raise Conflict("Beslutet är redan underskrivet.")
    if d.status != "awaiting_signature" or d.document_sha256 is None:
        raise Conflict("Beslutet väntar inte på underskrift.")
    await _may_still_sign(
        db,
        user,
        d,
        AuditNote(
            "decision.sign",
            "denied",
            owner_org_id=d.municipality_id,
            object_type="decision",
            object_id=str(d.id),
        ),
    )
    out = await service.to_out(db, vault, d)
    return await chair_signing.begin(
        db, rp, user, PURPOSE,
        login_hint=await _pnr_of(db, vault, user.user_id), sha256=d.document_sha256,
        message=_sign_message(d, out.committee), record=("decision_id", d.id),
    )  # fmt: skip


async def _may_still_sign(db: AsyncSession, user: Principal, d: Decision, note: AuditNote) -> None:
    """Refuse unless the person holds a signing role in the municipality *now* and was on its
    roster when the decision was taken orally.

    Checked when signing starts and again when the identity provider's answer comes back: the
    step-up can take minutes, and an admin may revoke the role (or a roster be corrected) in
    between. The principal's memberships are read from the database on every request.
    """
    if d.municipality_id not in user.orgs_with(Permission.SIGN_DECISIONS):
        raise Forbidden(
            "Du har inte längre behörighet att skriva under beslut för kommunen.",
            audit=replace(note, details={"reason": "no_signing_role"}),
        )
    if not await rosters.was_on_roster(
        db, d.municipality_id, d.decision_maker_id, d.oral_decision_at
    ):
        raise Forbidden(
            "Du fanns inte på kommunens ordförandejourlista när beslutet fattades.",
            audit=replace(note, details={"reason": "not_on_roster"}),
        )


def step_up(runtime: PortalState) -> StepUp:
    """What finishes the step-up of a signature: complete it, then back to the decision."""
    return chair_signing.step_up(
        runtime, complete, lambda decision_id: f"/decisions/{decision_id}/sign"
    )


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def complete(
    db: AsyncSession,
    vault: Vault,
    rp: RelyingParty,
    setup: SigningSetup | None,
    files: EncryptedObjectStore,
    user: Principal,
    params: dict[str, str],
    *,
    sessions: async_sessionmaker[AsyncSession],
) -> uuid.UUID:
    """Check the step-up answer, sign, store and deliver; return the decision id.

    The request's transaction is released before the trust services and the object store are
    called; the decision is delivered in a short transaction from `sessions` (module docstring).
    """
    if setup is None:
        raise SigningUnavailable(chair_signing.NOT_CONFIGURED)
    info = await chair_signing.take_pending(
        db, user, PURPOSE, none_pending="Ingen underskrift pågår. Börja om från beslutet."
    )
    decision_id = uuid.UUID(info["decision_id"])
    note = AuditNote("decision.sign", "denied", object_type="decision", object_id=str(decision_id))
    identity = await chair_signing.verified_identity(
        rp, params, info, note, again=(f"/decisions/{decision_id}/sign", "Försök igen"),
        cancelled="Du avbröt legitimeringen. Beslutet är inte underskrivet; du kan skriva under "
        "när du är redo.",
    )  # fmt: skip
    d = await db.get(Decision, decision_id)
    if d is None or d.decision_maker_id != user.user_id:
        raise NotFound(audit=note)
    if d.status in ("signed", "delivered"):
        return d.id  # a retried or double-clicked completion: already signed once
    sha256 = info["sha256"]
    if d.status != "awaiting_signature" or d.document_sha256 != sha256:
        raise Conflict("Beslutet väntar inte längre på underskrift.")
    pnr = await _check_signer(db, vault, user, d, identity, note)
    unsigned = await _unsigned(db, vault, d)
    await chair_signing.release(db)  # no connection, transaction or lock across the network
    signed = await _sign(setup, d, unsigned, identity, pnr)
    now = utcnow()
    stored = await _store(files, d, signed, now)
    async with sessions() as tx, tx.begin():
        delivered = await _deliver(tx, user, d, sha256, stored, acr=identity.acr, now=now)
    if not delivered:
        async with sessions() as tx, tx.begin():
            current = await tx.get(Decision, d.id)
        if current is None or current.status not in ("signed", "delivered"):
            raise Conflict("Beslutet väntar inte längre på underskrift.")
    return d.id


async def _check_signer(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    d: Decision,
    identity: VerifiedIdentity,
    note: AuditNote,
) -> str:
    """Refuse unless the provider identified the decision-maker, who may still sign; return
    their personnummer."""
    expected = await _pnr_of(db, vault, user.user_id)
    if chair_signing.verified_pnr(identity) != expected:
        raise SigningRefused(
            "Legitimeringen gjordes av en annan person än beslutsfattaren.",
            audit=replace(note, details={"reason": "other_person"}),
        )
    await _may_still_sign(db, user, d, replace(note, owner_org_id=d.municipality_id))
    return expected


@dataclass(frozen=True, slots=True)
class _Unsigned:
    """What the signature needs from the database, read before the request's transaction ends."""

    pdf: bytes
    """The frozen PDF."""
    committee: str
    """The committee deciding."""
    decision_maker: str
    """The decision-maker's name (when the identity provider gives none)."""
    function: str
    """The decision-maker's function in the committee."""
    municipality: str
    """The municipality's name (the signature's location)."""


async def _unsigned(db: AsyncSession, vault: Vault, d: Decision) -> _Unsigned:
    out = await service.to_out(db, vault, d)
    assert d.document_enc is not None
    pdf = base64.b64decode(
        vault.decrypt(d.document_enc, field_context(Decision.document_enc, d.id))
    )
    return _Unsigned(
        pdf, out.committee, out.decision_maker, out.decision_maker_function, out.municipality
    )


async def _sign(
    setup: SigningSetup,
    d: Decision,
    unsigned: _Unsigned,
    identity: VerifiedIdentity,
    pnr: str,
) -> bytes:
    """The frozen PDF signed PAdES-B-LTA with a fresh key and a certificate for the chair."""
    from signing.errors import SigningError, TrustServiceUnavailable
    from signing.pades import sign_pdf

    key = ec.generate_private_key(ec.SECP256R1())  # ephemeral: used for this one signature
    name, given, family = chair_signing.signer_name(identity, unsigned.decision_maker)
    try:
        cert = setup.ca.issue_signer_certificate(
            public_key=key.public_key(),
            name=name,
            personal_identity_number=pnr,
            given_name=given or None,
            surname=family or None,
        )
        return await sign_pdf(
            unsigned.pdf,
            signer_cert=cert,
            signer_key=key,
            chain=list(setup.chain),
            timestamp_url=setup.timestamp_url,
            trust_roots=list(setup.trust_roots),
            stamp_text=(
                f"Digitalt signerat av {name}, {unsigned.function} i "
                f"{in_running_text(unsigned.committee)}, tid {{time}}"
            ),
            reason=f"{KINDS[d.kind].title} enligt {KINDS[d.kind].act}",
            location=unsigned.municipality,
        )
    except TrustServiceUnavailable as exc:
        log.warning("signing failed: trust service unavailable")
        raise SigningUnavailable(
            "Tidsstämpel eller spärrkontroll kunde inte hämtas, så inget har skrivits under. "
            "Försök igen om en stund."
        ) from exc
    except SigningError as exc:
        log.error("signing failed: %s", type(exc).__name__)
        raise SigningUnavailable("Underskriften kunde inte skapas. Försök igen.") from exc


async def _store(
    files: EncryptedObjectStore, d: Decision, signed: bytes, now: dt.datetime
) -> StoredObject:
    """The signed PDF in the object store, retained for RETENTION."""
    # A key of its own per attempt: the object is locked for ten years the moment it is stored,
    # and another completion may store its own meanwhile, or this one never get to deliver
    # (the instance dies, the database goes away): a retry must not collide with it. An object
    # left behind that way is an orphan for the storage sweep, never a decision that can no
    # longer be signed.
    try:
        return await files.put(
            f"decisions/{d.id}/signed-{uuid.uuid4()}.pdf",
            _one_chunk(signed),
            retain_until=now + RETENTION,
        )
    except StorageError as exc:  # bounded by the S3 timeouts and attempts (storage.s3)
        log.warning("signing failed: object store unavailable (%s)", type(exc).__name__)
        raise SigningUnavailable(
            "Det underskrivna beslutet kunde inte sparas just nu, så inget har skrivits under. "
            "Försök igen om en stund."
        ) from exc


async def _deliver(
    db: AsyncSession,
    user: Principal,
    d: Decision,
    sha256: str,
    stored: StoredObject,
    *,
    acr: str,
    now: dt.datetime,
) -> bool:
    """The decision signed and delivered, pointing at the signed PDF, if it still awaits the
    signature of this document (conditional UPDATE); audited. False when another completion
    (or a change) came first: the PDF just stored is then recorded as superseded."""
    return await chair_signing.deliver(
        db,
        update(Decision)
        .where(
            Decision.id == d.id,
            Decision.status == "awaiting_signature",
            Decision.document_sha256 == sha256,
        )
        .values(
            status="delivered",
            signed_at=now,
            delivered_at=now,
            revision=Decision.revision + 1,
            **stored_columns(stored, "signed_"),
        ),
        action="decision.sign",
        user=user,
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
        stored=stored,
        details={"sha256": stored.sha256, "acr": acr},
    )


async def signed_pdf(
    db: AsyncSession, files: EncryptedObjectStore, user: Principal, decision_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """Stream the signed PDF (integrity checked while reading); audited as a download."""
    d = await service.load_visible(db, user, decision_id, "decision.download")
    if d.signed_object_id is None:
        raise NotFound("Beslutet är inte underskrivet ännu.")
    await audit.record(
        db,
        "decision.download",
        actor=user.actor(),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
        details={"document": "signed"},
    )
    return files.get(stored_object(d, "signed_"))


async def pending_for(db: AsyncSession, user: Principal) -> list[Decision]:
    """Decisions waiting for this person's signature."""
    rows = await db.scalars(
        select(Decision).where(
            Decision.decision_maker_id == user.user_id, Decision.status == "awaiting_signature"
        )
    )
    return list(rows)


def last_timestamp_expiry(pdf: bytes) -> dt.datetime | None:
    """When the certificate of the newest document timestamp expires (None: no timestamp)."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    stamps = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_timestamp_signatures
    if not stamps:
        return None
    expiry: dt.datetime = stamps[-1].signer_cert["tbs_certificate"]["validity"]["not_after"].native
    return expiry


@dataclass(frozen=True, slots=True)
class RenewalReport:
    """What `renew_timestamps` did."""

    checked: int
    """Signed decisions read."""
    renewed: int
    """Given a new document timestamp (or, with dry_run, that would be)."""
    repaired: int
    """Of those, renewed because they no longer verified offline (not for expiry or force)."""
    still_invalid: int
    """Still not valid offline after renewal, or damaged (not intact): need a person."""


async def renew_timestamps(
    db: AsyncSession,
    files: EncryptedObjectStore,
    setup: SigningSetup,
    *,
    margin: dt.timedelta = dt.timedelta(days=365),
    force: bool = False,
    dry_run: bool = False,
) -> RenewalReport:
    """Add a fresh document timestamp to stored signed decisions that need one.

    A decision needs one when its newest timestamp's certificate expires within `margin`, when
    `force` is given, or when it no longer verifies offline although its signatures are intact
    (repair: decisions signed before 2026-12-04 carry a last timestamp whose TSA certificate
    names a CRL that the file holds only for a day; see docs/signing.md). The renewal is an
    incremental update (revocation data for the old timestamps plus a new document timestamp):
    the signature itself is untouched. The renewed file is stored as a new object with the same
    retention (the old one stays: it is under retention); the decision then points at it.
    """
    from signing.pades import renew_archival_timestamp
    from signing.verify import verify_pdf

    checked = renewed = repaired = still_invalid = 0
    done: list[tuple[uuid.UUID, uuid.UUID, str]] = []
    roots = list(setup.trust_roots)
    rows = (await db.scalars(select(Decision).where(Decision.signed_object_id.is_not(None)))).all()
    for d in rows:
        current = stored_object(d, "signed_")  # selected for a signed object
        pdf = b"".join([chunk async for chunk in files.get(current)])
        checked += 1
        expiry = last_timestamp_expiry(pdf)
        due = force or expiry is None or expiry <= utcnow() + margin
        if not due:
            report = await verify_pdf(pdf, trust_roots=roots)
            if report.valid:
                continue
            if report.modified_after_signing or not all(s.intact for s in report.signatures):
                still_invalid += 1  # damaged: a timestamp would only cover the damage
                log.warning("renew-timestamps: signed decision %s is not intact", d.id)
                continue
            repaired += 1
        renewed += 1
        if dry_run:
            continue
        fresh = await renew_archival_timestamp(
            pdf,
            timestamp_url=setup.timestamp_url,
            trust_roots=roots,
            other_certs=list(setup.chain),
        )
        if not (await verify_pdf(fresh, trust_roots=roots)).valid:
            still_invalid += 1
            log.warning("renew-timestamps: decision %s still does not verify offline", d.id)
        stored = await files.put(
            f"decisions/{d.id}/signed-{checked}-{utcnow():%Y%m%d%H%M%S}.pdf",
            _one_chunk(fresh),
            retain_until=utcnow() + RETENTION,
        )
        for column, value in stored_columns(stored, "signed_").items():
            setattr(d, column, value)
        done.append((d.id, d.municipality_id, stored.sha256))
    # Audited after the loop: an entry locks the audit chain's head row until the commit, and
    # the loop calls the TSA and the object store for every decision (minutes for many, or as
    # long as either hangs) — every audited request of every instance would wait that long.
    for decision_id, municipality_id, sha256 in done:
        await audit.record(
            db,
            "decision.timestamp_renewed",
            owner_org_id=municipality_id,
            object_type="decision",
            object_id=decision_id,
            details={"sha256": sha256},
        )
    return RenewalReport(checked, renewed, repaired, still_invalid)
