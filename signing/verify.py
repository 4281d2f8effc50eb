"""Verification of signed PDFs, reported in the `jourpost verify --json` contract (DESIGN §7).

What is checked, per signature (with pyHanko's PAdES/AdES-LTA validation, ETSI EN 319 102-1):
- ``intact``: the digest over the signed byte ranges matches and the CMS signature verifies;
- ``trusted``: the AdES-LTA validation passed: the certificate chains to one of `trust_roots`, the
  revocation status is proven by embedded data (DSS) at a time proven by the timestamps, and the
  timestamp tokens themselves validate. Offline by default (archive documents must verify
  without the portal); a B-B or B-T signature from a short-lived certificate is therefore
  *not* trusted once the certificate has expired: that is what B-LT/B-LTA are for;
- ``pades_level``: the structure present: B-T = signature timestamp, B-LT = plus revocation
  data in a DSS, B-LTA = plus a document timestamp after the signature;
- ``signed_at``: the time in the signature timestamp token (B-T and up), otherwise the time
  the signer claims (signingTime / /M); ISO 8601 with offset.

Document level:
- ``modified_after_signing``: any incremental update after a signature other than validation
  data and document timestamps (pyHanko's difference analysis: level above LTA_UPDATES), a
  DocMDP violation, or bytes after the end of the last signed revision;
- ``valid``: there is at least one signature, every signature is intact and trusted, and
  nothing was modified after signing.

Document timestamps are not listed as signatures: nobody "signed" with them; they are evidence
for the signatures' B-LTA level and are validated as part of the AdES-LTA process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import re
from collections.abc import Sequence
from typing import Any, Literal

from asn1crypto import cms, crl, ocsp, tsp, x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import ades, async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    FreshnessReqType,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from signing.errors import UnreadablePdf
from signing.pki import SIGNER_STATUS_VALIDITY

Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]

REVOCATION_FRESHNESS = SIGNER_STATUS_VALIDITY
"""Maximum accepted revocation freshness (ETSI EN 319 102-1 §5.2.5.4): status information
counts as fresh for this long after it was issued, whatever its nextUpdate says.

Why: the time-sliding of long-term validation re-validates an expired certificate at the last
moment its newest status information was fresh; with a 15-minute chair certificate that moment
must fall inside the certificate's life. Answers from our responder are fresh for five minutes
anyway; decisions signed before 2026-12-04 carry OCSP answers that claimed an hour (past the
certificate's end), and validate with this rule.
"""

_PNOSE = re.compile(r"^PNOSE-(\d{12})$")
_ALLOWED_AFTER_SIGNING = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)


@dataclasses.dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature."""

    field: str
    """Name of the signature field."""
    signer_name: str
    """Common name of the signer's certificate."""
    personal_identity_number: str | None
    """12-digit personnummer from the subject serialNumber ``PNOSE-…``, if present."""
    signed_at: dt.datetime
    """Timestamp-token time (B-T and up), else the signer-claimed time."""
    pades_level: Level
    """PAdES baseline level present in the file."""
    intact: bool
    """Signed bytes unchanged and the cryptographic signature verifies."""
    trusted: bool
    """AdES-LTA validation passed against the trust roots (see module docstring)."""
    detail: str | None = None
    """Why validation did not pass (for logs and humans; not part of the JSON contract)."""

    def to_json(self) -> dict[str, Any]:
        """The §7 JSON object for this signature."""
        return {
            "field": self.field,
            "signer_name": self.signer_name,
            "personal_identity_number": self.personal_identity_number,
            "signed_at": self.signed_at.isoformat(),
            "pades_level": self.pades_level,
            "intact": self.intact,
            "trusted": self.trusted,
        }


@dataclasses.dataclass(frozen=True)
class VerificationReport:
    """The verdict on a whole PDF."""

    modified_after_signing: bool
    """Something other than validation data/timestamps was added after a signature."""
    signatures: tuple[SignatureReport, ...]
    """One entry per signature (document timestamps excluded), in file order."""

    @property
    def valid(self) -> bool:
        """At least one signature, all intact and trusted, nothing modified after signing."""
        return (
            bool(self.signatures)
            and not self.modified_after_signing
            and all(s.intact and s.trusted for s in self.signatures)
        )

    def to_json(self) -> dict[str, Any]:
        """Exactly the `jourpost verify --json` contract (DESIGN §7)."""
        return {
            "valid": self.valid,
            "modified_after_signing": self.modified_after_signing,
            "signatures": [s.to_json() for s in self.signatures],
        }


def validation_spec(
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate] = (),
    *,
    allow_fetching: bool = False,
) -> PdfSignatureValidationSpec:
    """The pyHanko validation settings `verify_pdf` uses (exposed for tests and tools)."""
    # Revocation data is required for every certificate that names a source for it (ours all
    # do for chair certificates); CAs and TSAs without CRL/OCSP pointers are checked by chain.
    revocation = CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
            intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
        ),
        freshness=REVOCATION_FRESHNESS,
        freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
    )
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(
            trust_roots=[CertTrustAnchor(root) for root in trust_roots]
        ),
        revinfo_policy=revocation,
    )
    fetching = (
        RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
        if allow_fetching
        else RevinfoOnlineFetchingRule.LOCAL_ONLY
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=fetching),
            local_knowledge=LocalKnowledge(known_certs=list(other_certs)),
        )
    )


def _subject_value(cert: x509.Certificate, key: str) -> str | None:
    value = cert.subject.native.get(key)
    if isinstance(value, list):  # multi-valued attribute: take the first
        value = value[0] if value else None
    return str(value) if value is not None else None


def _signature_timestamp_time(sig: EmbeddedPdfSignature) -> dt.datetime | None:
    unsigned = sig.signer_info["unsigned_attrs"]
    if not isinstance(unsigned, cms.CMSAttributes):
        return None
    for attr in unsigned:
        if attr["type"].native == "signature_time_stamp_token":
            token = attr["values"][0]
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            if isinstance(tst_info, tsp.TSTInfo):
                gen_time: dt.datetime = tst_info["gen_time"].native
                return gen_time
    return None


def _dss_at(reader: PdfFileReader, revision: int | None) -> Any:
    """The DSS dictionary as of `revision` (None: the latest), or None."""
    root = reader.root if revision is None else reader.get_historical_root(revision)
    return root["/DSS"].get_object() if "/DSS" in root else None


def _covers(dss: Any, cert: x509.Certificate) -> bool:
    """True if `dss` holds revocation data about `cert` (an OCSP answer for its serial and
    issuer, or a CRL from its issuer) — or, for a certificate that names no revocation source,
    the certificate itself."""
    if dss is None:
        return False
    for ref in dss.get("/OCSPs", ()):
        try:
            basic = ocsp.OCSPResponse.load(ref.get_object().data).basic_ocsp_response
        except (ValueError, TypeError, KeyError):
            continue
        for single in basic["tbs_response_data"]["responses"]:
            cert_id = single["cert_id"]
            digest = hashlib.new(cert_id["hash_algorithm"]["algorithm"].native)
            digest.update(cert.issuer.dump())
            if (
                cert_id["serial_number"].native == cert.serial_number
                and cert_id["issuer_name_hash"].native == digest.digest()
            ):
                return True
    for ref in dss.get("/CRLs", ()):
        try:
            revocation_list = crl.CertificateList.load(ref.get_object().data)
            issuer, key_id = revocation_list.issuer, revocation_list.authority_key_identifier
        except (ValueError, TypeError, KeyError):
            continue
        # Names alone can collide (two CAs called the same); the key identifier can't.
        if issuer == cert.issuer and key_id == cert.authority_key_identifier:
            return True
    if cert.crl_distribution_points or cert.ocsp_urls:
        return False
    return any(ref.get_object().data == cert.dump() for ref in dss.get("/Certs", ()))


def _pades_level(
    reader: PdfFileReader,
    sig: EmbeddedPdfSignature,
    timestamps: Sequence[EmbeddedPdfSignature],
    has_ts: bool,
) -> Level:
    """The baseline level of this signature, from its own validation data.

    B-T: a signature timestamp. B-LT: plus revocation data about *this* signer's certificate in
    the DSS (another signature's data does not count). B-LTA: plus a document timestamp over a
    revision whose DSS already held that data.
    """
    if not has_ts:
        return "B-B"
    cert = sig.signer_cert
    if not _covers(_dss_at(reader, None), cert):
        return "B-T"
    for ts in timestamps:
        if ts.signed_revision > sig.signed_revision and _covers(
            _dss_at(reader, ts.signed_revision), cert
        ):
            return "B-LTA"
    return "B-LT"


def _junk_after_last_revision(pdf: bytes) -> bool:
    """True if bytes other than whitespace follow the last %%EOF.

    A complete incremental update after signing ends in its own %%EOF and is judged by the
    difference analysis; anything else appended (not a revision at all) is caught here.
    """
    return not pdf.rstrip().endswith(b"%%EOF")


def _current_time_context(
    reader: PdfFileReader,
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate],
    allow_fetching: bool,
) -> ValidationContext:
    kwargs: dict[str, Any] = {
        "trust_roots": list(trust_roots),
        "other_certs": list(other_certs),
        "allow_fetching": allow_fetching,
        "revocation_mode": "hard-fail",
        "ocsps": [],
        "crls": [],
    }
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return ValidationContext(**kwargs)
    context: ValidationContext = dss.as_validation_context(kwargs)
    return context


async def _validate(sig: EmbeddedPdfSignature, inputs: _Inputs) -> tuple[Any, bool, str | None]:
    """(pyHanko status or None, trusted, detail) for one signature."""
    archived = any(ts.signed_revision > sig.signed_revision for ts in inputs.timestamps)
    try:
        if archived:
            # B-LTA: ETSI long-term validation, proofs of existence from document timestamps.
            result = await ades.ades_lta_validation(sig, inputs.spec)
            passed = result.ades_subindic == AdESPassed.OK
            detail = None if passed else f"{result.ades_subindic}: {result.failure_msg}"
            return result.api_status, passed, detail
        # B-B/B-T/B-LT: validation at the current time with the DSS's revocation data.
        # (Validation contexts keep state: one for the signer, one for the timestamp.)
        status = await async_validate_pdf_signature(
            sig,
            signer_validation_context=inputs.context(),
            ts_validation_context=inputs.context(),
        )
    except Exception as exc:  # malformed CMS and the like: unusable, say why
        return None, False, f"{type(exc).__name__}: {exc}"
    # A signature timestamp from a TSA we don't trust proves nothing, so it is ignored: the
    # signature is judged as if it had none (at the current time), never held against it.
    trusted = bool(status.trusted)
    ts = status.timestamp_validity
    notes = [] if trusted else [status.summary()]
    if ts is not None and not ts.trusted:
        notes.append(f"signature timestamp not trusted, ignored: {ts.summary()}")
    return status, trusted, "; ".join(notes) or None


@dataclasses.dataclass(frozen=True)
class _Inputs:
    reader: PdfFileReader
    timestamps: Sequence[EmbeddedPdfSignature]
    """The document timestamps, filtered once from the embedded signatures."""
    spec: PdfSignatureValidationSpec
    trust_roots: Sequence[x509.Certificate]
    other_certs: Sequence[x509.Certificate]
    allow_fetching: bool

    def context(self) -> ValidationContext:
        return _current_time_context(
            self.reader, self.trust_roots, self.other_certs, self.allow_fetching
        )


async def _report_one(sig: EmbeddedPdfSignature, inputs: _Inputs) -> tuple[SignatureReport, bool]:
    """Validate one signature; returns the report and whether it saw illegal modifications."""
    cert = sig.signer_cert
    pnr_match = _PNOSE.match(_subject_value(cert, "serial_number") or "")
    ts_time = _signature_timestamp_time(sig)
    claimed = sig.self_reported_timestamp
    signed_at = ts_time or claimed or dt.datetime.fromtimestamp(0, dt.UTC)
    status, trusted, detail = await _validate(sig, inputs)
    intact = bool(status is not None and status.intact and status.valid)
    modified = status is None or not (
        status.docmdp_ok is not False and status.modification_level in _ALLOWED_AFTER_SIGNING
    )
    report = SignatureReport(
        field=str(sig.field_name),
        signer_name=_subject_value(cert, "common_name") or cert.subject.human_friendly,
        personal_identity_number=pnr_match.group(1) if pnr_match else None,
        signed_at=signed_at,
        pades_level=_pades_level(inputs.reader, sig, inputs.timestamps, ts_time is not None),
        intact=intact,
        trusted=trusted and intact,
        detail=detail,
    )
    return report, modified


async def verify_pdf(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate] = (),
    allow_fetching: bool = False,
) -> VerificationReport:
    """Verify every signature in `pdf` (offline unless `allow_fetching`)."""
    try:
        # strict parsing: a verifier should not repair what it is asked to judge
        reader = PdfFileReader(io.BytesIO(pdf))
        embedded = reader.embedded_signatures
    except (PdfError, ValueError, KeyError) as exc:
        raise UnreadablePdf(f"not a readable PDF: {exc}") from exc
    signatures = [s for s in embedded if s.sig_object_type == "/Sig"]
    timestamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
    inputs = _Inputs(
        reader=reader,
        timestamps=timestamps,
        spec=validation_spec(trust_roots, other_certs, allow_fetching=allow_fetching),
        trust_roots=trust_roots,
        other_certs=other_certs,
        allow_fetching=allow_fetching,
    )
    reports: list[SignatureReport] = []
    modified = bool(signatures) and _junk_after_last_revision(pdf)
    for sig in signatures:
        report, sig_modified = await _report_one(sig, inputs)
        reports.append(report)
        modified = modified or sig_modified
    return VerificationReport(modified_after_signing=modified, signatures=tuple(reports))
