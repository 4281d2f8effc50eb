"""The municipality's list of sent assignments grows (every weekend's tasks): keyset pages by
(sent, id), newest first, 50 at a time, with filters; it used to stop at 200.

SQLite and PostgreSQL: every page walked (API and HTML), an assignment sent between page loads,
filters, tenancy (Gävle never sees Hudiksvall's), the audit of each page and a bad cursor."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from portal.timefmt import STOCKHOLM
from tests.portal.advisories.helpers import GUNILLA, HANNA, JONNA, audit_entries
from tests.portal.assignments.test_flow import assignment
from tests.portal.conftest import RunningPortal
from tests.portal.paging import summary, walk, walk_pages
from tests.portal.sessions import client_as

MADE = 51


def test_the_sent_list_pages_filters_and_keeps_tenants_apart(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    made = []
    for n in range(MADE):
        r = hanna.post(
            "/api/v1/assignments", json=assignment(kind="call" if n % 10 == 0 else "visit")
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    expected = list(reversed(made))
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    theirs = gunilla.post("/api/v1/assignments", json=assignment()).json()["id"]

    # API: 8 at a time, each once, newest first; Gävle sees only its own.
    ids, sizes, total = walk(hanna, "/api/v1/assignments", {"limit": 8})
    assert ids == expected and total == str(MADE) and sizes == [8] * 6 + [MADE - 48]
    assert walk(gunilla, "/api/v1/assignments", {"view": "sent"})[0] == [theirs]

    # An assignment sent between page loads shifts nothing.
    first = hanna.get("/api/v1/assignments", params={"limit": 10})
    fresh = hanna.post("/api/v1/assignments", json=assignment()).json()["id"]
    second = hanna.get(first.headers["link"].split(">")[0].lstrip("<"))
    assert [a["id"] for a in first.json() + second.json()] == expected[:20]
    expected = [fresh, *expected]

    # The page: 50, then the rest; each page audited with the assignments it showed.
    row = r'<a href="/assignments/([0-9a-f-]{36})"'
    shown, lines = walk_pages(hanna, "/assignments/", row)
    assert list(dict.fromkeys(shown)) == expected
    assert lines == [
        f"Visar 1–50 av {MADE + 1} uppdrag, nyaste först. Listan fortsätter på nästa sida.",
        f"Visar 51–{MADE + 1} av {MADE + 1} uppdrag, nyaste först.",
    ]
    listed = audit_entries(portal.settings, "assignment.list")[-2:]
    assert [e.details["assignments"] for e in listed] == [expected[:50], expected[50:]]

    # Filters: status, kind, the day sent.
    jonna = client_as(portal.url, portal.settings, JONNA)
    assert jonna.post(f"/api/v1/assignments/{made[3]}/accept").status_code == 204

    def ids_where(**params: object) -> list[str]:
        return walk(hanna, "/api/v1/assignments", {"limit": 200, **params})[0]

    assert ids_where(status="accepted") == [made[3]]
    assert ids_where(status="sent") == [i for i in expected if i != made[3]]
    assert ids_where(kind="call") == [i for i in expected if i in made[::10]]
    today = datetime.now(STOCKHOLM).date()
    assert (
        ids_where(date_from=today - timedelta(days=1), date_to=today + timedelta(days=1))
        == expected
    )
    assert ids_where(date_to=today - timedelta(days=2)) == []
    page = hanna.get("/assignments/", params={"kind": "call"})
    assert (
        summary(page.text)
        == f"Visar 1–{len(made[::10])} av {len(made[::10])} uppdrag, nyaste först."
    )
    assert re.search(r'<option value="call" selected>', page.text)

    # A cursor that is not one: 400 in Swedish.
    bad = hanna.get("/api/v1/assignments", params={"before": "nej"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "before"
    assert hanna.get("/assignments/", params={"before": "nej"}).status_code == 400
    assert hanna.get("/api/v1/assignments", params={"kind": "resa"}).status_code == 400
