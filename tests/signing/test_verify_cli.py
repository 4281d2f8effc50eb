"""`jourpost verify FILE.pdf [--json] [--trust ROOT.pem]`: the DESIGN.md §7 contract, run as a
separate process with no Jourpost configuration at all (an archivist's laptop)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from signing.pki import DevPki
from tests.signing.conftest import CHAIR_NAME, CHAIR_PNR


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    # No JOURPOST_* variables: the command must work without configuration.
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", "verify", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_valid_b_lta_exits_0_with_the_json_contract(
    signed_lta: bytes, pki: DevPki, tmp_path: Path
) -> None:
    pdf = tmp_path / "beslut.pdf"
    pdf.write_bytes(signed_lta)
    r = _verify(str(pdf), "--json", "--trust", str(pki.root_path))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["valid"] is True and report["modified_after_signing"] is False
    [sig] = report["signatures"]
    assert sig["signer_name"] == CHAIR_NAME and sig["personal_identity_number"] == CHAIR_PNR
    assert sig["pades_level"] == "B-LTA" and sig["intact"] and sig["trusted"]


def test_without_the_root_the_signature_is_not_trusted(signed_lta: bytes, tmp_path: Path) -> None:
    pdf = tmp_path / "beslut.pdf"
    pdf.write_bytes(signed_lta)
    r = _verify(str(pdf), "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["valid"] is False and report["signatures"][0]["trusted"] is False


def test_appended_content_is_reported_as_modified(
    signed_lta: bytes, pki: DevPki, tmp_path: Path
) -> None:
    pdf = tmp_path / "beslut.pdf"
    pdf.write_bytes(signed_lta + b"\n1 0 obj\n(efterhandstillagg)\nendobj\n")
    r = _verify(str(pdf), "--json", "--trust", str(pki.root_path))
    assert r.returncode == 1
    assert json.loads(r.stdout)["modified_after_signing"] is True
    text = _verify(str(pdf), "--trust", str(pki.root_path))
    assert text.returncode == 1 and "ändrats efter underskriften" in text.stdout


def test_unreadable_input_is_a_clear_error(tmp_path: Path) -> None:
    missing = _verify(str(tmp_path / "finns-inte.pdf"))
    assert missing.returncode == 2 and "kan inte läsa" in missing.stderr
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf")
    r = _verify(str(junk), "--json")
    assert r.returncode == 1 and json.loads(r.stdout.splitlines()[0])["valid"] is False


def _garbled_contents(pdf: bytes) -> bytes:
    # Overwrite the start of the first signature's /Contents hex string (same length).
    start = pdf.index(b"/Contents <") + len(b"/Contents <")
    return pdf[:start] + b"00" * 64 + pdf[start + 128 :]


@pytest.mark.parametrize(
    "name",
    ["empty", "truncated", "garbled-signature", "only-header", "directory", "signature-only"],
)
def test_odd_input_gets_a_verdict_and_no_traceback(
    name: str, signed_lta: bytes, pki: DevPki, tmp_path: Path
) -> None:
    path = tmp_path / f"{name}.pdf"
    if name == "directory":
        path.mkdir()
    else:
        path.write_bytes(
            {
                "empty": b"",
                "truncated": signed_lta[: len(signed_lta) // 2],
                "garbled-signature": _garbled_contents(signed_lta),
                "only-header": b"%PDF-1.7\n%%EOF\n",
                "signature-only": signed_lta[signed_lta.index(b"/Contents <") :],
            }[name]
        )
    for args in (["--json"], []):
        r = _verify(str(path), *args, "--trust", str(pki.root_path))
        assert "Traceback" not in r.stdout + r.stderr, r.stderr
        assert r.returncode in (1, 2), (r.returncode, r.stdout, r.stderr)
        if args:
            assert r.returncode == 2 or json.loads(r.stdout)["valid"] is False
        else:
            assert "INTE GILTIG" in r.stdout + r.stderr or "kan inte läsa" in r.stderr
