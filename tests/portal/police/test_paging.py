"""The list of police-assistance requests grows (a jour makes several a week): keyset pages by
(made, id), newest first, 50 at a time, with filters; it used to stop at 200.

SQLite and PostgreSQL: every page walked (API and HTML), a request made between page loads,
filters, tenancy (Gävle never sees Hudiksvall's), the audit of each page and a bad cursor."""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.timefmt import STOCKHOLM
from tests.portal.advisories.helpers import ADA, GUNILLA, HANNA, JONNA, audit_entries
from tests.portal.conftest import RunningPortal
from tests.portal.paging import summary, walk, walk_pages
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as

MADE = 52
ROW = r'<h2><a href="/police-requests/([0-9a-f-]{36})">'


def test_the_request_list_pages_filters_and_keeps_tenants_apart(portal: RunningPortal) -> None:
    hud = org_id(portal, "Hudiksvall")
    ada = client_as(portal.url, portal.settings, ADA)
    rules = {"rules": {"handrackning_lvu": "chair"}}  # awaiting the chair: nothing signed here
    assert ada.put(f"/api/v1/delegation/{hud}", json=rules).status_code == 200
    hanna = client_as(portal.url, portal.settings, HANNA)
    register(hanna)
    jonna = client_as(portal.url, portal.settings, JONNA)
    made = []
    for _ in range(MADE):
        r = jonna.post("/api/v1/police-requests", json=request_body(hud))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    expected = list(reversed(made))

    # API: 9 at a time, each once, newest first; the municipality sees the same, Gävle none.
    ids, sizes, total = walk(jonna, "/api/v1/police-requests", {"limit": 9})
    assert ids == expected and total == str(MADE) and sizes == [9] * 5 + [MADE - 45]
    assert walk(hanna, "/api/v1/police-requests", {"limit": 200})[0] == expected
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    assert walk(gunilla, "/api/v1/police-requests", {})[0] == []

    # A request made between page loads shifts nothing.
    first = jonna.get("/api/v1/police-requests", params={"limit": 10})
    fresh = jonna.post("/api/v1/police-requests", json=request_body(hud)).json()["id"]
    second = jonna.get(first.headers["link"].split(">")[0].lstrip("<"))
    assert [r["id"] for r in first.json() + second.json()] == expected[:20]
    expected = [fresh, *expected]

    # The page: 50, then the rest; each page audited with the requests it showed.
    shown, lines = walk_pages(jonna, "/police-requests/", ROW)
    assert shown == expected
    assert lines[1] == f"Visar 51–{MADE + 1} av {MADE + 1} begäranden, nyaste först."
    listed = audit_entries(portal.settings, "police_request.list")[-2:]
    assert [e.details["requests"] for e in listed] == [expected[:50], expected[50:]]

    # Filters: status, act, municipality, the day made.
    def ids_where(**params: object) -> list[str]:
        return walk(jonna, "/api/v1/police-requests", {"limit": 200, **params})[0]

    assert ids_where(status="awaiting_chair") == expected and ids_where(status="sent") == []
    assert ids_where(act="lvu") == expected and ids_where(act="lvm") == []
    assert ids_where(municipality=hud) == expected
    assert ids_where(municipality=org_id(portal, "Gävle")) == []
    today = datetime.now(STOCKHOLM).date()
    assert (
        ids_where(date_from=today - timedelta(days=1), date_to=today + timedelta(days=1))
        == expected
    )
    assert ids_where(date_to=today - timedelta(days=2)) == []
    page = jonna.get("/police-requests/", params={"act": "lvm"})
    assert summary(page.text) == "Inga begäranden." and 'value="lvm" selected' in page.text

    # A cursor that is not one: 400 in Swedish.
    bad = jonna.get("/api/v1/police-requests", params={"before": "%%%"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "before"
    assert jonna.get("/police-requests/", params={"before": "QQ"}).status_code == 400
    assert jonna.get("/api/v1/police-requests", params={"status": "klar"}).status_code == 400
