"""The handler's list of sent advisories grows (a municipality posts hundreds a year): keyset
pages by (posted, id), newest first, 50 at a time, with filters; it used to stop at 200.

Walks every page (API and HTML), inserts between page loads, gives ten advisories the very same
posting time (the id breaks the tie), and checks filters, tenancy, the audit of each page and a
bad cursor. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories.models import Advisory
from portal.timefmt import STOCKHOLM
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    GUNILLA,
    HANNA,
    audit_entries,
    body,
    expire,
    iso,
    run,
)

MADE = 53


def walk(client: httpx.Client, params: dict[str, Any]) -> tuple[list[str], list[int], str]:
    """Follow the API's Link headers from the first page; ids in order, page sizes, total."""
    ids: list[str] = []
    sizes: list[int] = []
    url: str | None = "/api/v1/advisories"
    query: dict[str, Any] | None = params
    total = ""
    while url:
        r = client.get(url, params=query)
        assert r.status_code == 200, r.text
        total = r.headers["x-total-count"]
        ids += [a["id"] for a in r.json()]
        sizes.append(len(r.json()))
        link = r.headers.get("link")
        found = re.match(r"<([^>]+)>; rel=\"next\"", link) if link else None
        url, query = (found.group(1), None) if found else (None, None)
    return ids, sizes, total


def _same_time(jp: AdvisoryPortal, ids: list[str], at: datetime) -> None:
    async def set_time(db: AsyncSession) -> None:
        await db.execute(
            update(Advisory)
            .where(Advisory.id.in_([uuid.UUID(i) for i in ids]))
            .values(created_at=at)
        )

    run(jp.settings, set_time)


def test_the_sent_list_pages_filters_and_keeps_tenants_apart(jp: AdvisoryPortal) -> None:
    hanna, gunilla = jp.client(HANNA), jp.client(GUNILLA)
    made = []
    for n in range(MADE):
        basis = "lvm" if n % 10 == 0 else "lvu"
        r = hanna.post("/api/v1/advisories", json=body(legal_basis=basis))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    theirs = gunilla.post("/api/v1/advisories", json=body()).json()["id"]
    # Ten in the middle posted at the very same moment: the id orders them.
    tied = made[20:30]
    posted = {a["id"]: a["created_at"] for a in hanna.get("/api/v1/advisories?limit=200").json()}
    _same_time(jp, tied, datetime.fromisoformat(posted[made[20]]))
    newer = list(reversed(made[30:]))
    older = list(reversed(made[:20]))
    expected = newer + sorted(tied, key=lambda i: uuid.UUID(i).hex, reverse=True) + older

    # API: 7 at a time, each advisory once, in order; Gävle's never.
    ids, sizes, total = walk(hanna, {"view": "sent", "limit": 7})
    assert ids == expected and total == str(MADE) and theirs not in ids
    assert sizes == [7] * 7 + [MADE - 49]
    assert walk(gunilla, {"limit": 200})[0] == [theirs]

    # A new advisory between two page loads shifts nothing: the next page goes on where the
    # first ended, and the new one is first in a fresh walk.
    first = hanna.get("/api/v1/advisories", params={"limit": 10})
    assert [a["id"] for a in first.json()] == expected[:10]
    fresh = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    link = re.match(r"<([^>]+)>", first.headers["link"])
    assert link is not None
    second = hanna.get(link.group(1))
    assert [a["id"] for a in second.json()] == expected[10:20]
    assert second.headers["x-total-count"] == str(MADE + 1)
    expected = [fresh, *expected]

    # The page: 50 cards, "Visar 1–50 av 54", then the next page with the last 4.
    page = hanna.get("/advisories/")
    assert page.status_code == 200
    assert page.text.count('<li class="card">') == 50
    assert f"Visar 1–50 av {MADE + 1} aviseringar" in page.text
    shown = re.findall(r'<h2><a href="/advisories/([0-9a-f-]{36})">', page.text)
    nxt = re.search(
        r'<a class="button" rel="next" href="(/advisories/\?[^"]+)">Nästa sida', page.text
    )
    assert nxt is not None
    page2 = hanna.get(nxt.group(1).replace("&amp;", "&"))
    assert f"Visar 51–{MADE + 1} av {MADE + 1} aviseringar" in page2.text
    assert "Nästa sida" not in page2.text and "Första sidan" in page2.text
    shown += re.findall(r'<h2><a href="/advisories/([0-9a-f-]{36})">', page2.text)
    assert shown == expected
    # Each page is audited with the advisories it showed, as the list always was.
    listed = audit_entries(jp.settings, "advisory.list")
    assert [e.details["advisories"] for e in listed[-2:]] == [expected[:50], expected[50:]]

    # Filters: status, legal basis, unit, day posted (and a page of a filtered list keeps them).
    assert (
        hanna.post(f"/api/v1/advisories/{made[1]}/withdraw", json={"reason": "Fel"}).status_code
        == 204
    )
    expire(jp.settings, made[2], timedelta(hours=1))
    soon = hanna.post("/api/v1/advisories", json=body(valid_until=iso(timedelta(days=1))))
    expected = [soon.json()["id"], *expected]

    def ids_where(**params: Any) -> list[str]:
        return walk(hanna, {"limit": 200, **params})[0]

    assert ids_where(status="withdrawn") == [made[1]]
    assert ids_where(status="expired") == [made[2]]
    assert ids_where(status="expiring") == [soon.json()["id"]]
    active = ids_where(status="active")
    assert made[1] not in active and made[2] not in active and len(active) == len(expected) - 2
    lvm = [i for i in expected if i in made[::10]]
    assert ids_where(legal_basis="lvm") == lvm
    unit_ids = re.findall(r'<option value="([0-9a-f-]{36})"', page.text)
    assert unit_ids, "the unit filter offers the municipality's units"
    with_unit = {u: ids_where(unit=u) for u in unit_ids}
    assert sorted(len(v) for v in with_unit.values())[-1] == len(expected)  # Hanna's own unit
    assert all(v == [] or v == expected for v in with_unit.values())
    today = datetime.now(STOCKHOLM).date()
    assert ids_where(date_to="2020-01-01") == []
    around = {"date_from": today - timedelta(days=1), "date_to": today + timedelta(days=1)}
    assert ids_where(**around) == expected
    assert ids_where(date_from=today + timedelta(days=2)) == []
    filtered = hanna.get("/advisories/", params={"status": "active"})
    summary = re.search(r'<p class="paging-summary"[^>]*>([^<]*)', filtered.text)
    assert summary is not None and summary.group(1).startswith("Visar 1–50 av"), summary
    assert 'value="active" selected' in filtered.text
    nxt = re.search(r'rel="next" href="(/advisories/\?[^"]+)"', filtered.text)
    assert nxt is not None and "status=active" in nxt.group(1)
    rest = hanna.get(nxt.group(1).replace("&amp;", "&")).text
    on_pages = re.findall(r'<h2><a href="/advisories/([0-9a-f-]{36})">', filtered.text + rest)
    assert on_pages == active

    # Bad input is the client's mistake, in Swedish: a cursor that is not one is 400.
    bad = hanna.get("/api/v1/advisories", params={"before": "igår"})
    assert bad.status_code == 400, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "before"
    page_bad = hanna.get("/advisories/", params={"before": "AAAA"})
    assert page_bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in page_bad.text
    assert hanna.get("/api/v1/advisories", params={"limit": 201}).status_code == 400
    assert hanna.get("/api/v1/advisories", params={"status": "gammal"}).status_code == 400
    assert hanna.get("/advisories/", params={"unit": "enhet"}).status_code == 400


def test_the_jours_night_view_pages_every_active_advisory(jp: AdvisoryPortal) -> None:
    """The jour's list of active advisories from every member municipality (it stopped at 200
    without saying so): 50 a page, newest first, each page audited; withdrawn ones left out."""
    from tests.portal.advisories.helpers import JONNA
    from tests.portal.paging import walk_pages

    hanna, gunilla, jonna = jp.client(HANNA), jp.client(GUNILLA), jp.client(JONNA)
    made = [hanna.post("/api/v1/advisories", json=body()).json()["id"] for _ in range(MADE)]
    made.append(gunilla.post("/api/v1/advisories", json=body()).json()["id"])
    gone = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    assert hanna.post(
        f"/api/v1/advisories/{gone}/withdraw", json={"reason": "Fel"}
    ).status_code == (204)
    expected = list(reversed(made))

    ids, sizes, total = walk(jonna, {"view": "jour", "limit": 20})
    assert ids == expected and total == str(MADE + 1) and gone not in ids
    assert sizes == [20, 20, MADE + 1 - 40]

    shown, lines = walk_pages(
        jonna, "/jour/advisories", r'<h2><a href="/advisories/([0-9a-f-]{36})">'
    )
    assert shown == expected
    assert lines == [
        f"Visar 1–50 av {MADE + 1} aviseringar, nyaste först. Listan fortsätter på nästa sida.",
        f"Visar 51–{MADE + 1} av {MADE + 1} aviseringar, nyaste först.",
    ]
    listed = audit_entries(jp.settings, "advisory.list")
    assert [(e.details["scope"], e.details["advisories"]) for e in listed[-2:]] == [
        ("jour", expected[:50]),
        ("jour", expected[50:]),
    ]
    assert jonna.get("/jour/advisories", params={"before": "x"}).status_code == 400
