"""The chair decides a police-assistance request: step-up at the identity provider, then sign.

The same step-up as a chair decision (`portal.chair_signing`, DESIGN.md §5):
1. `begin` — only a chair of the request's municipality, only while it awaits the chair. The
   document naming this chair is rendered (PDF/A; the same request and signer always give the
   same bytes) and the chair is sent to the identity provider with `prompt=login`,
   `max_age=0`, their personnummer as `login_hint`, and the signRequest (`tbs_data` = SHA-256
   of that PDF, `sign_message` = a Swedish sentence naming the request); the nonce is bound to
   the digest. The pending request is kept in the chair's server-side session under PURPOSE.
2. `complete` — the ID token must be fresh and carry the same chair's personnummer, who must
   still be a chair of the municipality; the request must still await the chair and render to
   the same digest (else nothing is signed). These checks run in the request's transaction,
   which is then released (committed: the pending request is used up, the connection goes
   back, no row lock is held). The PDF is signed PAdES-B-LTA with a certificate for the
   identity the provider verified and stored with retention under a key of its own for this
   attempt, with no transaction open; a short transaction of its own then marks the request
   signed with a conditional UPDATE (still awaiting the chair, same revision) and audits it as
   `police_request.approve` with the acr.

A second (replayed) completion finds the session's pending request gone and signs nothing. Two
completions racing (a double click, two devices, each with its own step-up) may both sign and
store; the conditional UPDATE lets exactly one through, and the other's PDF (locked for its
retention, named by no row) is audited as `police_request.approve_superseded` for
`jourpost storage sweep` (docs/signing.md). TSA/OCSP failure: nothing stored; S3 failure: 503;
either way the request still awaits the chair, who can approve again.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal import chair_signing
from portal.chair_signing import SigningRefused, SigningSetup, SigningUnavailable
from portal.db.base import utcnow
from portal.errors import Conflict, Forbidden
from portal.pii import Vault
from portal.police import access, document, rules, service
from portal.police.models import PoliceRequest
from portal.principal import Principal
from storage import EncryptedObjectStore

if TYPE_CHECKING:
    from auth.oidc import RelyingParty
    from portal.account.service import StepUp
    from portal.runtime import PortalState

log = logging.getLogger("jourpost.police")

PURPOSE = "police_signing"
"""The step-up purpose of a chair's approval: the key of the pending request in the session."""
ACTION = "police_request.approve"
ROLE = "ordförande"


def _page(request_id: uuid.UUID) -> str:
    return f"/police-requests/{request_id}"


async def _awaiting_chair(
    db: AsyncSession, user: Principal, request_id: uuid.UUID, *, lock: bool = False
) -> PoliceRequest:
    """The request, if the caller is a chair of its municipality *now* and it awaits the chair."""
    r = await access.get_visible(db, user, request_id, ACTION, lock=lock)
    if r.organisation_id not in access.chair_orgs(user):
        raise Forbidden(
            "Bara kommunens ordförande kan besluta om den här begäran.",
            audit=access.note(ACTION, "denied", r.id, r.organisation_id),
        )
    if r.status != "awaiting_chair":
        raise Conflict("Begäran väntar inte på ordförandens beslut.")
    return r


async def _frozen(
    db: AsyncSession, vault: Vault, r: PoliceRequest, signer_id: uuid.UUID
) -> tuple[service.Document, bytes, str]:
    """The document naming the chair, its PDF and the PDF's SHA-256 (hex)."""
    doc = await service.document_for(db, vault, r, signer_id)
    pdf = await document.render(doc.html)
    return doc, pdf, hashlib.sha256(pdf).hexdigest()


async def begin(
    db: AsyncSession,
    vault: Vault,
    rp: RelyingParty,
    setup: SigningSetup | None,
    user: Principal,
    request_id: uuid.UUID,
) -> str:
    """Start the chair's step-up; return the identity provider URL to send the chair to."""
    r = await _awaiting_chair(db, user, request_id)
    if setup is None:
        raise SigningUnavailable(chair_signing.NOT_CONFIGURED)
    doc, _, sha256 = await _frozen(db, vault, r, user.user_id)
    message = (
        f"Jag beslutar och undertecknar begäran om handräckning enligt {rules.ACTS[r.act]}, "
        f"{doc.committee}."
    )
    return await chair_signing.begin(
        db, rp, user, PURPOSE, login_hint=doc.signer_pnr, sha256=sha256, message=message,
        record=("request_id", r.id),
    )  # fmt: skip


def step_up(runtime: PortalState) -> StepUp:
    """What finishes the chair's step-up: complete it, then back to the request."""
    return chair_signing.step_up(
        runtime, complete, lambda request_id: f"{_page(request_id)}?saved=1"
    )


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
    now: datetime | None = None,
) -> uuid.UUID:
    """Check the step-up answer, sign in the verified chair's name and store (at `now`, default
    the present); the request id.

    The request's transaction is released before the trust services and the object store are
    called; the request is signed in a short transaction from `sessions` (module docstring)."""
    now = now or utcnow()
    if setup is None:
        raise SigningUnavailable(chair_signing.NOT_CONFIGURED)
    info = await chair_signing.take_pending(
        db, user, PURPOSE, none_pending="Ingen underskrift pågår. Börja om från begäran."
    )
    request_id = uuid.UUID(info["request_id"])
    note = access.note(ACTION, "denied", request_id, None)
    identity = await chair_signing.verified_identity(
        rp, params, info, note, again=(_page(request_id), "Försök igen"),
        cancelled="Du avbröt legitimeringen. Begäran är inte beslutad eller underskriven; du "
        "kan besluta när du är redo.",
    )  # fmt: skip
    r = await _awaiting_chair(db, user, request_id)
    note = replace(note, owner_org_id=r.organisation_id)
    doc, pdf, sha256 = await _frozen(db, vault, r, user.user_id)
    if chair_signing.verified_pnr(identity) != doc.signer_pnr:
        raise SigningRefused(
            "Legitimeringen gjordes av en annan person än ordföranden.",
            audit=replace(note, details={"reason": "other_person"}),
            next_step=(_page(request_id), "Försök igen"),
        )
    if sha256 != info["sha256"]:
        raise Conflict(
            "Begäran har ändrats sedan du legitimerade dig, så inget har skrivits under. "
            "Läs den igen och besluta på nytt.",
            audit=replace(note, details={"reason": "document_changed"}),
        )
    name, given, family = chair_signing.signer_name(identity, doc.signer_name or "Okänd")
    signer = document.Signer(name, doc.signer_pnr, given or None, family or None)
    stored, signed_at = await service.sign_released(
        db, setup, files, r, doc, pdf=pdf, signer=signer, role=ROLE, now=now
    )
    async with sessions() as tx, tx.begin():
        won = await service.deliver_approval(
            tx, vault, user, r, stored, signed_at, action=ACTION, acr=identity.acr
        )
    if not won:
        async with sessions() as tx, tx.begin():
            current = await tx.get(PoliceRequest, r.id)
        if current is None or current.signed_at is None:
            raise Conflict("Begäran väntar inte på ordförandens beslut.")
    return r.id
