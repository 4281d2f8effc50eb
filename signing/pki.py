"""The portal's signing PKI: the development PKI on disk and the CA that issues chair certificates.

Federated signing: the chair proves who they are at the identity provider for this one signature;
the portal then generates an ephemeral key pair, and `SigningCA` issues a short-lived certificate
binding that key to the chair (CN, givenName/surname, serialNumber ``PNOSE-<personnummer>``,
nonRepudiation). The key is used for one signature and discarded.

Certificates are assembled with asn1crypto and the TBSCertificate DER is signed through
`SignerKey`, so the CA key can sit in a PKCS#11 token (cryptography's CertificateBuilder would need
the private key object).

Validity of a signer certificate: `SIGNER_CERT_LIFETIME` (15 minutes) starting one minute in the
past (clock skew). The private key exists only for the few hundred milliseconds of the signing
step, so a longer lifetime adds nothing; long-term validity comes from the timestamps and the
embedded OCSP response (PAdES-B-LTA), not from the certificate's lifetime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from pathlib import Path

from asn1crypto import core, crl, pem, x509
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from personnummer import personnummer

from signing.errors import CertificateIssueError
from signing.keys import FileSignerKey, SignerKey, x509_signature_algorithm

SIGNER_CERT_LIFETIME = dt.timedelta(minutes=15)
"""How long a chair's signer certificate is valid (see module docstring)."""

CLOCK_SKEW = dt.timedelta(minutes=1)
"""How far in the past a signer certificate's validity starts."""

SIGNER_STATUS_VALIDITY = dt.timedelta(minutes=5)
"""How long an OCSP answer or CRL about a chair's certificate counts as fresh (nextUpdate).

Must end before the certificate does. A long-term validator (ETSI EN 319 102-1 time-sliding, as
pyHanko implements it) re-validates an expired certificate at the last moment its newest status
information was still fresh; if that moment lies after the certificate's notAfter, the signature
can never be validated again (OUT_OF_BOUNDS_NO_POE). The status is fetched within seconds of
issuing the 15-minute certificate, so five minutes leaves ten to spare.
"""

PROFILE_VERSION = "2"
"""Version of the dev PKI certificate profiles; a change re-issues the CA/TSA/OCSP certificates.

2: the TSA certificate names no revocation source (see `_issue_certificates`).
"""

CRL_NAME = "signing-ca.crl"
"""File name of the signing CA's CRL under ``<trust services>/crl/``."""

ROOT_CRL_NAME = "root.crl"
"""File name of the root's CRL (covering the signing CA and the TSA) under ``/crl/``."""

_PNR_RE = re.compile(r"^\d{12}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _random_serial() -> int:
    # RFC 5280: positive, at most 20 octets; 159 random bits.
    return int.from_bytes(os.urandom(20), "big") >> 1


def _x509_time(when: dt.datetime) -> x509.Time:
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    return x509.Time({"utc_time" if when.year < 2050 else "general_time": when})


def _uri(url: str) -> x509.GeneralName:
    return x509.GeneralName(name="uniform_resource_identifier", value=url)


def sign_tbs_certificate(tbs: x509.TbsCertificate, issuer_key: SignerKey) -> x509.Certificate:
    """Sign a TBSCertificate (whose `signature` field must match `issuer_key`)."""
    algorithm = tbs["signature"]
    signature = issuer_key.sign(tbs.dump(), algorithm.hash_algo)
    built = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    # Re-load from DER: a parsed certificate keeps its encoding, one built from values is
    # re-encoded on every dump() (pyHanko dumps the signer certificate thousands of times).
    return x509.Certificate.load(built.dump())


def _signature_algorithm(key: SignerKey) -> x509.SignedDigestAlgorithm:
    name = x509_signature_algorithm(key)
    params = core.Null() if key.algorithm == "rsa" else core.Void()
    return x509.SignedDigestAlgorithm({"algorithm": name, "parameters": params})


def build_certificate(
    *,
    subject: x509.Name,
    public_key: asn1_keys.PublicKeyInfo,
    issuer: x509.Certificate | None,
    issuer_key: SignerKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    extensions: list[tuple[str, object, bool]],
) -> x509.Certificate:
    """Build and sign a certificate; `issuer=None` means self-signed.

    `extensions` are (asn1crypto extension id, value, critical); subject and authority key
    identifiers are added here.
    """
    issuer_name = subject if issuer is None else issuer.subject
    ski = public_key.sha1
    aki = ski if issuer is None else issuer.key_identifier
    all_extensions = [
        ("key_identifier", core.OctetString(ski), False),
        ("authority_key_identifier", {"key_identifier": aki}, False),
        *extensions,
    ]
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": _random_serial(),
            "signature": _signature_algorithm(issuer_key),
            "issuer": issuer_name,
            "validity": {
                "not_before": _x509_time(not_before),
                "not_after": _x509_time(not_after),
            },
            "subject": subject,
            "subject_public_key_info": public_key,
            "extensions": [
                {"extn_id": extn_id, "critical": critical, "extn_value": value}
                for extn_id, value, critical in all_extensions
            ],
        }
    )
    return sign_tbs_certificate(tbs, issuer_key)


def public_key_info_of(
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
) -> asn1_keys.PublicKeyInfo:
    """Convert a cryptography public key to asn1crypto's SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return asn1_keys.PublicKeyInfo.load(der)


def build_crl(
    issuer: x509.Certificate,
    key: SignerKey,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = dt.timedelta(days=1),
) -> crl.CertificateList:
    """An empty CRL for `issuer`, signed with `key`, valid for `validity`."""
    this_update = now or _now()
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": _signature_algorithm(key),
            "issuer": issuer.subject,
            "this_update": _x509_time(this_update),
            "next_update": _x509_time(this_update + validity),
            "crl_extensions": [
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": issuer.key_identifier},
                },
                {
                    "extn_id": "crl_number",
                    "critical": False,
                    "extn_value": int(this_update.timestamp()),
                },
            ],
        }
    )
    algorithm = tbs["signature"]
    signature = key.sign(tbs.dump(), algorithm.hash_algo)
    return crl.CertificateList(
        {"tbs_cert_list": tbs, "signature_algorithm": algorithm, "signature": signature}
    )


@dataclasses.dataclass(frozen=True)
class SigningCA:
    """The CA that issues chairs' short-lived signer certificates."""

    certificate: x509.Certificate
    """The signing CA's certificate ("Jourpost signing CA")."""
    key: SignerKey
    """The CA's private key (file in dev, PKCS#11 in production)."""
    trust_services_url: str
    """Base URL of the trust services (OCSP at /ocsp, CRL at /crl/signing-ca.crl), no slash."""

    def issue_signer_certificate(
        self,
        *,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        name: str,
        personal_identity_number: str,
        given_name: str | None = None,
        surname: str | None = None,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a short-lived nonRepudiation certificate for the chair's ephemeral key."""
        if not name.strip():
            raise CertificateIssueError("the signer's name is empty")
        if not _PNR_RE.match(personal_identity_number) or not personnummer.valid(
            personal_identity_number
        ):
            raise CertificateIssueError("not a valid 12-digit personnummer")
        subject_fields: dict[str, str] = {
            "country_name": "SE",
            "serial_number": f"PNOSE-{personal_identity_number}",
            "common_name": name,
        }
        if given_name:
            subject_fields["given_name"] = given_name
        if surname:
            subject_fields["surname"] = surname
        start = now or _now()
        base = self.trust_services_url.rstrip("/")
        return build_certificate(
            subject=x509.Name.build(subject_fields, use_printable=False),
            public_key=public_key_info_of(public_key),
            issuer=self.certificate,
            issuer_key=self.key,
            not_before=start - CLOCK_SKEW,
            not_after=start + SIGNER_CERT_LIFETIME,
            extensions=[
                ("basic_constraints", {"ca": False}, True),
                ("key_usage", x509.KeyUsage({"non_repudiation"}), True),
                (
                    "authority_information_access",
                    [{"access_method": "ocsp", "access_location": _uri(f"{base}/ocsp")}],
                    False,
                ),
                (
                    "crl_distribution_points",
                    [{"distribution_point": {"full_name": [_uri(f"{base}/crl/{CRL_NAME}")]}}],
                    False,
                ),
            ],
        )

    def build_crl(self, *, now: dt.datetime | None = None) -> crl.CertificateList:
        """An empty CRL (nothing is revoked: certificates live 15 minutes, keys are discarded).

        Fresh for `SIGNER_STATUS_VALIDITY`, like the OCSP answers, for the same reason.
        """
        return build_crl(self.certificate, self.key, now=now, validity=SIGNER_STATUS_VALIDITY)


@dataclasses.dataclass(frozen=True)
class DevPki:
    """A development PKI kept in a directory (keys as PEM files, generated at run time)."""

    directory: Path
    """Where the PEM files live."""
    trust_services_url: str
    """Base URL of the trust services the certificates point at (CRL of the root)."""
    root: x509.Certificate
    """Self-signed root ("Jourpost Dev Root CA"); what verifiers trust."""
    root_key: FileSignerKey
    """The root's key (signs the root CRL; a real root would be offline)."""
    signing_ca: x509.Certificate
    """Issuing CA for chairs' certificates ("Jourpost signing CA"), issued by the root."""
    signing_ca_key: FileSignerKey
    """The signing CA's key (in production this is a Pkcs11SignerKey instead)."""
    tsa: x509.Certificate
    """Timestamping certificate (EKU timeStamping, critical), issued by the root."""
    tsa_key: rsa.RSAPrivateKey
    """The TSA's key (RSA: pyHanko's in-process TSA is RSA-only)."""
    ocsp: x509.Certificate
    """Delegated OCSP responder certificate (EKU OCSPSigning, ocsp-nocheck), issued by the CA."""
    ocsp_key: ec.EllipticCurvePrivateKey
    """The OCSP responder's key."""

    @property
    def root_path(self) -> Path:
        """Path of the root certificate PEM (for `jourpost verify --trust`, pdfsig, NSS)."""
        return self.directory / "root.pem"

    @property
    def issuer(self) -> SigningCA:
        """The SigningCA with this PKI's file key, pointing at this PKI's trust services."""
        return SigningCA(self.signing_ca, self.signing_ca_key, self.trust_services_url)


_STEMS = ("root", "signing-ca", "tsa", "ocsp")
_URL_FILE = "trust-services-url.txt"
_PROFILE_FILE = "certificate-profile.txt"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(pem.armor("CERTIFICATE", cert.dump()))


def load_certificate(path: Path) -> x509.Certificate:
    """Load a PEM or DER certificate file."""
    data = path.read_bytes()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name.build(
        {"country_name": "SE", "organization_name": "Jourpost", "common_name": common_name},
        use_printable=False,
    )


def _generate_keys_and_root(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(directory / "root.key.pem", root_key)
    _write_key(directory / "signing-ca.key.pem", ec.generate_private_key(ec.SECP256R1()))
    _write_key(
        directory / "tsa.key.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    _write_key(directory / "ocsp.key.pem", ec.generate_private_key(ec.SECP256R1()))
    now = _now() - CLOCK_SKEW
    signer = FileSignerKey(root_key)
    root = build_certificate(
        subject=_name("Jourpost Dev Root CA"),
        public_key=signer.public_key_info,
        issuer=None,
        issuer_key=signer,
        not_before=now,
        not_after=now + 20 * _YEAR,
        extensions=[
            ("basic_constraints", {"ca": True}, True),
            ("key_usage", x509.KeyUsage({"key_cert_sign", "crl_sign"}), True),
        ],
    )
    _write_cert(directory / "root.pem", root)


_YEAR = dt.timedelta(days=365)


def _issue_certificates(directory: Path, url: str) -> None:
    """(Re)issue the CA, TSA and OCSP certificates for the keys on disk, pointing at `url`.

    The signing CA names the root's CRL at `url`: the past-time validation of PAdES-LTA checks
    it with the CRL embedded at signing time, under the proof of existence of the document
    timestamp.

    The TSA certificate names no revocation source. The newest document timestamp of an
    archived PDF is always validated at the *current* time, offline, decades on; a CRL embedded
    years ago can't show that the TSA certificate is unrevoked today, so a TSA certificate with
    a CRL pointer makes every archived signature INDETERMINATE a day after the CRL's
    nextUpdate. A TSA certificate is instead trusted as a trust-service identity (as in the EU
    trusted lists); the archive renews document timestamps before it expires (docs/signing.md).
    """
    now = _now() - CLOCK_SKEW
    root = load_certificate(directory / "root.pem")
    root_key = FileSignerKey.from_pem_file(directory / "root.key.pem")
    ca_key = FileSignerKey.from_pem_file(directory / "signing-ca.key.pem")
    tsa_key = FileSignerKey.from_pem_file(directory / "tsa.key.pem")
    ocsp_key = FileSignerKey.from_pem_file(directory / "ocsp.key.pem")
    root_crl = (
        "crl_distribution_points",
        [{"distribution_point": {"full_name": [_uri(f"{url}/crl/{ROOT_CRL_NAME}")]}}],
        False,
    )
    ca = build_certificate(
        subject=_name("Jourpost signing CA"),
        public_key=ca_key.public_key_info,
        issuer=root,
        issuer_key=root_key,
        not_before=now,
        not_after=now + 10 * _YEAR,
        extensions=[
            ("basic_constraints", {"ca": True, "path_len_constraint": 0}, True),
            ("key_usage", x509.KeyUsage({"key_cert_sign", "crl_sign"}), True),
            root_crl,
        ],
    )
    tsa = build_certificate(
        subject=_name("Jourpost TSA"),
        public_key=tsa_key.public_key_info,
        issuer=root,
        issuer_key=root_key,
        not_before=now,
        not_after=now + 10 * _YEAR,
        extensions=[
            ("key_usage", x509.KeyUsage({"digital_signature"}), True),
            ("extended_key_usage", ["time_stamping"], True),
        ],
    )
    ocsp = build_certificate(
        subject=_name("Jourpost OCSP responder"),
        public_key=ocsp_key.public_key_info,
        issuer=ca,
        issuer_key=ca_key,
        not_before=now,
        not_after=now + 10 * _YEAR,
        extensions=[
            ("key_usage", x509.KeyUsage({"digital_signature"}), True),
            ("extended_key_usage", ["ocsp_signing"], False),
            ("ocsp_no_check", core.Null(), False),
        ],
    )
    _write_cert(directory / "signing-ca.pem", ca)
    _write_cert(directory / "tsa.pem", tsa)
    _write_cert(directory / "ocsp.pem", ocsp)
    (directory / _URL_FILE).write_text(url + "\n", encoding="utf-8")
    (directory / _PROFILE_FILE).write_text(PROFILE_VERSION + "\n", encoding="utf-8")


def create_dev_pki(directory: Path, trust_services_url: str) -> DevPki:
    """Load the development PKI from `directory`, generating what is missing.

    Idempotent: a second call (or a restart of `jourpost demo`) loads the same keys and
    certificates. Keys are generated once; if `trust_services_url` changed since last time,
    the CA/TSA/OCSP certificates are re-issued for the same keys (signatures made earlier
    still chain to the same root). A directory with keys missing is regenerated as a whole.
    """
    directory = Path(directory)
    url = trust_services_url.rstrip("/")
    keys = [directory / f"{stem}.key.pem" for stem in _STEMS]
    if not all(path.exists() for path in [*keys, directory / "root.pem"]):
        _generate_keys_and_root(directory)
    url_file = directory / _URL_FILE
    certs = [directory / f"{stem}.pem" for stem in _STEMS]
    stored_url = url_file.read_text(encoding="utf-8").strip() if url_file.exists() else None
    profile_file = directory / _PROFILE_FILE
    stored_profile = (
        profile_file.read_text(encoding="utf-8").strip() if profile_file.exists() else None
    )
    if (
        stored_url != url
        or stored_profile != PROFILE_VERSION
        or not all(path.exists() for path in certs)
    ):
        _issue_certificates(directory, url)
    tsa_key = FileSignerKey.from_pem_file(directory / "tsa.key.pem").private_key
    ocsp_key = FileSignerKey.from_pem_file(directory / "ocsp.key.pem").private_key
    if not isinstance(tsa_key, rsa.RSAPrivateKey) or not isinstance(
        ocsp_key, ec.EllipticCurvePrivateKey
    ):
        raise CertificateIssueError(f"unexpected key types in {directory}")
    return DevPki(
        directory=directory,
        trust_services_url=url,
        root=load_certificate(directory / "root.pem"),
        root_key=FileSignerKey.from_pem_file(directory / "root.key.pem"),
        signing_ca=load_certificate(directory / "signing-ca.pem"),
        signing_ca_key=FileSignerKey.from_pem_file(directory / "signing-ca.key.pem"),
        tsa=load_certificate(directory / "tsa.pem"),
        tsa_key=tsa_key,
        ocsp=load_certificate(directory / "ocsp.pem"),
        ocsp_key=ocsp_key,
    )
