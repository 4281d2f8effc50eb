"""The request as the police receive it: a PDF/A rendered from templates/police/document.html,
signed PAdES-B-LTA (the machinery of the chair decisions: signing/ and the portal's signing CA)
in the name of whoever decided it — the jour worker under delegation, or the chair — and stored
encrypted with ten years' retention. The jour e-mails or prints it to the station commander;
the police are not users of the portal.

The chair's approval is signed only after a step-up at the identity provider bound to this
PDF's digest (`portal.police.signing`), and the certificate carries the identity the provider
verified. A jour worker's request under delegation is signed at once for the logged-in person
(their session came from an e-legitimation login; see docs/police-requests.md for why).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from cryptography.hazmat.primitives.asymmetric import ec

from portal.chair_signing import SigningSetup, SigningUnavailable
from portal.timefmt import format_local
from storage import EncryptedObjectStore, StorageError, StoredObject

log = logging.getLogger("jourpost.police")

RETENTION = dt.timedelta(days=365 * 10 + 3)
"""Signed requests are kept as long as signed decisions."""

_documents = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_documents.filters["sthlm"] = format_local


def html(**context: Any) -> str:
    """The request document's HTML."""
    return _documents.get_template("police/document.html").render(**context)


async def render(document_html: str) -> bytes:
    """The document's PDF/A (the same HTML gives the same bytes)."""
    from signing.errors import RenderError
    from signing.render import render_pdfa

    try:
        return await asyncio.to_thread(render_pdfa, document_html)
    except RenderError as exc:
        log.error("police request rendering failed: %s", type(exc).__name__)
        raise SigningUnavailable("Begäran kunde inte skapas som PDF. Försök igen.") from exc


@dataclass(frozen=True, slots=True)
class Signer:
    """Who the certificate is issued for."""

    name: str
    """Full name, in the stamp and the certificate's common name."""
    personal_identity_number: str
    """The certificate's serialNumber (PNOSE-...)."""
    given_name: str | None = None
    """As the identity provider verified it (the step-up), if it did."""
    surname: str | None = None
    """As the identity provider verified it (the step-up), if it did."""


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def sign_and_store(
    setup: SigningSetup | None,
    files: EncryptedObjectStore,
    *,
    request_id: uuid.UUID,
    document_pdf: bytes,
    signer: Signer,
    signer_role: str,
    reason: str,
    location: str,
    now: dt.datetime,
) -> StoredObject:
    """Sign and store; SigningUnavailable (nothing stored) when a trust service or the object
    store can't be reached."""
    from signing.errors import SigningError, TrustServiceUnavailable
    from signing.pades import sign_pdf

    if setup is None:
        raise SigningUnavailable("Underskrift är inte konfigurerad i den här installationen.")
    key = ec.generate_private_key(ec.SECP256R1())  # ephemeral: this one signature
    try:
        cert = setup.ca.issue_signer_certificate(
            public_key=key.public_key(), name=signer.name,
            personal_identity_number=signer.personal_identity_number,
            given_name=signer.given_name, surname=signer.surname,
        )  # fmt: skip
        signed = await sign_pdf(
            document_pdf, signer_cert=cert, signer_key=key, chain=list(setup.chain),
            timestamp_url=setup.timestamp_url, trust_roots=list(setup.trust_roots),
            field_name="Handrackning",
            stamp_text=f"Digitalt signerat av {signer.name}, {signer_role}, tid {{time}}",
            reason=reason, location=location,
        )  # fmt: skip
    except TrustServiceUnavailable as exc:
        log.warning("police request signing failed: trust service unavailable")
        raise SigningUnavailable(
            "Tidsstämpel eller spärrkontroll kunde inte hämtas, så inget har skrivits under. "
            "Försök igen om en stund."
        ) from exc
    except SigningError as exc:
        log.error("police request signing failed: %s", type(exc).__name__)
        raise SigningUnavailable("Underskriften kunde inte skapas. Försök igen.") from exc
    try:
        stored: StoredObject = await files.put(
            f"police-requests/{request_id}/signed-{uuid.uuid4()}.pdf",
            _one_chunk(signed),
            retain_until=now + RETENTION,
        )
    except StorageError as exc:
        log.warning("police request signing failed: object store (%s)", type(exc).__name__)
        raise SigningUnavailable(
            "Den underskrivna begäran kunde inte sparas just nu. Försök igen om en stund."
        ) from exc
    return stored
