"""HTML -> PDF/A-2b: the markers we can check here (veraPDF is not available)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pikepdf
import pytest

from signing.errors import RenderError
from signing.pades import renew_archival_timestamp
from signing.pki import DevPki
from signing.render import render_pdfa, warm_up
from tests.servers.trust_services import RunningTrustServices


def test_pdfa_markers(decision_pdf: bytes) -> None:
    with pikepdf.open(io.BytesIO(decision_pdf)) as pdf:
        meta = pdf.open_metadata()
        assert meta.get("pdfaid:part") == "2"
        assert meta.get("pdfaid:conformance") == "B"
        intents = pdf.Root.OutputIntents
        assert len(intents) >= 1
        assert intents[0].S == "/GTS_PDFA1"
        assert "/DestOutputProfile" in intents[0]
        # Every font used on the page is embedded (PDF/A requirement).
        for page in pdf.pages:
            for _, font in page.Resources.Font.items():
                descendants = font.get("/DescendantFonts")
                descriptor = (descendants[0] if descendants else font).FontDescriptor
                assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_qpdf_check_passes(decision_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "decision.pdf"
    path.write_bytes(decision_pdf)
    result = subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors" in result.stdout


def test_qpdf_check_passes_after_signing(signed_lta: bytes, tmp_path: Path) -> None:
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed_lta)
    result = subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_swedish_text_is_in_the_pdf(decision_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "decision.pdf"
    path.write_bytes(decision_pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "omhändertagande enligt 6 § LVU" in text
    assert "Åäö ÅÄÖ" in text


def test_warm_up_renders() -> None:
    warm_up()  # must not raise; the real assertion is that rendering works afterwards
    assert render_pdfa("<p>ok</p>").startswith(b"%PDF-")


def test_data_urls_are_allowed() -> None:
    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
        "DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    pdf = render_pdfa(f"<p>Logotyp</p><img src='data:image/png;base64,{pixel}'>")
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert any(
            obj.get("/Subtype") == "/Image"
            for obj in doc.objects
            if isinstance(obj, pikepdf.Stream)
        )


def test_remote_urls_are_refused_and_not_fetched(trust_services: RunningTrustServices) -> None:
    before = len(trust_services.handled)
    with pytest.raises(RenderError):
        render_pdfa(f"<img src='{trust_services.url}/crl/root.crl'>")
    with pytest.raises(RenderError):
        render_pdfa(f"<link rel='stylesheet' href='{trust_services.url}/crl/root.crl'><p>x</p>")
    assert len(trust_services.handled) == before  # nothing reached the server


def test_files_only_under_the_base_directory(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "style.css").write_text("p { color: rgb(200, 0, 0); }")
    (tmp_path / "secret.css").write_text("p { color: blue; }")
    pdf = render_pdfa(
        "<link rel='stylesheet' href='style.css'><p>Röd text</p>", base_url=f"{assets}/"
    )
    assert pdf.startswith(b"%PDF-")
    with pytest.raises(RenderError):
        render_pdfa("<link rel='stylesheet' href='../secret.css'><p>x</p>", base_url=f"{assets}/")
    with pytest.raises(RenderError):
        render_pdfa("<img src='file:///etc/hostname'>", base_url=f"{assets}/")
    with pytest.raises(RenderError):  # no base directory: no files at all
        render_pdfa(f"<link rel='stylesheet' href='file://{assets}/style.css'><p>x</p>")


def _info_matches_xmp(pdf: pikepdf.Pdf) -> list[str]:
    """PDF/A-2 6.6.2.3: each Info entry that has an XMP analogue must be equivalent to it."""
    meta = pdf.open_metadata()
    analogues = {"/Producer": "pdf:Producer", "/Title": "dc:title", "/Creator": "xmp:CreatorTool"}
    return [
        f"{key}: Info {pdf.docinfo[key]!s} != XMP {meta.get(xmp)!s}"
        for key, xmp in analogues.items()
        if key in pdf.docinfo and str(pdf.docinfo[key]) != str(meta.get(xmp))
    ]


@pytest.mark.parametrize("stage", ["signed", "renewed"])
async def test_signed_file_stays_pdf_1_7_with_pdfa_markers(
    stage: str, signed_lta: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    data = signed_lta
    if stage == "renewed":
        data = await renew_archival_timestamp(
            signed_lta, timestamp_url=trust_services.tsa_url, trust_roots=[pki.root]
        )
    with pikepdf.open(io.BytesIO(data)) as pdf:
        # PDF/A-2 is PDF 1.7: no /Version 2.0 in the catalog, no ISO 32002 extension; PAdES
        # in PDF 1.7 is declared with the ESIC extension.
        assert pdf.pdf_version == "1.7"
        assert "/Version" not in pdf.Root
        assert set(pdf.Root.Extensions.keys()) == {"/ESIC"}
        meta = pdf.open_metadata()
        assert meta.get("pdfaid:part") == "2" and meta.get("pdfaid:conformance") == "B"
        assert _info_matches_xmp(pdf) == []
