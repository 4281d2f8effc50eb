"""Signatures that are not the portal's: each judged on its own validation data and trust.

A "foreign" signer here has a certificate issued straight from another root that the verifier
trusts (no revocation source: nothing to prove offline), and timestamps come from a third PKI's
TSA that nobody trusts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from asn1crypto import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signing.pades import Level, sign_pdf
from signing.pki import DevPki, build_certificate, create_dev_pki, public_key_info_of
from signing.verify import verify_pdf
from tests.servers.trust_services import RunningTrustServices, free_port, start_trust_services

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return create_dev_pki(tmp_path_factory.mktemp("other") / "pki", "http://127.0.0.1:9")


@pytest.fixture(scope="module")
def untrusted_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTrustServices]:
    third = create_dev_pki(
        tmp_path_factory.mktemp("third") / "pki", f"http://127.0.0.1:{free_port()}"
    )
    services = start_trust_services(third)
    yield services
    services.stop()


async def _sign_as_foreigner(pdf: bytes, other: DevPki, *, level: Level, tsa_url: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = build_certificate(
        subject=x509.Name.build({"country_name": "SE", "common_name": "Främmande Underskrift"}),
        public_key=public_key_info_of(key.public_key()),
        issuer=other.root,
        issuer_key=other.root_key,
        not_before=now - dt.timedelta(minutes=1),
        not_after=now + dt.timedelta(days=30),
        extensions=[
            ("basic_constraints", {"ca": False}, True),
            ("key_usage", x509.KeyUsage({"non_repudiation"}), True),
        ],
    )
    return await sign_pdf(
        pdf,
        signer_cert=cert,
        signer_key=key,
        chain=[other.root],
        timestamp_url=tsa_url,
        trust_roots=[other.root],
        field_name="Medundertecknare",
        level=level,
    )


async def test_a_b_t_signature_after_ours_is_b_t_and_ours_stays_b_lta(
    signed_lta: bytes, pki: DevPki, other_pki: DevPki, untrusted_tsa: RunningTrustServices
) -> None:
    both = await _sign_as_foreigner(
        signed_lta, other_pki, level="B-T", tsa_url=untrusted_tsa.tsa_url
    )
    report = await verify_pdf(both, trust_roots=[pki.root, other_pki.root])
    ours, foreign = report.signatures
    assert (ours.field, ours.pades_level, ours.trusted) == ("Ordforandebeslut", "B-LTA", True)
    # The DSS and the document timestamp are about the chair's certificate, not this one.
    assert (foreign.field, foreign.pades_level) == ("Medundertecknare", "B-T")


async def test_an_untrusted_timestamp_is_not_held_against_a_signature(
    decision_pdf: bytes, other_pki: DevPki, untrusted_tsa: RunningTrustServices
) -> None:
    verdicts = {}
    for level in ("B-B", "B-T"):
        signed = await _sign_as_foreigner(
            decision_pdf, other_pki, level=level, tsa_url=untrusted_tsa.tsa_url
        )
        [sig] = (await verify_pdf(signed, trust_roots=[other_pki.root])).signatures
        assert sig.pades_level == level and sig.intact
        verdicts[level] = sig
    assert verdicts["B-B"].trusted is True, verdicts["B-B"].detail
    assert verdicts["B-T"].trusted is True, verdicts["B-T"].detail
    assert "timestamp not trusted" in (verdicts["B-T"].detail or "")


async def test_without_its_root_a_foreign_signature_is_not_trusted_at_any_level(
    decision_pdf: bytes, pki: DevPki, other_pki: DevPki, untrusted_tsa: RunningTrustServices
) -> None:
    for level in ("B-B", "B-T"):
        signed = await _sign_as_foreigner(
            decision_pdf, other_pki, level=level, tsa_url=untrusted_tsa.tsa_url
        )
        [sig] = (await verify_pdf(signed, trust_roots=[pki.root])).signatures
        assert sig.intact and not sig.trusted, level
