"""B-LTA signing against the HTTP trust services, verified by pyHanko (ours) and poppler."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pikepdf
import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation import ades

from signing.errors import TrustServiceUnavailable, UnreadablePdf
from signing.pades import DEFAULT_STAMP_BOX, Level, renew_archival_timestamp
from signing.pki import DevPki, SigningCA
from signing.verify import validation_spec, verify_pdf
from tests.servers.trust_services import RunningTrustServices, free_port
from tests.signing.conftest import CHAIR_NAME, CHAIR_PNR, sign_as_chair

pytestmark = pytest.mark.slow


def _pdfsig(pdf: bytes, nss_db: Path, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    # pdfsig exits 0 whether or not the signature is valid: the text is the verdict.
    result = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{nss_db}", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stdout + result.stderr


def _flip_byte_in_signed_range(pdf: bytes) -> bytes:
    # The binary comment on line 2 is inside the first signed byte range and parses either way.
    offset = pdf.index(b"\n%", 0, 64) + 2
    return pdf[:offset] + bytes([pdf[offset] ^ 0x01]) + pdf[offset + 1 :]


async def test_b_lta_verifies_with_exact_json_contract(signed_lta: bytes, pki: DevPki) -> None:
    report = await verify_pdf(signed_lta, trust_roots=[pki.root])
    payload = report.to_json()
    assert set(payload) == {"valid", "modified_after_signing", "signatures"}
    assert payload["valid"] is True, report.signatures
    assert payload["modified_after_signing"] is False
    [signature] = payload["signatures"]
    assert set(signature) == {
        "field",
        "signer_name",
        "personal_identity_number",
        "signed_at",
        "pades_level",
        "intact",
        "trusted",
    }
    assert signature["field"] == "Ordforandebeslut"
    assert signature["signer_name"] == CHAIR_NAME
    assert signature["personal_identity_number"] == CHAIR_PNR
    assert signature["pades_level"] == "B-LTA"
    assert signature["intact"] is True and signature["trusted"] is True
    signed_at = dt.datetime.fromisoformat(signature["signed_at"])
    assert signed_at.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - signed_at) < dt.timedelta(minutes=30)


async def test_b_lta_structure_has_timestamp_dss_and_document_timestamp(signed_lta: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed_lta))
    [signature] = reader.embedded_regular_signatures
    [doc_ts] = reader.embedded_timestamp_signatures
    assert doc_ts.signed_revision > signature.signed_revision
    dss = reader.root["/DSS"]
    assert len(dss["/OCSPs"]) >= 1
    unsigned = signature.signer_info["unsigned_attrs"]
    assert "signature_time_stamp_token" in [a["type"].native for a in unsigned]


async def test_pdfsig_says_valid_and_trusted(
    signed_lta: bytes, nss_db: Path, tmp_path: Path, trust_services: RunningTrustServices
) -> None:
    # pdfsig ignores the DSS and asks the OCSP responder itself: the services must be up.
    output = _pdfsig(signed_lta, nss_db, tmp_path)
    first = output.split("Signature #2")[0]
    assert "Signature is Valid" in first, output
    assert "Certificate is Trusted" in first, output
    assert "PNOSE-197104309831" in first


async def test_one_byte_change_is_caught_by_pyhanko_and_pdfsig(
    signed_lta: bytes, pki: DevPki, nss_db: Path, tmp_path: Path
) -> None:
    tampered = _flip_byte_in_signed_range(signed_lta)
    report = await verify_pdf(tampered, trust_roots=[pki.root])
    assert report.valid is False
    assert report.signatures[0].intact is False
    assert report.signatures[0].trusted is False
    output = _pdfsig(tampered, nss_db, tmp_path).split("Signature #2")[0]
    assert "Digest Mismatch" in output, output
    assert "Signature is Valid" not in output


async def test_annotation_added_after_signing_is_flagged(signed_lta: bytes, pki: DevPki) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_lta))
    page_ref, _ = writer.find_page_for_modification(0)
    annotation = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Text"),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.NumberObject(n) for n in (100, 100, 120, 120)]
            ),
            generic.NameObject("/Contents"): generic.TextStringObject("Ändrat i efterhand"),
        }
    )
    writer.register_annotation(page_ref, writer.add_object(annotation))
    out = io.BytesIO()
    writer.write(out)
    report = await verify_pdf(out.getvalue(), trust_roots=[pki.root])
    assert report.modified_after_signing is True
    assert report.valid is False
    assert report.signatures[0].intact is True  # the signed bytes themselves are untouched


async def test_page_content_added_after_signing_is_flagged(signed_lta: bytes, pki: DevPki) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_lta))
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 72 Td (Upphavt) Tj ET")
    writer.add_stream_to_page(0, writer.add_object(stream))
    out = io.BytesIO()
    writer.write(out)
    report = await verify_pdf(out.getvalue(), trust_roots=[pki.root])
    assert report.to_json()["modified_after_signing"] is True
    assert report.to_json()["valid"] is False


async def test_garbage_appended_after_signing_is_flagged(signed_lta: bytes, pki: DevPki) -> None:
    report = await verify_pdf(
        signed_lta + b"\n% appended later\n1 0 obj\n(x)\nendobj\n", trust_roots=[pki.root]
    )
    assert report.modified_after_signing is True
    assert report.valid is False


async def test_untrusted_root_is_not_trusted(signed_lta: bytes, tmp_path: Path) -> None:
    from signing.pki import create_dev_pki

    other = create_dev_pki(tmp_path / "other", "http://127.0.0.1:9")
    report = await verify_pdf(signed_lta, trust_roots=[other.root])
    assert report.signatures[0].intact is True
    assert report.signatures[0].trusted is False
    assert report.valid is False


async def test_b_t_fails_simulated_validation_years_later(
    decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    # The same check must be able to fail: without embedded revocation data it does.
    signed = await sign_as_chair(
        decision_pdf, pki, timestamp_url=trust_services.tsa_url, level="B-T", stamp=False
    )
    [signature] = PdfFileReader(io.BytesIO(signed)).embedded_regular_signatures
    result = await ades.simulate_future_ades_lta_validation(
        signature,
        validation_spec([pki.root]),
        future_validation_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=5 * 365),
    )
    assert result.ades_subindic != AdESPassed.OK


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
async def test_lower_levels_are_reported_as_such(
    level: Level, decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    signed = await sign_as_chair(
        decision_pdf,
        pki,
        timestamp_url=trust_services.tsa_url,
        level=level,
        stamp=False,
    )
    report = await verify_pdf(signed, trust_roots=[pki.root])
    [signature] = report.signatures
    assert signature.pades_level == level
    assert signature.intact is True
    # Offline, only embedded revocation data counts: B-B and B-T are not trusted.
    assert signature.trusted is (level == "B-LT"), signature.detail


async def test_unreachable_tsa_raises_and_returns_nothing(decision_pdf: bytes, pki: DevPki) -> None:
    with pytest.raises(TrustServiceUnavailable):
        await sign_as_chair(decision_pdf, pki, timestamp_url=f"http://127.0.0.1:{free_port()}/tsa")


async def test_unreachable_ocsp_raises(
    decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    dead = SigningCA(pki.signing_ca, pki.signing_ca_key, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TrustServiceUnavailable):
        await sign_as_chair(decision_pdf, pki, issuer=dead, timestamp_url=trust_services.tsa_url)


async def test_renew_archival_timestamp_adds_a_document_timestamp(
    signed_lta: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    renewed = await renew_archival_timestamp(
        signed_lta, timestamp_url=trust_services.tsa_url, trust_roots=[pki.root]
    )
    before = PdfFileReader(io.BytesIO(signed_lta)).embedded_timestamp_signatures
    after = PdfFileReader(io.BytesIO(renewed)).embedded_timestamp_signatures
    assert len(after) == len(before) + 1
    assert renewed.startswith(signed_lta)  # an incremental update
    report = await verify_pdf(renewed, trust_roots=[pki.root])
    assert report.valid is True, report.signatures
    assert report.signatures[0].pades_level == "B-LTA"


async def test_unsigned_pdf_is_not_valid(decision_pdf: bytes, pki: DevPki) -> None:
    report = await verify_pdf(decision_pdf, trust_roots=[pki.root])
    assert report.to_json() == {"valid": False, "modified_after_signing": False, "signatures": []}


async def test_not_a_pdf_raises(pki: DevPki) -> None:
    with pytest.raises(UnreadablePdf):
        await verify_pdf(b"this is not a pdf", trust_roots=[pki.root])


def test_visible_stamp_on_last_page_with_embedded_1000_upem_font(signed_lta: bytes) -> None:
    with pikepdf.open(io.BytesIO(signed_lta)) as pdf:
        widgets = [
            a
            for a in pdf.pages[-1].get("/Annots", [])
            if a.get("/FT") == "/Sig" and a.V.Type == "/Sig"  # not the document timestamp
        ]
        assert len(widgets) == 1
        assert [float(v) for v in widgets[0].Rect] == [float(v) for v in DEFAULT_STAMP_BOX]
        fonts = list(widgets[0].AP.N.Resources.Font.values())
        assert len(fonts) == 1
        cid_font = fonts[0].DescendantFonts[0]
        assert "/FontFile2" in cid_font.FontDescriptor  # embedded (PDF/A)
        # /W is [first [w1 w2 ...] first [...] ...]; DejaVu at 2048 upem would give ~1300 for
        # digits and up to 2048, doubling the spacing: rescaled, every width is <= 1000.
        widths = [float(w) for item in cid_font.W if isinstance(item, pikepdf.Array) for w in item]
        assert widths and 600 < max(widths) <= 1000


async def test_key_not_matching_certificate_is_refused(
    decision_pdf: bytes, pki: DevPki, trust_services: RunningTrustServices
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from signing.errors import SigningFailed
    from signing.pades import sign_pdf

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = pki.issuer.issue_signer_certificate(
        public_key=key.public_key(), name=CHAIR_NAME, personal_identity_number=CHAIR_PNR
    )
    with pytest.raises(SigningFailed):
        await sign_pdf(
            decision_pdf,
            signer_cert=cert,
            signer_key=other,
            chain=[pki.signing_ca],
            timestamp_url=trust_services.tsa_url,
            trust_roots=[pki.root],
        )


async def test_verification_is_offline(decision_pdf: bytes, tmp_path: Path) -> None:
    # Sign against trust services that are then stopped: verification must use only what is
    # embedded (an archivist's laptop has no route to the portal's OCSP responder).
    from signing.pki import create_dev_pki
    from tests.servers.trust_services import start_trust_services

    own_pki = create_dev_pki(tmp_path / "pki", f"http://127.0.0.1:{free_port()}")
    services = start_trust_services(own_pki)
    try:
        signed = await sign_as_chair(decision_pdf, own_pki, timestamp_url=services.tsa_url)
    finally:
        services.stop()
    handled_before = len(services.handled)
    report = await verify_pdf(signed, trust_roots=[own_pki.root])
    assert report.valid is True, report.signatures
    assert len(services.handled) == handled_before
