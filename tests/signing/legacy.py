"""Decisions as the code before the long-term fix signed them (2026-12-04, commit ae7e359).

Two forms:
- `LEGACY_PDF`: the real file that code made (data/legacy-2026-12-04/; its PKI's certificates
  beside it, no private keys), for checks that only read it;
- `LegacySigner`: the same defects made at run time with fresh keys, for the repair, which needs
  the PKI's keys: OCSP answers fresh for an hour (past the 15-minute certificate) and a TSA
  certificate that names the root's CRL (fresh for a day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from asn1crypto import x509

from signing import trust_services
from signing.pki import DevPki, build_certificate, build_crl, create_dev_pki
from tests.servers.trust_services import free_port, start_trust_services
from tests.signing.conftest import DECISION_HTML, sign_as_chair

LEGACY = Path(__file__).parent / "data" / "legacy-2026-12-04"
LEGACY_PDF = LEGACY / "beslut.pdf"
LEGACY_ROOT = LEGACY / "pki" / "root.pem"


def _old_tsa_certificate(pki: DevPki) -> x509.Certificate:
    """The TSA certificate of certificate profile 1: the same key, plus the root's CRL."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    return build_certificate(
        subject=pki.tsa.subject,
        public_key=pki.tsa.public_key,
        issuer=pki.root,
        issuer_key=pki.root_key,
        not_before=now,
        not_after=now + dt.timedelta(days=3650),
        extensions=[
            ("key_usage", x509.KeyUsage({"digital_signature"}), True),
            ("extended_key_usage", ["time_stamping"], True),
            (
                "crl_distribution_points",
                [
                    {
                        "distribution_point": {
                            "full_name": [
                                x509.GeneralName(
                                    name="uniform_resource_identifier",
                                    value=f"{pki.trust_services_url}/crl/root.crl",
                                )
                            ]
                        }
                    }
                ],
                False,
            ),
        ],
    )


@dataclasses.dataclass
class LegacySigner:
    """A dev PKI and a way to sign as the old code did, then to serve today's trust services."""

    pki: DevPki
    """Today's PKI (TSA certificate without a revocation pointer): what repairs use."""

    async def sign_old_style(self, monkeypatch: pytest.MonkeyPatch, pdf: bytes) -> bytes:
        """Sign `pdf` with the old TSA certificate and one-hour OCSP answers."""
        old = dataclasses.replace(self.pki, tsa=_old_tsa_certificate(self.pki))
        issued = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
        with monkeypatch.context() as patch:
            patch.setattr(trust_services, "OCSP_VALIDITY", dt.timedelta(hours=1))
            # The root CRL as a decision signed a while ago holds it: issued ten minutes back,
            # already past the verifier's five-minute freshness (still inside its day).
            patch.setattr(
                trust_services,
                "build_crl",
                lambda issuer, key, **_: build_crl(issuer, key, now=issued),
            )
            services = start_trust_services(old)
            try:
                return await sign_as_chair(pdf, old, timestamp_url=services.tsa_url)
            finally:
                services.stop()

    @contextmanager
    def todays_services(self) -> Iterator[str]:
        """Today's trust services at the same address (the old certificates point there)."""
        services = start_trust_services(self.pki)
        try:
            yield services.tsa_url
        finally:
            services.stop()


def legacy_signer(workdir: Path) -> LegacySigner:
    """A fresh PKI for old-style signatures under `workdir`."""
    return LegacySigner(create_dev_pki(workdir / "legacy-pki", f"http://127.0.0.1:{free_port()}"))


async def old_style_decision(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, pdf: bytes | None = None
) -> tuple[LegacySigner, bytes]:
    """A decision signed as the old code did, with the signer to repair it."""
    from signing.render import render_pdfa

    signer = legacy_signer(workdir)
    return signer, await signer.sign_old_style(monkeypatch, pdf or render_pdfa(DECISION_HTML))
