"""The TSA/OCSP/CRL endpoints, spoken to over real HTTP."""

from __future__ import annotations

import httpx
from asn1crypto import tsp
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from signing.pki import DevPki, create_dev_pki
from tests.servers.trust_services import RunningTrustServices


def _crypto(cert: object) -> cx509.Certificate:
    return cx509.load_der_x509_certificate(cert.dump())  # type: ignore[attr-defined]


def _ocsp_request(cert: cx509.Certificate, issuer: cx509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - what OCSP clients send
    return request.public_bytes(serialization.Encoding.DER)


def test_ocsp_good_for_our_certificate(pki: DevPki, trust_services: RunningTrustServices) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _crypto(
        pki.issuer.issue_signer_certificate(
            public_key=key.public_key(), name="X", personal_identity_number="197104309831"
        )
    )
    response = httpx.post(
        f"{trust_services.url}/ocsp",
        content=_ocsp_request(cert, _crypto(pki.signing_ca)),
        headers={"content-type": "application/ocsp-request"},
        timeout=30,
    )
    assert response.headers["content-type"] == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == cert.serial_number
    responder = _crypto(pki.ocsp)
    assert parsed.certificates[0] == responder
    public_key = responder.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(  # raises if the response isn't signed by the responder
        parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )


def test_ocsp_refuses_other_issuers(
    pki: DevPki, trust_services: RunningTrustServices, tmp_path: object
) -> None:
    from pathlib import Path

    other = create_dev_pki(Path(str(tmp_path)) / "other", "http://127.0.0.1:9")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _crypto(
        other.issuer.issue_signer_certificate(
            public_key=key.public_key(), name="X", personal_identity_number="197104309831"
        )
    )
    response = httpx.post(
        f"{trust_services.url}/ocsp",
        content=_ocsp_request(cert, _crypto(other.signing_ca)),
        timeout=30,
    )
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_ocsp_malformed_request(trust_services: RunningTrustServices) -> None:
    response = httpx.post(f"{trust_services.url}/ocsp", content=b"garbage", timeout=30)
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_crls_are_signed_by_their_issuers(
    pki: DevPki, trust_services: RunningTrustServices
) -> None:
    for name, issuer in (("signing-ca.crl", pki.signing_ca), ("root.crl", pki.root)):
        response = httpx.get(f"{trust_services.url}/crl/{name}", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pkix-crl"
        crl = cx509.load_der_x509_crl(response.content)
        assert crl.is_signature_valid(_crypto(issuer).public_key())  # type: ignore[arg-type]
        assert len(crl) == 0


def test_tsa_grants_a_timestamp(pki: DevPki, trust_services: RunningTrustServices) -> None:
    import hashlib

    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(b"beslut").digest(),
            },
            "nonce": 12345,
            "cert_req": True,
        }
    )
    response = httpx.post(
        trust_services.tsa_url,
        content=request.dump(),
        headers={"content-type": "application/timestamp-query"},
        timeout=30,
    )
    assert response.headers["content-type"] == "application/timestamp-reply"
    parsed = tsp.TimeStampResp.load(response.content)
    assert parsed["status"]["status"].native == "granted"
    tst_info = parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert tst_info["nonce"].native == 12345
    assert (
        tst_info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"beslut").digest()
    )
    certs = parsed["time_stamp_token"]["content"]["certificates"]
    assert any(c.chosen.dump() == pki.tsa.dump() for c in certs)


def test_tsa_rejects_garbage(trust_services: RunningTrustServices) -> None:
    response = httpx.post(trust_services.tsa_url, content=b"\x30\x03garbage", timeout=30)
    assert response.status_code == 400


def test_unknown_path_and_oversized_body(trust_services: RunningTrustServices) -> None:
    assert httpx.get(f"{trust_services.url}/nope", timeout=30).status_code == 404
    assert httpx.get(trust_services.tsa_url, timeout=30).status_code == 404
    big = httpx.post(trust_services.tsa_url, content=b"x" * (65 * 1024), timeout=30)
    assert big.status_code == 413


def test_handling_times_are_observed(trust_services: RunningTrustServices) -> None:
    before = len(trust_services.handled)
    httpx.get(f"{trust_services.url}/crl/root.crl", timeout=30)
    assert trust_services.handled[before:][0][0] == "crl"


def test_mounted_in_litestar_like_the_portal_does(pki: DevPki) -> None:
    # Demo mode mounts the app under a path; Litestar strips the prefix (and adds a slash).
    from typing import Any

    from litestar import Litestar, asgi
    from litestar.testing import TestClient

    from signing.trust_services import create_trust_services_app

    inner = create_trust_services_app(pki)

    @asgi("/trust", is_mount=True, copy_scope=True)
    async def trust(scope: Any, receive: Any, send: Any) -> None:
        await inner(scope, receive, send)

    with TestClient(Litestar([trust])) as client:
        crl = client.get("/trust/crl/signing-ca.crl")
        assert crl.status_code == 200
        assert cx509.load_der_x509_crl(crl.content).is_signature_valid(
            _crypto(pki.signing_ca).public_key()  # type: ignore[arg-type]
        )
        assert client.post("/trust/ocsp", content=b"x").status_code == 200
        assert client.get("/trust/elsewhere").status_code == 404


async def test_production_shape_without_tsa_and_root_key(pki: DevPki) -> None:
    # The portal as CA in production: OCSP and the CA's CRL only; TSA and root CRL are 404.
    from signing.trust_services import TrustServiceKeys, create_trust_services_app

    app = create_trust_services_app(
        TrustServiceKeys(ca=pki.issuer, ocsp_cert=pki.ocsp, ocsp_key=pki.ocsp_key)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://trust") as client:
        assert (await client.post("/tsa", content=b"x")).status_code == 404
        assert (await client.get("/crl/root.crl")).status_code == 404
        crl = await client.get("/crl/signing-ca.crl")
        assert crl.status_code == 200
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _crypto(
            pki.issuer.issue_signer_certificate(
                public_key=key.public_key(), name="X", personal_identity_number="197104309831"
            )
        )
        answer = await client.post("/ocsp", content=_ocsp_request(cert, _crypto(pki.signing_ca)))
        assert ocsp.load_der_ocsp_response(answer.content).certificate_status == (
            ocsp.OCSPCertStatus.GOOD
        )
