"""Reports about persons from a non-member municipality ("Annan kommun"): kept, PDF/A download."""

from __future__ import annotations

import io

import pikepdf

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import GUNILLA, HANNA, JONNA, WOMAN, People
from tests.portal.reports.helpers import audit_entries, report_payload


def _annan(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "other_municipality": "Uppsala",
        "category": "kvinna",
        "character": "vald_i_nara_relationer",
        "child_involved": False,
        "assessment": None,
        "actions": ["logi"],
        "subjects": [{"personal_identity_number": WOMAN, "name": "Vera Våldsutsatt"}],
        "narrative": "Kvinnan sökte skydd efter hot. Akut logi på hotell en natt.",
    }
    fields.update(overrides)
    return report_payload(None, **fields)


def test_other_municipality_report_is_kept_and_downloadable_as_pdfa(
    portal: RunningPortal, people: People
) -> None:
    jonna = people(JONNA)
    r = jonna.post("/api/v1/reports", json=_annan())
    assert r.status_code == 201, r.text
    body = r.json()
    rid = body["id"]
    assert body["other_municipality"] is True and body["municipality_name"] == "Uppsala"
    assert body["unit_name"] is None and body["can_acknowledge"] is False

    sent = jonna.get("/api/v1/reports", params={"box": "sent"}).json()
    assert [(s["id"], s["other_municipality"]) for s in sent] == [(rid, True)]
    assert "Annan kommun: Uppsala" in jonna.get("/reports/sent").text
    # No municipality's handler receives it.
    for handler in (HANNA, GUNILLA):
        assert people(handler).get("/api/v1/reports").json() == []

    pdf = jonna.get(f"/api/v1/reports/{rid}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "handelserapport-" in disposition
    for personal in ("Vera", "Våldsutsatt", WOMAN, WOMAN[:8], "Uppsala"):
        assert personal not in disposition
    assert pdf.content.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(pdf.content)) as doc:
        meta = doc.open_metadata()
        assert meta.get("pdfaid:part") == "2"
        assert meta.get("pdfaid:conformance") == "B"
        assert "/OutputIntents" in doc.Root
        text = b"".join(
            page.get("/Contents").read_bytes() for page in doc.pages if "/Contents" in page
        )
        assert text  # rendered content exists (fonts are subset, so text is not grep-able)
    page_pdf = jonna.get(f"/reports/{rid}/pdf")
    assert page_pdf.status_code == 200 and page_pdf.content.startswith(b"%PDF-")
    downloads = [e for e in audit_entries(portal.settings, "report.download") if e.object_id == rid]
    assert [d.outcome for d in downloads] == ["ok", "ok"]


def test_other_municipality_must_not_be_a_member(portal: RunningPortal, people: People) -> None:
    r = people(JONNA).post("/api/v1/reports", json=_annan(other_municipality="hudiksvall"))
    assert r.status_code == 422
    fields = {e["field"]: e["detail"] for e in r.json()["errors"]}
    assert "medlemskommun" in fields["other_municipality"]


def test_a_member_is_refused_as_annan_kommun_but_wildcards_match_nothing(
    portal: RunningPortal, people: People
) -> None:
    jonna = people(JONNA)
    member = jonna.post("/api/v1/reports", json=_annan(other_municipality="hudiksvall"))
    assert member.status_code == 422 and "Hudiksvall är medlemskommun" in member.text
    # "%" and "_" are characters of a name here, not LIKE wildcards matching every member.
    for name in ("%", "H_diksvall", "G%"):
        r = jonna.post("/api/v1/reports", json=_annan(other_municipality=name))
        assert r.status_code == 201, (name, r.text)
        assert r.json()["municipality_name"] == name
