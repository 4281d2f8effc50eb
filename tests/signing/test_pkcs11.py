"""The CA key in a PKCS#11 token (SoftHSM2): issue a signer certificate and sign a decision.

SoftHSM2 is the real PKCS#11 module a production HSM would replace; the token lives in a temp
directory named by SOFTHSM2_CONF (read by the module when it is first loaded in this process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec

from signing.errors import SignerKeyError
from signing.keys import Pkcs11SignerKey, SignerKey
from signing.pades import sign_pdf
from signing.pki import DevPki, SigningCA, build_certificate
from signing.verify import verify_pdf
from tests.servers.trust_services import RunningTrustServices

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "jourpost-test"
PIN = "1234"

pytestmark = pytest.mark.skipif(
    not (Path(MODULE).exists() and shutil.which("softhsm2-util")),
    reason="softhsm2 is not installed (infra/install-system-deps.sh installs it)",
)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory, pki: DevPki) -> Iterator[str]:
    """A fresh SoftHSM2 token with an EC P-256 and an RSA-2048 key pair generated inside it,
    plus the dev signing CA's key imported under the label "ca-dev"."""
    import pkcs11
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "87654321",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [
            "softhsm2-util",
            "--import",
            str(pki.directory / "signing-ca.key.pem"),
            "--token",
            TOKEN,
            "--label",
            "ca-dev",
            "--id",
            "0d",
            "--pin",
            PIN,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    lib = pkcs11.lib(MODULE)
    lib.reinitialize()  # pick up the token created after the module may have been loaded
    with lib.get_token(token_label=TOKEN).open(rw=True, user_pin=PIN) as session:
        params = session.create_domain_parameters(
            KeyType.EC,
            {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        params.generate_keypair(store=True, label="ca-ec")
        session.generate_keypair(KeyType.RSA, 2048, store=True, label="ca-rsa")
    yield TOKEN
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def _hsm_ca(pki: DevPki, key: SignerKey) -> SigningCA:
    """A signing CA whose key is in the token, certified by the dev root."""
    import datetime as dt

    from signing.pki import _name  # the dev PKI's naming, reused for the HSM CA

    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    cert = build_certificate(
        subject=_name(f"Jourpost signing CA (HSM, {key.algorithm})"),
        public_key=key.public_key_info,
        issuer=pki.root,
        issuer_key=pki.root_key,
        not_before=now,
        not_after=now + dt.timedelta(days=365),
        extensions=[
            ("basic_constraints", {"ca": True, "path_len_constraint": 0}, True),
            ("key_usage", {"key_cert_sign", "crl_sign"}, True),
            pki_crl_dp(pki),
        ],
    )
    return SigningCA(cert, key, pki.trust_services_url)


def pki_crl_dp(pki: DevPki) -> tuple[str, object, bool]:
    ext = pki.signing_ca["tbs_certificate"]["extensions"]
    [dp] = [e for e in ext if e["extn_id"].native == "crl_distribution_points"]
    return "crl_distribution_points", dp["extn_value"].parsed, False


@pytest.mark.parametrize("label", ["ca-ec", "ca-rsa"])
def test_pkcs11_key_issues_a_verifiable_signer_certificate(
    token: str, pki: DevPki, label: str
) -> None:
    key = Pkcs11SignerKey(module_path=MODULE, token_label=token, pin=PIN, key_label=label)
    try:
        assert key.algorithm == ("ec" if label == "ca-ec" else "rsa")
        ca = _hsm_ca(pki, key)
        chair_key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_signer_certificate(
            public_key=chair_key.public_key(),
            name="Gustav Gavelin",
            personal_identity_number="199002279850",
        )
        crypto_cert = cx509.load_der_x509_certificate(cert.dump())
        crypto_ca = cx509.load_der_x509_certificate(ca.certificate.dump())
        crypto_ca.verify_directly_issued_by(cx509.load_der_x509_certificate(pki.root.dump()))
        crypto_cert.verify_directly_issued_by(crypto_ca)  # signed inside the token
    finally:
        key.close()


async def test_dev_ca_key_in_token_signs_a_valid_b_lta_decision(
    token: str, pki: DevPki, trust_services: RunningTrustServices, decision_pdf: bytes
) -> None:
    # The token fixture imported the dev signing CA's key (as an operator would move a CA key
    # into an HSM): the chain and OCSP are the dev PKI's, so the full B-LTA path is exercised
    # with the CA signature made inside the token.
    key = Pkcs11SignerKey(module_path=MODULE, token_label=token, pin=PIN, key_label="ca-dev")
    try:
        assert key.public_key_info.dump() == pki.signing_ca.public_key.dump()
        ca = SigningCA(pki.signing_ca, key, pki.trust_services_url)
        chair_key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_signer_certificate(
            public_key=chair_key.public_key(),
            name="Gustav Gavelin",
            personal_identity_number="199002279850",
        )
        signed = await sign_pdf(
            decision_pdf,
            signer_cert=cert,
            signer_key=chair_key,
            chain=[pki.signing_ca],
            timestamp_url=trust_services.tsa_url,
            trust_roots=[pki.root],
            http_timeout=20,
        )
    finally:
        key.close()
    report = await verify_pdf(signed, trust_roots=[pki.root])
    assert report.valid is True, report.signatures
    [signature] = report.signatures
    assert signature.personal_identity_number == "199002279850"
    assert signature.pades_level == "B-LTA"


def test_wrong_pin_is_a_signer_key_error(token: str) -> None:
    key = Pkcs11SignerKey(module_path=MODULE, token_label=token, pin="0000", key_label="ca-ec")
    with pytest.raises(SignerKeyError):
        key.sign(b"data")


def test_missing_key_label_is_a_signer_key_error(token: str) -> None:
    key = Pkcs11SignerKey(module_path=MODULE, token_label=token, pin=PIN, key_label="nope")
    with pytest.raises(SignerKeyError):
        _ = key.public_key_info
