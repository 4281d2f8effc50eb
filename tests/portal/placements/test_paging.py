"""The placement register grows (a municipality's placements over the years): keyset pages by
(latest change, id), newest first, 50 at a time, with filters; it used to stop at 500.

SQLite and PostgreSQL: every page walked (API and HTML), a placement registered between page
loads, filters, tenancy (Gävle never sees Hudiksvall's), the audit of each page and a bad
cursor."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from portal.timefmt import STOCKHOLM
from tests.portal.advisories.helpers import GUNILLA, HANNA, JONNA, audit_entries
from tests.portal.conftest import RunningPortal
from tests.portal.paging import summary, walk, walk_pages
from tests.portal.placements.helpers import register
from tests.portal.sessions import client_as

MADE = 52
ROW = r'<a href="/placements/([0-9a-f-]{36})"'


def test_the_register_pages_filters_and_keeps_tenants_apart(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    made = []
    for n in range(MADE):
        section = "sol" if n % 10 == 0 else "lvu-3"
        made.append(register(hanna, legal_section=section))
    planned = register(hanna, starts_on=(date.today() + timedelta(days=5)).isoformat())
    ended = register(hanna, ends_on=(date.today() - timedelta(days=2)).isoformat())
    made += [planned, ended]
    expected = list(reversed(made))
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    theirs = register(gunilla)

    # API: 9 at a time, each once, newest change first; Gävle sees only its own.
    ids, sizes, total = walk(hanna, "/api/v1/placements", {"limit": 9})
    assert ids == expected and total == str(MADE + 2) and sizes == [9] * 6
    assert walk(gunilla, "/api/v1/placements", {})[0] == [theirs]
    assert (
        client_as(portal.url, portal.settings, JONNA).get("/api/v1/placements").status_code == 403
    )

    # A placement registered between page loads shifts nothing.
    first = hanna.get("/api/v1/placements", params={"limit": 10})
    fresh = register(hanna)
    second = hanna.get(first.headers["link"].split(">")[0].lstrip("<"))
    assert [p["id"] for p in first.json() + second.json()] == expected[:20]
    expected = [fresh, *expected]

    # The page: 50, then the rest; each page audited with the placements it showed.
    shown, lines = walk_pages(hanna, "/placements/", ROW)
    assert list(dict.fromkeys(shown)) == expected
    assert lines[-1] == f"Visar 51–{len(expected)} av {len(expected)} placeringar, nyaste först."
    listed = audit_entries(portal.settings, "placement.list")[-2:]
    assert [e.details["placements"] for e in listed] == [expected[:50], expected[50:]]

    # Filters: status on today's date, legal basis, the day registered or changed.
    def ids_where(**params: object) -> list[str]:
        return walk(hanna, "/api/v1/placements", {"limit": 200, **params})[0]

    assert ids_where(status="planned") == [planned] and ids_where(status="ended") == [ended]
    assert ids_where(status="active") == [i for i in expected if i not in (planned, ended)]
    assert ids_where(legal_basis="sol") == [i for i in expected if i in made[:MADE:10]]
    assert ids_where(legal_basis="lvm") == []
    today = datetime.now(STOCKHOLM).date()
    assert (
        ids_where(date_from=today - timedelta(days=1), date_to=today + timedelta(days=1))
        == expected
    )
    assert ids_where(date_to=today - timedelta(days=2)) == []
    page = hanna.get("/placements/", params={"status": "planned"})
    assert summary(page.text) == "Visar 1–1 av 1 placeringar, nyaste först."

    # A cursor that is not one: 400 in Swedish.
    bad = hanna.get("/api/v1/placements", params={"before": "inte-en-markering"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "before"
    assert hanna.get("/placements/", params={"before": "x"}).status_code == 400
    assert hanna.get("/api/v1/placements", params={"status": "gammal"}).status_code == 400
