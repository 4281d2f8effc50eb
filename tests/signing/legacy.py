"""The decision signed by the code before the long-term fix, and its PKI served again.

`data/legacy-2026-12-04/README.md` says what the file carries and why it stopped verifying.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from signing.pki import DevPki, create_dev_pki
from tests.servers.trust_services import start_trust_services

LEGACY = Path(__file__).parent / "data" / "legacy-2026-12-04"
LEGACY_PDF = LEGACY / "beslut.pdf"
LEGACY_ROOT = LEGACY / "pki" / "root.pem"


@contextmanager
def legacy_trust_services(workdir: Path) -> Iterator[DevPki]:
    """The fixture's PKI with today's certificate profiles, its TSA/OCSP/CRLs at its old URL.

    The certificates in the signed file name that URL (a fixed loopback port), so the renewal's
    fresh root CRL for the old TSA certificate must come from there.
    """
    directory = workdir / "legacy-pki"
    shutil.copytree(LEGACY / "pki", directory)
    url = (directory / "trust-services-url.txt").read_text(encoding="utf-8").strip()
    pki = create_dev_pki(directory, url)  # same keys and root; TSA certificate re-issued
    try:
        services = start_trust_services(pki)
    except RuntimeError as exc:
        pytest.fail(f"cannot serve the legacy trust services at {url}: {exc}")
    try:
        yield pki
    finally:
        services.stop()
