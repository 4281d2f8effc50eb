"""The dev PKI and signer-certificate issuance."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import CertificateIssueError
from signing.pki import SIGNER_CERT_LIFETIME, DevPki, create_dev_pki


def _crypto(cert: object) -> cx509.Certificate:
    return cx509.load_der_x509_certificate(cert.dump())  # type: ignore[attr-defined]


def test_create_dev_pki_is_idempotent(tmp_path: Path) -> None:
    first = create_dev_pki(tmp_path / "pki", "http://127.0.0.1:1000")
    again = create_dev_pki(tmp_path / "pki", "http://127.0.0.1:1000")
    assert again.root.dump() == first.root.dump()
    assert again.signing_ca.dump() == first.signing_ca.dump()
    assert (tmp_path / "pki" / "signing-ca.key.pem").stat().st_mode & 0o077 == 0


def test_new_trust_services_url_reissues_certificates_for_the_same_keys(tmp_path: Path) -> None:
    first = create_dev_pki(tmp_path / "pki", "http://127.0.0.1:1000")
    moved = create_dev_pki(tmp_path / "pki", "http://127.0.0.1:2000")
    assert moved.root.dump() == first.root.dump()
    assert moved.signing_ca.dump() != first.signing_ca.dump()
    assert moved.signing_ca.public_key.dump() == first.signing_ca.public_key.dump()
    assert (
        "http://127.0.0.1:2000/crl/root.crl"
        in moved.signing_ca.crl_distribution_points[0]["distribution_point"].native[0]
    )


def test_dev_pki_certificate_roles(pki: DevPki) -> None:
    root, ca, tsa, ocsp = (_crypto(c) for c in (pki.root, pki.signing_ca, pki.tsa, pki.ocsp))
    ca.verify_directly_issued_by(root)
    tsa.verify_directly_issued_by(root)
    ocsp.verify_directly_issued_by(ca)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Jourpost signing CA"
    tsa_eku = tsa.extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    assert tsa_eku.critical and list(tsa_eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ocsp_eku = ocsp.extensions.get_extension_for_class(cx509.ExtendedKeyUsage).value
    assert list(ocsp_eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    ocsp.extensions.get_extension_for_class(cx509.OCSPNoCheck)


def test_signer_certificate(pki: DevPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = _crypto(
        pki.issuer.issue_signer_certificate(
            public_key=key.public_key(),
            name="Eva Ersson",
            personal_identity_number="195806119862",
            given_name="Eva",
            surname="Ersson",
            now=now,
        )
    )
    cert.verify_directly_issued_by(_crypto(pki.signing_ca))
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[NameOID.COMMON_NAME] == "Eva Ersson"
    assert subject[NameOID.SERIAL_NUMBER] == "PNOSE-195806119862"
    assert subject[NameOID.GIVEN_NAME] == "Eva"
    assert subject[NameOID.SURNAME] == "Ersson"
    assert subject[NameOID.COUNTRY_NAME] == "SE"
    usage = cert.extensions.get_extension_for_class(cx509.KeyUsage)
    assert usage.critical and usage.value.content_commitment and not usage.value.digital_signature
    assert cert.not_valid_after_utc == now + SIGNER_CERT_LIFETIME
    assert cert.not_valid_before_utc <= now
    aia = cert.extensions.get_extension_for_class(cx509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"{pki.trust_services_url}/ocsp"]
    crl_dp = cert.extensions.get_extension_for_class(cx509.CRLDistributionPoints).value
    assert crl_dp[0].full_name[0].value == f"{pki.trust_services_url}/crl/signing-ca.crl"
    assert cert.public_key() == key.public_key()


@pytest.mark.parametrize("pnr", ["197104309832", "19710430983", "7104309831", "abcdefghijkl"])
def test_bad_personnummer_is_refused(pki: DevPki, pnr: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateIssueError):
        pki.issuer.issue_signer_certificate(
            public_key=key.public_key(), name="X", personal_identity_number=pnr
        )


def test_empty_name_is_refused(pki: DevPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateIssueError):
        pki.issuer.issue_signer_certificate(
            public_key=key.public_key(), name=" ", personal_identity_number="197104309831"
        )
