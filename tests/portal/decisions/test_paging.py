"""The decision list grows (every night's decisions, kept for years): keyset pages by (oral
decision, id), newest first, 50 at a time, with filters; it used to stop at 500.

SQLite and PostgreSQL: every page walked (API and HTML), a decision drafted between page loads,
decisions with the very same oral-decision time, filters, tenancy (a municipality never sees the
jour's drafts nor another municipality's decisions) and a bad cursor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.rosters.models import RosterVersion
from portal.timefmt import STOCKHOLM
from tests.portal.advisories.helpers import run
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    GUNILLA,
    GUSTAV,
    HANNA,
    OLOF,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.paging import summary, walk, walk_pages
from tests.portal.sessions import client_as

MADE = 54
ROW = r'<td data-label="Beslut"><a href="/decisions/([0-9a-f-]{36})">'


async def _roster_posted_yesterday(db: AsyncSession) -> None:
    await db.execute(update(RosterVersion).values(created_at=datetime.now(UTC) - timedelta(days=1)))


def test_the_decision_list_pages_filters_and_keeps_tenants_apart(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    run(portal.settings, _roster_posted_yesterday)  # so it was in force at every decision
    jonna = jour_client(portal)
    now = datetime.now(UTC).replace(microsecond=0)
    made: list[tuple[datetime, str]] = []
    for n in range(MADE):
        # Decided n minutes ago; the first six share one moment (the id breaks the tie).
        at = now - timedelta(minutes=max(n, 5))
        r = jonna.post("/api/v1/decisions", json=draft_body(known, oral_decision_at=at.isoformat()))
        assert r.status_code == 201, r.text
        made.append((at, r.json()["id"]))
    expected = [i for _, i in sorted(made, key=lambda m: (m[0], uuid.UUID(m[1])), reverse=True)]

    # API: 8 at a time, every decision once, newest oral decision first.
    ids, sizes, total = walk(jonna, "/api/v1/decisions", {"limit": 8})
    assert ids == expected and total == str(MADE) and sizes == [8] * 6 + [MADE - 48]

    # A decision drafted between two page loads (decided now: newest) shifts nothing.
    first = jonna.get("/api/v1/decisions", params={"limit": 10})
    fresh = jonna.post("/api/v1/decisions", json=draft_body(known)).json()["id"]
    second = jonna.get(first.headers["link"].split(">")[0].lstrip("<"))
    assert [d["id"] for d in first.json() + second.json()] == expected[:20]
    expected = [fresh, *expected]

    # The page: "Visar 1–50 av 55", "Nästa sida" to the last five, each once, in order.
    shown, lines = walk_pages(jonna, "/decisions/", ROW)
    assert shown == expected
    assert lines == [
        f"Visar 1–50 av {MADE + 1} beslut, nyaste först. Listan fortsätter på nästa sida.",
        f"Visar 51–{MADE + 1} av {MADE + 1} beslut, nyaste först.",
    ]

    # Five sent for signature: the municipality sees those and no drafts; Gävle sees nothing.
    sent = expected[10:15]
    for d in sent:
        assert jonna.post(f"/api/v1/decisions/{d}/submit").status_code == 200, d
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert walk(hanna, "/api/v1/decisions", {"limit": 2})[0] == sent
    for other in (GUNILLA, GUSTAV):
        gavle = client_as(portal.url, portal.settings, other)
        assert walk(gavle, "/api/v1/decisions", {})[0] == []
        assert "Inga beslut." in gavle.get("/decisions/").text
    olof = client_as(portal.url, portal.settings, OLOF)  # the decision maker: his drafts too
    assert walk(olof, "/api/v1/decisions", {"limit": 200})[0] == expected

    # Filters: status, the committee's list, kind, municipality, the day of the oral decision.
    def ids_where(**params: object) -> list[str]:
        return walk(jonna, "/api/v1/decisions", {"limit": 200, **params})[0]

    assert ids_where(status="awaiting_signature") == sent
    assert ids_where(status="to_report") == sent
    assert ids_where(status="draft") == [d for d in expected if d not in sent]
    assert ids_where(kind="lvu6") == expected and ids_where(kind="lvm13") == []
    assert ids_where(municipality=str(known["Hudiksvall"])) == expected
    assert ids_where(municipality=str(known["Gävle"])) == []
    today = datetime.now(STOCKHOLM).date()
    around = {"date_from": today - timedelta(days=1), "date_to": today + timedelta(days=1)}
    assert ids_where(**around) == expected
    assert ids_where(date_to=today - timedelta(days=2)) == []
    page = jonna.get("/decisions/", params={"status": "awaiting_signature"})
    assert summary(page.text) == "Visar 1–5 av 5 beslut, nyaste först."
    assert 'value="awaiting_signature" selected' in page.text
    assert '<label for="filter-municipality">Kommun</label>' in page.text

    # A cursor that is not one: 400 in Swedish (problem details, and a page).
    bad = jonna.get("/api/v1/decisions", params={"before": "x" * 30})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "before"
    page_bad = jonna.get("/decisions/", params={"before": "MjAyNg"})
    assert page_bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in page_bad.text
    assert jonna.get("/api/v1/decisions", params={"limit": 0}).status_code == 400
    assert jonna.get("/api/v1/decisions", params={"status": "klar"}).status_code == 400
