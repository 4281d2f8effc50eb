"""Fixtures for the signing tests: a dev PKI, trust services on loopback, a rendered decision.

Nothing cryptographic is faked: keys are generated, certificates issued, timestamps and OCSP
answers come over HTTP from the trust services running in a uvicorn thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signing.pades import Level, sign_pdf
from signing.pki import DevPki, SigningCA, create_dev_pki
from signing.render import render_pdfa
from tests.servers.trust_services import RunningTrustServices, free_port, start_trust_services

CHAIR_NAME = "Olof Ordén"
CHAIR_PNR = "197104309831"
STAMP = ("Digitalt signerat av {name}, ordförande i socialnämnden Hudiksvall, tid {time}").replace(
    "{name}", CHAIR_NAME
)

DECISION_HTML = """<!doctype html>
<html lang="sv">
<head><meta charset="utf-8"><title>Ordförandebeslut enligt 6 § LVU</title>
<style>
  @page { size: A4; margin: 2cm 2cm 3.5cm 2cm; }
  body { font-family: "DejaVu Sans", sans-serif; font-size: 10.5pt; }
  h1 { font-size: 15pt; }
  table { border-collapse: collapse; }
  td { padding: 2pt 6pt; border: 0.5pt solid #777; }
</style></head>
<body>
<h1>Beslut om omedelbart omhändertagande enligt 6 § LVU</h1>
<p>Socialnämnden i Hudiksvall, ordförandebeslut fattat muntligen 2026-11-23 kl. 02:40.</p>
<table>
  <tr><td>Den unge</td><td>Pojke, född 2011 (personnummer 20110305-9893)</td></tr>
  <tr><td>Beslutande</td><td>Olof Ordén, ordförande</td></tr>
  <tr><td>Föredragande</td><td>Jonna Jourström, Socialjouren Gävleborg</td></tr>
</table>
<h2>Beslut</h2>
<p>Ordföranden beslutar att den unge omedelbart ska omhändertas med stöd av 6 § lagen (1990:52)
med särskilda bestämmelser om vård av unga (LVU). Beslutet gäller omedelbart.</p>
<h2>Skäl</h2>
<p>Det är sannolikt att den unge behöver beredas vård med stöd av LVU och rättens beslut om vård
inte kan avvaktas med hänsyn till risken för den unges hälsa och utveckling.</p>
<p>Beslutet ska underställas förvaltningsrätten inom en vecka (7 § LVU) och anmälas vid
nämndens nästa sammanträde. Åäö ÅÄÖ é ü – ”citat” …</p>
</body></html>
"""


@pytest.fixture(scope="session")
def pki_and_services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DevPki, RunningTrustServices]]:
    directory = tmp_path_factory.mktemp("pki")
    pki = create_dev_pki(directory, f"http://127.0.0.1:{free_port()}")
    services = start_trust_services(pki)
    yield pki, services
    services.stop()


@pytest.fixture(scope="session")
def pki(pki_and_services: tuple[DevPki, RunningTrustServices]) -> DevPki:
    return pki_and_services[0]


@pytest.fixture(scope="session")
def trust_services(pki_and_services: tuple[DevPki, RunningTrustServices]) -> RunningTrustServices:
    return pki_and_services[1]


@pytest.fixture(scope="session")
def decision_pdf() -> bytes:
    return render_pdfa(DECISION_HTML)


async def sign_as_chair(
    pdf: bytes,
    pki: DevPki,
    *,
    issuer: SigningCA | None = None,
    timestamp_url: str,
    level: Level = "B-LTA",
    stamp: bool = True,
) -> bytes:
    """Issue an ephemeral certificate for the demo chair and sign `pdf` with it."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (issuer or pki.issuer).issue_signer_certificate(
        public_key=key.public_key(),
        name=CHAIR_NAME,
        personal_identity_number=CHAIR_PNR,
        given_name="Olof",
        surname="Ordén",
    )
    return await sign_pdf(
        pdf,
        signer_cert=cert,
        signer_key=key,
        chain=[pki.signing_ca],
        timestamp_url=timestamp_url,
        trust_roots=[pki.root],
        stamp_text=STAMP if stamp else None,
        reason="Ordförandebeslut enligt 6 § LVU",
        location="Hudiksvall",
        level=level,
        http_timeout=20,
    )


@pytest.fixture(scope="session")
async def signed_lta(
    decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> AsyncIterator[bytes]:
    yield await sign_as_chair(decision_pdf, pki, timestamp_url=trust_services.tsa_url)


@pytest.fixture(scope="session")
def nss_db(tmp_path_factory: pytest.TempPathFactory, pki: DevPki) -> Path:
    """An NSS database trusting the dev root, for poppler's pdfsig."""
    import subprocess

    directory = tmp_path_factory.mktemp("nss")
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, timeout=60
    )
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{directory}",
            "-n",
            "jourpost-dev-root",
            "-t",
            "CT,C,C",
            "-i",
            str(pki.root_path),
        ],
        check=True,
        timeout=60,
    )
    return directory
