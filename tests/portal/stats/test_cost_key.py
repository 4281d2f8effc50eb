"""The cost key per jour (issue 14, FR-G6) over HTTP on both databases.

The demo jour starts with Gävleborg's key (population only); its unit head changes it on the cost
page and through the API, audited with the old and new values; bad input is refused in Swedish
with nothing stored; a locked period keeps the key it was locked with; a jour without a key of
its own falls back to the instance's settings; nobody but the unit head sees or changes it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from portal.stats.models import CostKey
from tests.portal.conftest import RunningPortal
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.sessions import client_as
from tests.portal.stats.data import insert_reports, org_ids

ERIK, OLOF, ANDERS = "198507049818", "197104309831", "198311099876"
GAVLEBORG = {"population_percent": 100, "annual_sek": 7_714_000, "invoicing_period": "tertial"}
NORDOST = {"population_percent": 50, "annual_sek": 6_302_652, "invoicing_period": "tertial"}


@pytest.fixture
def site(portal: RunningPortal) -> Iterator[RunningPortal]:
    def work(db: AsyncSession) -> object:
        return insert_reports(db)

    with_db(portal.settings, work)  # type: ignore[arg-type]
    yield portal


def _csv(c: httpx.Client, period: str) -> dict[str, list[str]]:
    raw = c.get("/stats/costs/export.csv", params={"period": period})
    assert raw.status_code == 200
    rows = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig")), delimiter=";"))
    return {r[0]: r for r in rows if len(r) == 7} | {"_head": rows[1]}


def _key(c: httpx.Client) -> dict[str, Any]:
    got = c.get("/api/v1/stats/cost-key")
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_the_demo_jour_has_gavleborgs_key_and_its_unit_head_changes_it(site: RunningPortal) -> None:
    with closing(client_as(site.url, site.settings, ERIK)) as c:
        key = _key(c)
        assert {k: key[k] for k in GAVLEBORG} == GAVLEBORG and key["own"] is True
        page = c.get("/stats/costs", params={"period": "2017-T1"}).text
        assert "Jourens egen nyckel" in page and "100 % efter folkmängd" in page
        before = _csv(c, "2017-T1")
        assert before["_head"] == ["Fördelning: 100 % efter folkmängd, 0 % efter använd tid"]
        hud = before["Hudiksvall"]
        assert hud[2] == "180" and hud[5] == hud[3]  # population only: share = population share
        amounts = [int(r[6]) for name, r in before.items() if name not in ("_head", "Kommun")]
        assert sum(amounts) == round(7_714_000 * 4 / 12)

        # On the page: the key is saved, the flash says so, the live basis follows it.
        saved = c.post(
            "/stats/costs/key",
            data={
                "_csrf_token": c.cookies["csrftoken"],
                "period": "2017-T1",
                "population_percent": "50",
                "annual_sek": "6 302 652",
                "invoicing_period": "tertial",
            },
        )
        assert saved.status_code == 303
        assert saved.headers["location"] == "/stats/costs?period=2017-T1&flash=key"
        page = c.get(saved.headers["location"]).text
        assert "Fördelningsnyckeln är sparad." in page and "Erik Ek" in page
        assert {k: _key(c)[k] for k in NORDOST} == NORDOST
        after = _csv(c, "2017-T1")["Hudiksvall"]
        assert after[2] == "180" and after[5] != after[3]  # half by time now
    entry = audit_entries(site.settings, "costs.key")[-1]
    assert entry.details["before"] == {**GAVLEBORG, "own": True}
    assert entry.details["after"] == {**NORDOST, "own": True}
    assert entry.object_type == "cost_key" and entry.owner_org_id == entry.actor_org_id


def test_bad_keys_are_refused_in_swedish_and_nothing_is_stored(site: RunningPortal) -> None:
    with closing(client_as(site.url, site.settings, ERIK)) as c:
        entries = len(audit_entries(site.settings, "costs.key"))
        bad = c.post(
            "/stats/costs/key",
            data={
                "_csrf_token": c.cookies["csrftoken"],
                "population_percent": "150",
                "annual_sek": "-1",
                "invoicing_period": "month",
            },
        )
        assert bad.status_code == 422
        assert "heltal från 0 till 100" in bad.text and "i hela kronor" in bad.text
        assert "tertial, kvartal eller helår" in bad.text
        assert 'value="150"' in bad.text  # the person's input comes back to be corrected
        # One bad field is enough to store nothing of the others.
        half = c.post(
            "/stats/costs/key",
            data={
                "_csrf_token": c.cookies["csrftoken"],
                "population_percent": "30",
                "annual_sek": "mycket",
                "invoicing_period": "quarter",
            },
        )
        assert half.status_code == 422
        problem = c.put("/api/v1/stats/cost-key", json={**NORDOST, "population_percent": -5})
        assert problem.status_code == 422
        assert problem.headers["content-type"].startswith("application/problem+json")
        fields = {e["field"] for e in problem.json()["errors"]}
        assert fields == {"population_percent"}
        wrong_type = c.put("/api/v1/stats/cost-key", json={**NORDOST, "annual_sek": "x"})
        assert wrong_type.status_code == 400
        assert {k: _key(c)[k] for k in GAVLEBORG} == GAVLEBORG
        assert len(audit_entries(site.settings, "costs.key")) == entries


def test_a_locked_period_keeps_the_key_it_was_locked_with(site: RunningPortal) -> None:
    with closing(client_as(site.url, site.settings, ERIK)) as c:
        locked = c.post(
            "/stats/costs/lock", data={"period": "2017-T1", "_csrf_token": c.cookies["csrftoken"]}
        )
        assert locked.status_code == 303
        frozen = _csv(c, "2017-T1")
        changed = c.put("/api/v1/stats/cost-key", json={**NORDOST, "invoicing_period": "quarter"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["invoicing_period"] == "quarter" and changed.json()["own"] is True
        assert _csv(c, "2017-T1") == frozen  # the key used is part of the frozen basis
        page = c.get("/stats/costs", params={"period": "2017-T1"}).text
        assert "Fördelningsnyckel när perioden låstes: 100 % efter folkmängd" in page
        assert "Årskostnad 7 714 000 kr" in page
        # An open period follows the new key, and the default period is now a quarter.
        assert _csv(c, "2017-K1")["_head"] == [
            "Fördelning: 50 % efter folkmängd, 50 % efter använd tid"
        ]
        assert "Kostnadsfördelning: Kvartal" in c.get("/stats/costs").text
    lock = audit_entries(site.settings, "costs.lock")[-1]
    assert lock.details["key"] == GAVLEBORG


def test_a_jour_without_a_key_uses_the_settings_and_only_its_unit_head_sees_it(
    site: RunningPortal,
) -> None:
    async def forget(db: AsyncSession) -> None:
        await db.execute(delete(CostKey))

    with_db(site.settings, forget)
    with closing(client_as(site.url, site.settings, ERIK)) as c:
        key = _key(c)
        assert key["own"] is False and key["updated_at"] is None
        assert key["population_percent"] == site.settings.cost_population_percent
        assert key["annual_sek"] == site.settings.cost_annual_sek
        assert key["invoicing_period"] == site.settings.cost_period
        assert "ingen egen nyckel" in c.get("/stats/costs").text
    jour = str(with_db(site.settings, org_ids)["Socialjouren Gävleborg"])
    assert key["jour_id"] == jour
    for who in (OLOF, ANDERS):  # a chair and an archivist see statistics, not the costs
        with closing(client_as(site.url, site.settings, who)) as c:
            assert c.get("/api/v1/stats/cost-key").status_code == 403
            assert c.put("/api/v1/stats/cost-key", json=NORDOST).status_code == 403
            form = {"_csrf_token": c.cookies["csrftoken"], "population_percent": "0"}
            assert c.post("/stats/costs/key", data=form).status_code == 403
    assert audit_entries(site.settings, "costs.key")[-1].details.get("source") == "demo"
