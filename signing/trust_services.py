"""Trust services: RFC 3161 timestamp authority, OCSP responder and CRLs, as one ASGI app.

A minimal raw ASGI callable (no framework) so it can be mounted in the portal in demo mode
(e.g. under ``/trust``) or served standalone by ``jourpost trust-services``:

    POST /tsa                     application/timestamp-query -> application/timestamp-reply
    POST /ocsp                    application/ocsp-request    -> application/ocsp-response
    GET  /crl/signing-ca.crl      application/pkix-crl (empty, signed by the signing CA key)
    GET  /crl/root.crl            application/pkix-crl (empty, signed by the root key)

Semantics, stated plainly because they differ from a general-purpose CA:
- OCSP answers ``good`` for every serial number under the signing CA's name and key hash, and
  ``unauthorized`` for any other issuer. There is no registry of issued certificates and no
  revocation: a chair certificate lives 15 minutes and its private key is discarded after one
  signature, so there is nothing to revoke (RFC 6960 ``good`` means "not revoked").
- The TSA (dev only) is pyHanko's in-process `DummyTimeStamper` (system clock, RSA key), with
  the key kept parsed. Production points `timestamp_url` at a real, preferably qualified, TSA.

Threat model: the TSA and the root CRL sign with dev keys whatever they are asked to; they are
for demo/dev and tests only (with `TrustServiceKeys` lacking a TSA/root key they answer 404,
which is the production shape: OCSP and the CA's CRL, the CA key behind PKCS#11).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asn1crypto import cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509 import ocsp
from pyhanko.sign import general
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.keys import SignerKey
from signing.pki import (
    CRL_NAME,
    ROOT_CRL_NAME,
    SIGNER_STATUS_VALIDITY,
    DevPki,
    SigningCA,
    build_crl,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OcspKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
RequestObserver = Callable[[str, float], None]
"""Called with (endpoint, seconds spent handling the request) — for benchmarks."""

MAX_BODY = 64 * 1024
"""Largest request body accepted (timestamp and OCSP requests are a few hundred bytes)."""

OCSP_VALIDITY = SIGNER_STATUS_VALIDITY
"""nextUpdate - thisUpdate of OCSP responses (shorter than a chair certificate lives)."""


def _attribute(name: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": (value,)})


class _ParsedKeyTimeStamper(DummyTimeStamper):
    """DummyTimeStamper that keeps the TSA key parsed (it re-parses it per request otherwise)."""

    def __init__(self, tsa_cert: x509.Certificate, tsa_key: RSAPrivateKey) -> None:
        pkcs8 = tsa_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        from asn1crypto import keys as asn1_keys

        super().__init__(tsa_cert=tsa_cert, tsa_key=asn1_keys.PrivateKeyInfo.load(pkcs8))
        self._parsed_key = tsa_key

    # Same as DummyTimeStamper._sign_tst_info in pyHanko 0.38, minus the key parsing.
    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: dt.datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        digest = hashlib.new(md_algorithm, tst_info_data).digest()
        signed_attrs = cms.CMSAttributes(
            [
                _attribute("content_type", "tst_info"),
                _attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                _attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                _attribute("message_digest", digest),
            ]
        )
        signature = self._parsed_key.sign(
            signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper())
        )
        return signature, signed_attrs


@dataclasses.dataclass(frozen=True)
class TrustServiceKeys:
    """What the trust services answer for and sign with.

    Production (the portal is the CA): `ca` with its PKCS#11 key signs the CA's CRL, a
    delegated OCSP responder certificate (EKU OCSPSigning, ocsp-nocheck, issued by the CA)
    signs OCSP answers, and `tsa`/`root_key` stay None (use a real TSA; the root is offline
    and its CRL is published by whoever keeps it). `DevPki.trust_service_keys` fills all.
    """

    ca: SigningCA
    """The CA whose certificates OCSP answers for and whose CRL is served."""
    ocsp_cert: x509.Certificate
    """Delegated OCSP responder certificate, issued by `ca`."""
    ocsp_key: OcspKey
    """The responder's private key."""
    root: x509.Certificate | None = None
    """Root certificate, to serve its CRL (dev only)."""
    root_key: SignerKey | None = None
    """Root key for the root CRL (dev only; a real root is offline)."""
    tsa_cert: x509.Certificate | None = None
    """TSA certificate for the built-in timestamp authority (dev only)."""
    tsa_key: RSAPrivateKey | None = None
    """TSA key (RSA: pyHanko's in-process TSA is RSA-only)."""

    @classmethod
    def from_dev_pki(cls, pki: DevPki) -> TrustServiceKeys:
        """Everything from the development PKI: CA, OCSP, root CRL and TSA."""
        return cls(
            ca=pki.issuer,
            ocsp_cert=pki.ocsp,
            ocsp_key=pki.ocsp_key,
            root=pki.root,
            root_key=pki.root_key,
            tsa_cert=pki.tsa,
            tsa_key=pki.tsa_key,
        )


class _TrustServices:
    def __init__(self, keys: TrustServiceKeys, observer: RequestObserver | None) -> None:
        self._keys = keys
        self._timestamper = (
            _ParsedKeyTimeStamper(keys.tsa_cert, keys.tsa_key)
            if keys.tsa_cert is not None and keys.tsa_key is not None
            else None
        )
        ca_cert = keys.ca.certificate
        self._ca_name_der = ca_cert.subject.dump()
        self._ca_key_bits = ca_cert.public_key["public_key"].contents[1:]
        self._responder = cx509.load_der_x509_certificate(keys.ocsp_cert.dump())
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        path = path.rstrip("/")  # Litestar mounts hand us "/crl/root.crl/"
        method: str = scope["method"]
        started = time.perf_counter()
        if path == "/tsa" and method == "POST" and self._timestamper is not None:
            endpoint, handler = "tsa", self._tsa
        elif path == "/ocsp" and method == "POST":
            endpoint, handler = "ocsp", self._ocsp
        elif path == f"/crl/{CRL_NAME}" and method in ("GET", "HEAD"):
            endpoint, handler = "crl", self._ca_crl
        elif (
            path == f"/crl/{ROOT_CRL_NAME}"
            and method in ("GET", "HEAD")
            and self._keys.root_key is not None
        ):
            endpoint, handler = "crl", self._root_crl
        else:
            await _respond(send, 404, "text/plain", b"not found")
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, "text/plain", b"request too large")
            return
        status, content_type, payload = await handler(body)
        if self._observer is not None:
            self._observer(endpoint, time.perf_counter() - started)
        await _respond(send, status, content_type, payload if method != "HEAD" else b"")

    async def _tsa(self, body: bytes) -> tuple[int, str, bytes]:
        try:
            request = tsp.TimeStampReq.load(body)
            request.native  # noqa: B018 - forces a full parse, so garbage fails here
        except ValueError:
            return 400, "text/plain", b"malformed timestamp request"
        assert self._timestamper is not None  # routed here only when configured
        response = await self._timestamper.async_request_tsa_response(request)
        return 200, "application/timestamp-reply", response.dump()

    async def _ocsp(self, body: bytes) -> tuple[int, str, bytes]:
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            malformed = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
            return 200, "application/ocsp-response", malformed.public_bytes(_DER)
        algorithm = request.hash_algorithm.name
        ours = (
            hashlib.new(algorithm, self._ca_name_der).digest() == request.issuer_name_hash
            and hashlib.new(algorithm, self._ca_key_bits).digest() == request.issuer_key_hash
        )
        if not ours:
            unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            )
            return 200, "application/ocsp-response", unauthorized.public_bytes(_DER)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + OCSP_VALIDITY,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self._responder)
            .certificates([self._responder])
        )
        for extension in request.extensions:
            if isinstance(extension.value, cx509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        response = builder.sign(self._keys.ocsp_key, hashes.SHA256())
        return 200, "application/ocsp-response", response.public_bytes(_DER)

    async def _ca_crl(self, body: bytes) -> tuple[int, str, bytes]:
        return 200, "application/pkix-crl", self._keys.ca.build_crl().dump()

    async def _root_crl(self, body: bytes) -> tuple[int, str, bytes]:
        root, key = self._keys.root, self._keys.root_key
        assert root is not None and key is not None  # routed here only when configured
        return 200, "application/pkix-crl", build_crl(root, key).dump()


_DER = serialization.Encoding.DER


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_trust_services_app(
    pki: DevPki | TrustServiceKeys, *, observer: RequestObserver | None = None
) -> ASGIApp:
    """The TSA/OCSP/CRL ASGI app; `observer` receives server-side handling times.

    Endpoints whose keys are not configured (TSA, root CRL) answer 404.
    """
    keys = pki if isinstance(pki, TrustServiceKeys) else TrustServiceKeys.from_dev_pki(pki)
    return _TrustServices(keys, observer)


def serve(pki: DevPki | TrustServiceKeys, *, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve the trust services in the foreground (`jourpost trust-services`); blocks."""
    import uvicorn

    uvicorn.run(create_trust_services_app(pki), host=host, port=port, lifespan="on")
