"""Report attachments through portal/attachments (owner_type "report"): jour adds, unit reads."""

from __future__ import annotations

import io

import pikepdf

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import GUNILLA, HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, audit_entries, report_payload, unit_ids


def _pdf(title: str) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = title
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_jour_attaches_files_and_the_unit_downloads_them(
    portal: RunningPortal, people: People
) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    jonna, hanna = people(JONNA), people(HANNA)
    rid = jonna.post("/api/v1/reports", json=report_payload(unit)).json()["id"]
    content = _pdf("Polisens underrättelse")
    up = jonna.post(
        f"/api/v1/reports/{rid}/attachments",
        files=[("attachments", ("underrattelse.pdf", content, "application/pdf"))],
    )
    assert up.status_code == 201, up.text
    (aid,) = up.json()["ids"]

    report = hanna.get(f"/api/v1/reports/{rid}").json()
    assert [(a["id"], a["name"], a["content_type"]) for a in report["attachments"]] == [
        (aid, "underrattelse.pdf", "application/pdf")
    ]
    got = hanna.get(f"/api/v1/reports/{rid}/attachments/{aid}")
    assert got.status_code == 200 and got.content == content
    assert hanna.get(f"/reports/{rid}/attachments/{aid}").content == content
    downloads = audit_entries(portal.settings, "attachment.download")
    assert len(downloads) == 2

    # Other tenants learn nothing; the unit cannot add files; bad files store nothing.
    assert people(GUNILLA).get(f"/api/v1/reports/{rid}/attachments/{aid}").status_code == 404
    refused = audit_entries(portal.settings, "report.attachment_download")
    assert [e.outcome for e in refused] == ["denied"]
    files = [("attachments", ("x.pdf", content, "application/pdf"))]
    assert hanna.post(f"/api/v1/reports/{rid}/attachments", files=files).status_code == 403
    bad = jonna.post(
        f"/api/v1/reports/{rid}/attachments",
        files=[
            ("attachments", ("ok.pdf", content, "application/pdf")),
            ("attachments", ("not.pdf", b"hello, not a pdf", "application/pdf")),
        ],
    )
    assert bad.status_code == 422
    assert len(hanna.get(f"/api/v1/reports/{rid}").json()["attachments"]) == 1

    page = jonna.post(
        f"/reports/{rid}/attachments",
        data={"_csrf_token": jonna.cookies["csrftoken"]},
        files=[("attachments", ("andra.pdf", _pdf("Andra"), "application/pdf"))],
    )
    assert page.status_code == 303, page.text
    assert "andra.pdf" in hanna.get(f"/reports/{rid}").text
