"""pyHanko's own AdES-LTA validation of a PDF, as a separate tool: imports nothing of Jourpost.

    python tests/signing/foreign_pyhanko.py FILE.pdf ROOT.pem [--freshness SECONDS]

Validates every /Sig signature offline (embedded data only) with pyHanko's ETSI EN 319 102-1
long-term validation and prints one JSON object per signature: {"field", "subindication",
"failure"}. Revocation is checked where a certificate declares a source (pyHanko's "hard-fail"
mode). Without --freshness, revocation data is fresh between its thisUpdate and nextUpdate
(pyHanko's default); with it, for SECONDS after thisUpdate (ETSI "maximum accepted revocation
freshness"). Run it under libfaketime to validate at another time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import logging
from pathlib import Path

from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import ades
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    FreshnessReqType,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager


def _spec(root: x509.Certificate, freshness: float | None) -> PdfSignatureValidationSpec:
    rule = RevocationCheckingRule.CHECK_IF_DECLARED
    revinfo = CertRevTrustPolicy(
        RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=rule),
        **(
            {
                "freshness": dt.timedelta(seconds=freshness),
                "freshness_req_type": FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
            }
            if freshness is not None
            else {}
        ),
    )
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[CertTrustAnchor(root)]),
        revinfo_policy=revinfo,
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pdf")
    parser.add_argument("root")
    parser.add_argument("--freshness", type=float)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # pyHanko logs every failed attempt with a traceback
    data = Path(args.root).read_bytes()  # noqa: ASYNC240
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    spec = _spec(x509.Certificate.load(data), args.freshness)
    reader = PdfFileReader(io.BytesIO(Path(args.pdf).read_bytes()))  # noqa: ASYNC240
    for sig in reader.embedded_regular_signatures:
        result = await ades.ades_lta_validation(sig, spec)
        print(
            json.dumps(
                {
                    "field": sig.field_name,
                    "subindication": str(result.ades_subindic),
                    "failure": result.failure_msg,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(_main())
