"""Signed decisions verify long after the chair's 15-minute certificate expired — with the clock
really moved (libfaketime: the whole validating process, its OpenSSL and pyHanko, lives in the
future), offline, in three separate tools: `jourpost verify`, pyHanko's own AdES-LTA validation
(`foreign_pyhanko.py`, which imports nothing of ours) and poppler's pdfsig.

pyHanko's `simulate_future_ades_lta_validation` is not enough: its time-sliding still starts
from the real clock, so it passed while every signed decision stopped verifying 15 minutes after
signing (issue 10). A decision signed by the earlier code is kept as a fixture (data/) to show the
repair path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from signing.pades import renew_archival_timestamp
from signing.pki import DevPki
from signing.verify import REVOCATION_FRESHNESS
from tests.servers.trust_services import RunningTrustServices
from tests.signing.conftest import CHAIR_PNR, sign_as_chair
from tests.signing.legacy import LEGACY_PDF, LEGACY_ROOT, old_style_decision

HERE = Path(__file__).parent
FOREIGN = HERE / "foreign_pyhanko.py"
LATER = ["+1d", "+365d", "+1826d"]
"""One day, one year and five years after now (libfaketime offsets)."""


def _later(offset: str, *argv: str) -> subprocess.CompletedProcess[str]:
    # No JOURPOST_* variables: an archivist's laptop, years on, with nothing but the file.
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    return subprocess.run(
        ["faketime", "-f", offset, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def jourpost_verify(offset: str, pdf: Path, root: Path) -> dict[str, object]:
    r = _later(
        offset,
        sys.executable,
        "-m",
        "portal.cli",
        "verify",
        "--json",
        "--trust",
        str(root),
        str(pdf),
    )
    assert "Traceback" not in r.stderr, r.stderr
    report: dict[str, object] = json.loads(r.stdout)
    assert r.returncode == (0 if report["valid"] else 1)
    return report


def foreign_pyhanko(
    offset: str, pdf: Path, root: Path, *, freshness: float | None = None
) -> list[dict[str, str]]:
    extra = ["--freshness", str(freshness)] if freshness is not None else []
    r = _later(offset, sys.executable, str(FOREIGN), str(pdf), str(root), *extra)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def _is_valid_b_lta(report: dict[str, object]) -> bool:
    [sig] = report["signatures"]  # type: ignore[misc]
    return bool(
        report["valid"]
        and sig["trusted"]
        and sig["intact"]
        and sig["pades_level"] == "B-LTA"
        and sig["personal_identity_number"] == CHAIR_PNR
    )


@pytest.fixture(scope="module")
def signed_file(signed_lta: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lt") / "beslut.pdf"
    path.write_bytes(signed_lta)
    return path


@pytest.mark.parametrize("offset", LATER)
def test_jourpost_verify_years_later(offset: str, signed_file: Path, pki: DevPki) -> None:
    report = jourpost_verify(offset, signed_file, pki.root_path)
    assert _is_valid_b_lta(report), report


@pytest.mark.parametrize("offset", LATER)
def test_pyhanko_ades_lta_years_later(offset: str, signed_file: Path, pki: DevPki) -> None:
    # pyHanko's default revocation freshness (thisUpdate..nextUpdate), not ours.
    [result] = foreign_pyhanko(offset, signed_file, pki.root_path)
    assert result["subindication"] == "AdESPassed.OK", result


def test_pdfsig_years_later_reads_an_intact_signature_and_an_expired_certificate(
    signed_file: Path, nss_db: Path
) -> None:
    # pdfsig (poppler 22.12) checks the certificate at the current time only: it reads no DSS
    # and no timestamps, so a 15-minute certificate is "expired" a day later, whatever is
    # embedded. What it can confirm years on is the signature over the signed bytes.
    r = _later("+1826d", "pdfsig", "-nssdir", f"sql:{nss_db}", str(signed_file))
    lines = [line.strip() for line in r.stdout.splitlines()]
    assert "- Signature Validation: Signature is Valid." in lines, r.stdout
    assert "- Certificate Validation: Certificate has Expired" in lines, r.stdout


async def test_b_t_is_not_valid_a_day_later(
    decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices, tmp_path: Path
) -> None:
    # The same checks must be able to fail: without revocation data and a document timestamp
    # nothing proves the certificate was good when it signed.
    signed = await sign_as_chair(
        decision_pdf, pki, timestamp_url=trust_services.tsa_url, level="B-T", stamp=False
    )
    path = tmp_path / "b-t.pdf"
    path.write_bytes(signed)
    assert jourpost_verify("+1d", path, pki.root_path)["valid"] is False
    [result] = foreign_pyhanko("+1d", path, pki.root_path)
    assert result["subindication"] != "AdESPassed.OK"


def test_not_valid_once_the_tsa_certificate_expired(signed_file: Path, pki: DevPki) -> None:
    # The dev TSA certificate lives ten years: after that only a renewed document timestamp
    # (`jourpost archive renew-timestamps`, run before it expires) keeps the decision valid.
    assert jourpost_verify("+3660d", signed_file, pki.root_path)["valid"] is False


# --- decisions signed before the fix (fixture from commit ae7e359) ---------------------------


def test_legacy_decision_does_not_verify_a_day_later_without_repair() -> None:
    report = jourpost_verify("+1d", LEGACY_PDF, LEGACY_ROOT)
    [sig] = report["signatures"]  # type: ignore[misc]
    assert report["valid"] is False and sig["intact"] is True and sig["trusted"] is False


async def test_an_old_style_decision_verifies_years_later_after_repair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made at run time with the old defects (one-hour OCSP answers, a TSA certificate naming
    # the root's CRL): it fails a day later like the committed file, and the repair fixes it.
    signer, original = await old_style_decision(tmp_path, monkeypatch)
    root = signer.pki.root_path
    path = tmp_path / "beslut.pdf"
    path.write_bytes(original)
    assert jourpost_verify("+1d", path, root)["valid"] is False
    with signer.todays_services() as tsa_url:
        repaired = await renew_archival_timestamp(
            original,
            timestamp_url=tsa_url,
            trust_roots=[signer.pki.root],
            other_certs=[signer.pki.signing_ca],
        )
    assert repaired.startswith(original)  # the original signature is untouched
    path.write_bytes(repaired)
    for offset in LATER:
        assert _is_valid_b_lta(jourpost_verify(offset, path, root)), offset
    seconds = REVOCATION_FRESHNESS.total_seconds()
    [ours] = foreign_pyhanko("+1826d", path, root, freshness=seconds)
    assert ours["subindication"] == "AdESPassed.OK", ours
    # Why the verifier sets a revocation freshness: with pyHanko's default (fresh until
    # nextUpdate) the one-hour OCSP answer slides the control time past the certificate's
    # end, and no data added later can move it back.
    [default] = foreign_pyhanko("+1826d", path, root)
    assert default["subindication"] == "AdESIndeterminate.OUT_OF_BOUNDS_NO_POE", default
