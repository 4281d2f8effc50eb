"""The Swedish report URLs before issue 13 redirect to the English ones: bookmarks, links in
e-mail already sent, and forms in tabs opened before an upgrade keep working (308 keeps the
method, the body and the query string)."""

from __future__ import annotations

import io
import uuid

import pikepdf
import pytest

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, unit_ids
from tests.portal.reports.test_pages import _base_form

RID = "3f2b9a8e-0c1d-4e5f-8a9b-1c2d3e4f5a6b"
AID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""The redirects never touch the database: one backend is enough."""

OLD_GETS = [
    ("/rapporter", "/reports"),
    ("/rapporter/", "/reports"),
    ("/rapporter/ny?utkast=slangt", "/reports/new?utkast=slangt"),
    ("/rapporter/inkorg?show=unread&before=x_1", "/reports/inbox?show=unread&before=x_1"),
    ("/rapporter/skickade?show=unacknowledged", "/reports/sent?show=unacknowledged"),
    (f"/rapporter/{RID}", f"/reports/{RID}"),
    (f"/rapporter/{RID}?skickad=1", f"/reports/{RID}?skickad=1"),
    (f"/rapporter/{RID.upper()}", f"/reports/{RID}"),
    (f"/rapporter/{RID}/pdf", f"/reports/{RID}/pdf"),
    (f"/rapporter/{RID}/bilagor/{AID}", f"/reports/{RID}/attachments/{AID}"),
]
OLD_POSTS = [
    ("/rapporter/ny", "/reports/new"),
    (f"/rapporter/{RID}/kvittera", f"/reports/{RID}/acknowledge"),
    (f"/rapporter/{RID}/tillagg", f"/reports/{RID}/addenda"),
    (f"/rapporter/{RID}/bilagor", f"/reports/{RID}/attachments"),
]


@SQLITE_ONLY
@pytest.mark.parametrize(("old", "new"), OLD_GETS)
def test_an_old_page_url_redirects_permanently_with_its_query(
    portal: RunningPortal, people: People, old: str, new: str
) -> None:
    r = people(JONNA).get(old)
    assert (r.status_code, r.headers.get("location")) == (308, new)


@SQLITE_ONLY
@pytest.mark.parametrize(("old", "new"), OLD_POSTS)
def test_an_old_form_target_redirects_keeping_the_method(
    portal: RunningPortal, people: People, old: str, new: str
) -> None:
    r = people(JONNA).post(old, data={"_csrf_token": people(JONNA).cookies["csrftoken"]})
    assert (r.status_code, r.headers.get("location")) == (308, new)


@SQLITE_ONLY
@pytest.mark.parametrize(
    "old",
    [
        "/rapporter/nya",
        f"/rapporter/{RID}/kvittera/extra",
        f"/rapporter/{RID}/okand",
        f"/rapporter/{RID}/pdf/{AID}",
        f"/rapporter/{RID}/bilagor/inte-ett-id",
    ],
)
def test_paths_that_never_existed_are_404(portal: RunningPortal, people: People, old: str) -> None:
    assert people(JONNA).get(old).status_code == 404


def _pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_forms_in_tabs_opened_before_the_rename_still_work(
    portal: RunningPortal, people: People
) -> None:
    """Each old form target, followed like a browser follows a 308, does what it did, and lands
    on the report with the new English flag."""
    jonna, hanna = people(JONNA), people(HANNA)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    form = _base_form(jonna.cookies["csrftoken"], unit)
    form.update({"category": "kvinna", "character": "boende"})
    sent = jonna.post("/rapporter/ny", data=form, follow_redirects=True)
    assert sent.status_code == 200 and "Rapporten är skickad." in sent.text
    assert sent.url.path.startswith("/reports/") and sent.url.query == b"sent=1"
    rid = uuid.UUID(sent.url.path.split("/")[2])

    csrf = {"_csrf_token": jonna.cookies["csrftoken"]}
    added = jonna.post(
        f"/rapporter/{rid}/tillagg", data={**csrf, "text": "Rättelse."}, follow_redirects=True
    )
    assert "Tillägget är sparat." in added.text and "Rättelse." in added.text
    assert (added.url.path, added.url.query) == (f"/reports/{rid}", b"saved=1")

    content = _pdf()
    attached = jonna.post(
        f"/rapporter/{rid}/bilagor",
        data=csrf,
        files=[("attachments", ("underrattelse.pdf", content, "application/pdf"))],
        follow_redirects=True,
    )
    assert "underrattelse.pdf" in attached.text
    assert (attached.url.path, attached.url.query) == (f"/reports/{rid}", b"")

    acked = hanna.post(
        f"/rapporter/{rid}/kvittera",
        data={"_csrf_token": hanna.cookies["csrftoken"]},
        follow_redirects=True,
    )
    assert "Rapporten är kvitterad." in acked.text
    assert (acked.url.path, acked.url.query) == (f"/reports/{rid}", b"acknowledged=1")

    (aid,) = [a["id"] for a in hanna.get(f"/api/v1/reports/{rid}").json()["attachments"]]
    got = hanna.get(f"/rapporter/{rid}/bilagor/{aid}", follow_redirects=True)
    assert (got.status_code, got.url.path, got.content) == (
        200,
        f"/reports/{rid}/attachments/{aid}",
        content,
    )
    pdf = hanna.get(f"/rapporter/{rid}/pdf", follow_redirects=True)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
