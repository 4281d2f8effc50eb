"""What signing in a chair's name needs, shared by a decision's signature
(`portal.decisions.signing`) and the approval of a police-assistance request
(`portal.police.signing`): the signing setup, its errors, and the step-up at the identity
provider (DESIGN.md §5).

    DomainError
    ├── SigningUnavailable   503  a trust service or the store failed: nothing signed, try again
    ├── SigningRefused       403  (a Forbidden) the identity check failed
    └── SigningCancelled     409  the chair pressed "Avbryt" at the provider: nothing signed

The step-up: `begin` sends the chair to the identity provider with `prompt=login`, `max_age=0`,
their personnummer as `login_hint` and the oidc-sweden signRequest (`tbs_data` = SHA-256 of the
document, `sign_message` = a Swedish sentence naming it); the nonce is bound to the digest. The
pending request is kept in the chair's server-side session under the feature's purpose.
`take_pending` removes it (so a replayed answer finds nothing and signs nothing), and
`verified_identity` checks the provider's answer, explaining a cancel or a refusal.

Completing holds no lock or pooled connection across the trust services and the object store
(docs/signing.md): the feature checks in the request's transaction and `release`s it, signs and
stores under a key of its own for the attempt, then `deliver`s in a short transaction with a
conditional UPDATE; a completion that lost the race has its stored PDF audited as
`<action>_superseded`.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from portal.audit import service as audit
from portal.db.models import WebSession
from portal.errors import AuditNote, DomainError, Forbidden
from portal.pii import InvalidPersonnummer, Vault, normalise_personnummer
from portal.principal import Principal
from portal.settings import Settings

if TYPE_CHECKING:
    from asn1crypto import x509

    from auth.oidc import RelyingParty, VerifiedIdentity
    from portal.account.service import StepUp
    from portal.runtime import PortalState
    from signing.pki import DevPki, SigningCA
    from storage import EncryptedObjectStore, StoredObject

log = logging.getLogger("jourpost.signing")


class SigningUnavailable(DomainError):
    """A trust service (TSA, OCSP) could not be reached: nothing was signed; try again."""

    status = 503
    title = "Underskriften kunde inte slutföras"


class SigningRefused(Forbidden):
    """The identity check at signing failed."""

    title = "Underskriften godtogs inte"


class SigningCancelled(DomainError):
    """The chair cancelled the identity check: nothing is wrong, nothing was signed."""

    status = 409
    title = "Underskriften avbröts"


NOT_CONFIGURED = "Underskrift är inte konfigurerad i den här installationen."
"""Why signing refuses where no signing CA is configured."""


@dataclass(frozen=True, slots=True)
class SigningSetup:
    """What signing needs: the CA, the chain and trust roots, and the timestamp authority."""

    ca: SigningCA
    """Issues the chairs' short-lived certificates."""
    chain: tuple[x509.Certificate, ...]
    """Certificates embedded with the signature (signing CA, root)."""
    trust_roots: tuple[x509.Certificate, ...]
    """Roots the revocation data and timestamps validate against."""
    timestamp_url: str
    """RFC 3161 timestamp authority."""


def dev_signing(settings: Settings) -> tuple[SigningSetup, DevPki]:
    """The demo/dev CA, TSA and OCSP, served by the portal itself under /dev-trust."""
    from signing.pki import create_dev_pki

    base = f"{settings.public_url}/dev-trust"
    pki = create_dev_pki(Path(settings.data_dir) / "pki", base)
    setup = SigningSetup(pki.issuer, (pki.signing_ca, pki.root), (pki.root,), f"{base}/tsa")
    return setup, pki


def configured_signing(settings: Settings) -> SigningSetup | None:
    """Production signing from the settings: the CA key behind PKCS#11 (or a file), an external
    TSA and OCSP service. None when no signing CA is configured (signing then refuses)."""
    if not settings.signing_ca_cert:
        return None
    from signing.keys import FileSignerKey, Pkcs11SignerKey, SignerKey
    from signing.pki import SigningCA, load_certificate

    key: SignerKey
    if settings.signing_pkcs11_module:
        key = Pkcs11SignerKey(
            module_path=settings.signing_pkcs11_module,
            token_label=settings.signing_pkcs11_token,
            pin=settings.signing_pkcs11_pin,
            key_label=settings.signing_pkcs11_key,
        )
    else:
        key = FileSignerKey.from_pem_file(Path(settings.signing_ca_key_file))
    ca_cert = load_certificate(Path(settings.signing_ca_cert))
    roots = tuple(load_certificate(Path(p)) for p in settings.signing_trust_roots)
    return SigningSetup(
        SigningCA(ca_cert, key, settings.signing_ocsp_base_url),
        (ca_cert, *roots),
        roots,
        settings.signing_tsa_url,
    )


async def begin(
    db: AsyncSession,
    rp: RelyingParty,
    user: Principal,
    purpose: str,
    *,
    login_hint: str,
    sha256: str,
    message: str,
    record: tuple[str, uuid.UUID],
) -> str:
    """Send the chair to sign the document with this SHA-256 (hex) and `message`; keep the
    pending request in their session under `purpose`, with `record` = (key, id) naming what is
    signed. The identity provider URL."""
    url, pending = await rp.begin(
        prompt="login",
        max_age=0,
        login_hint=login_hint,
        sign_request={
            "tbs_data": base64.b64encode(bytes.fromhex(sha256)).decode(),
            "sign_message": base64.b64encode(message.encode()).decode(),
        },
        nonce_binding=sha256,
    )
    session = await db.get(WebSession, user.session_id)
    assert session is not None
    key, record_id = record
    session.data = {
        **session.data,
        purpose: {"pending": pending.to_dict(), key: str(record_id), "sha256": sha256},
    }
    flag_modified(session, "data")
    return str(url)


class Complete(Protocol):
    """A feature's completion of the step-up: check the answer in the request's transaction
    `db`, sign and store outside it, deliver in a short transaction from `sessions`; returns
    the signed record's id."""

    def __call__(
        self,
        db: AsyncSession,
        vault: Vault,
        rp: RelyingParty,
        setup: SigningSetup | None,
        files: EncryptedObjectStore,
        user: Principal,
        params: dict[str, str],
        *,
        sessions: async_sessionmaker[AsyncSession],
    ) -> Awaitable[uuid.UUID]: ...


def step_up(runtime: PortalState, complete: Complete, page: Callable[[uuid.UUID], str]) -> StepUp:
    """What finishes a feature's step-up (registered under its purpose by build_runtime):
    `complete` it, counted in the signing metrics, and send the chair to `page` of the record."""

    async def finish(db: AsyncSession, user: Principal, params: dict[str, str]) -> str:
        assert runtime.relying_party is not None
        record_id = await runtime.metrics.track_signing(
            complete(
                db, runtime.vault, runtime.relying_party, runtime.signing, runtime.object_store,
                user, params, sessions=runtime.sessionmaker,
            )
        )  # fmt: skip
        return page(record_id)

    return finish


async def take_pending(
    db: AsyncSession, user: Principal, purpose: str, *, none_pending: str
) -> dict[str, Any]:
    """The pending step-up of the principal's session under `purpose`, removed from it (used
    once); SigningRefused with `none_pending` when there is none."""
    session = await db.get(WebSession, user.session_id)
    info = dict((session.data or {}).get(purpose) or {}) if session else {}
    if not info or session is None:
        raise SigningRefused(none_pending)
    session.data = {k: v for k, v in session.data.items() if k != purpose}
    flag_modified(session, "data")
    return info


async def verified_identity(
    rp: RelyingParty,
    params: dict[str, str],
    info: dict[str, Any],
    note: AuditNote,
    *,
    again: tuple[str, str],
    cancelled: str,
) -> VerifiedIdentity:
    """The identity provider's verified answer to the step-up. A cancel is SigningCancelled
    with `cancelled` (audited as such), any other refusal SigningRefused; both offer `again`
    (path, label)."""
    from auth.errors import LoginRejected
    from auth.oidc import PendingAuth

    try:
        return await rp.complete(params, PendingAuth.from_dict(info["pending"]))
    except LoginRejected as exc:
        if exc.provider_error == "access_denied":  # the chair pressed "Avbryt" at the provider
            raise SigningCancelled(
                cancelled, audit=replace(note, outcome="cancelled"), next_step=again
            ) from exc
        log.info("%s step-up refused: %s", note.object_type, exc.reason)
        raise SigningRefused(
            "Legitimeringen för underskriften kunde inte verifieras. Försök igen.",
            audit=replace(note, details={"reason": exc.reason}),
            next_step=again,
        ) from exc


def verified_pnr(identity: VerifiedIdentity) -> str:
    """The personnummer the identity provider verified, normalised ("" when none or invalid)."""
    try:
        return normalise_personnummer(identity.personal_identity_number or "")
    except InvalidPersonnummer:
        return ""


def signer_name(identity: VerifiedIdentity, fallback: str) -> tuple[str, str, str]:
    """(full name, given name, family name) as the identity provider verified them; the full
    name falls back to `fallback` when the provider gave none."""
    given, family = identity.given_name or "", identity.family_name or ""
    return " ".join(x for x in (given, family) if x) or fallback, given, family


async def release(db: AsyncSession) -> None:
    """End the request's transaction now (commit): its pooled connection goes back and its
    locks are freed. Later writes go in a short transaction of their own (`sessions()`); a
    statement in the request's session afterwards begins a new transaction, taking a pooled
    connection again (the police API reads the request it has just recorded that way). Also
    used by the jour's own signing under delegation (`portal.police.service.create`)."""
    await db.commit()


async def deliver(
    db: AsyncSession,
    conditional: Update,
    *,
    action: str,
    user: Principal,
    owner_org_id: uuid.UUID,
    object_type: str,
    object_id: uuid.UUID,
    stored: StoredObject,
    details: dict[str, Any],
) -> bool:
    """Point the record at the signed PDF just stored with `conditional` (an UPDATE whose WHERE
    says the record still awaits this signature); audited as `action` with `details` when it
    went through. False when another completion (or a change) came first: the stored PDF,
    which no row names and which is locked for its retention, is then audited as
    `<action>_superseded` with its key and SHA-256 so it can be found and explained."""
    result = await db.execute(conditional)
    won = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    await audit.record(
        db,
        action if won else f"{action}_superseded",
        actor=user.actor(owner_org_id),
        owner_org_id=owner_org_id,
        object_type=object_type,
        object_id=object_id,
        details=details if won else {"object_id": stored.object_id, "sha256": stored.sha256},
    )
    return won
