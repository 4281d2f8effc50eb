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
   the same digest (else nothing is signed). The PDF is then signed PAdES-B-LTA with a
   certificate for the identity the provider verified, stored with retention, and the request
   becomes signed; audited as `police_request.approve` with the acr.

A second (replayed) completion finds the session's pending request gone and signs nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from portal import chair_signing
from portal.audit import service as audit
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
    now: datetime | None = None,
) -> uuid.UUID:
    """Check the step-up answer, sign in the verified chair's name and store (at `now`, default
    the present); the request id."""
    now = now or utcnow()
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
    r = await _awaiting_chair(db, user, request_id, lock=True)
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
    await service.sign(db, vault, setup, files, r, user.user_id, ROLE, now, pdf=pdf, signer=signer)
    await audit.record(
        db, ACTION, actor=user.actor(r.organisation_id), owner_org_id=r.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=r.id,
        details={"sha256": r.signed_sha256, "acr": identity.acr, "step_up": True},
    )  # fmt: skip
    return r.id
