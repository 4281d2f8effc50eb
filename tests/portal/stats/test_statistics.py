"""Statistics against hand-computed figures (tests/portal/stats/data.py), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.engine import make_engine, make_sessionmaker
from portal.errors import InvalidInput
from portal.stats import periods
from portal.stats.service import Scope, Statistics, compute, populations, shown, suppress
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database
from tests.portal.stats.data import insert_reports, org_ids

T1_2017 = periods.Period("tertial", 2017, 1)
POP = populations()  # the shipped data: Hudiksvall 37,600, Gävle 103,700


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncSession]:
    await prepare_database(make_settings(tmp_path, database_url))
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session, session.begin():
        await insert_reports(session)
        yield session
    await engine.dispose()


async def _stats(db: AsyncSession, municipality: str | None = None) -> Statistics:
    orgs = await org_ids(db)
    scope = Scope(
        orgs["Socialjouren Gävleborg"],
        orgs[municipality] if municipality else None,
        municipality or "Socialjouren Gävleborg",
        False,
    )
    return await compute(db, scope, T1_2017, pop=POP)


async def test_key_figures_of_the_jour(db: AsyncSession) -> None:
    s = await _stats(db)
    figures = {f.key: f.value for f in s.key_figures}
    assert figures == {
        "cases": 6,  # reports 1-5 and 8
        "cases_without_action": 2,  # 2 and 8
        "on_call_cases": 2,  # 1 and 4
        "on_call_share": 33.3,
        "actions": 6,  # 2 + 0 + 2 + 1 + 1 + 0
        "phone_contacts": None,  # not recorded in Jourpost
        "visits": 1,  # report 3: tillsyn_individ
        "admin_hours": None,
        "action_hours": 4.2,  # (90 + 30 + 45 + 15 + 60 + 10) / 60 = 4.17
    }
    assert s.code_version == "2017"


async def test_a_split_code_is_counted_once_in_a_row_of_its_own(db: AsyncSession) -> None:
    s = await _stats(db)
    rows = {r.key: r.count for r in s.table("category").rows}
    assert rows["0_12_ar"] == 1
    assert rows["13_17_ar"] == 1  # report 3 only; report 2's 13-20 is not guessed into it
    assert rows["18_20_ar"] == 0
    assert rows["13_17_ar+18_20_ar"] == 1  # report 2, coded 13-20 under the 2016 list
    assert rows["kvinna"] == rows["man"] == rows["familj"] == 1
    assert s.table("category").total == 6
    split = next(r for r in s.table("category").rows if r.key == "13_17_ar+18_20_ar")
    assert "13–20 år" in split.label and "13–17 år" in split.label
    assert "13_20_ar" not in rows


async def test_actions_decisions_and_quality(db: AsyncSession) -> None:
    s = await _stats(db)
    actions = {r.key: r.count for r in s.table("action").rows}
    assert actions["upplys_hanvis"] == 2
    assert actions["uppfoljning"] == 1  # report 5 (23:30 on 30 April); 6 is in T2
    assert s.table("action").total == 6
    decisions = {r.key: r.count for r in s.table("decisions").rows}
    assert decisions["ordf_besl_6_lvu"] == 1
    assert sum(decisions.values()) == 1
    assert s.quality == ("1 ärenden saknar kommun.",)
    orgs = await org_ids(db)
    scope = Scope(orgs["Socialjouren Gävleborg"], None, "Socialjouren Gävleborg", False)
    partial = await compute(db, scope, T1_2017, pop={"Gävle": 103700})
    assert any(q.startswith("Folkmängd saknas för Bollnäs, Hofors") for q in partial.quality)


async def test_per_municipality_and_per_10000(db: AsyncSession) -> None:
    s = await _stats(db)
    by_name = {m.name: m for m in s.municipalities}
    hud = by_name["Hudiksvall"]
    assert (hud.cases, hud.on_call, hud.minutes) == (3, 1, 180)
    assert hud.per_10000 == 0.8  # 3 * 10,000 / 37,600 = 0.798
    assert by_name["Gävle"].cases == 1 and by_name["Gävle"].per_10000 == 0.1
    assert by_name["Annan kommun"].cases == 1 and by_name["Annan kommun"].per_10000 is None
    assert by_name["Okänd kommun"].cases == 1
    assert by_name["Ockelbo"].cases == 0
    assert sum(m.cases for m in s.municipalities) == 6


async def test_one_municipality_sees_only_its_cases(db: AsyncSession) -> None:
    s = await _stats(db, "Hudiksvall")
    assert s.figure("cases").value == 3
    assert s.figure("actions").value == 3
    assert s.figure("cases_without_action").value == 1
    assert [m.name for m in s.municipalities] == ["Hudiksvall"]


async def test_period_boundaries_are_midnight_in_stockholm(db: AsyncSession) -> None:
    orgs = await org_ids(db)
    scope = Scope(orgs["Socialjouren Gävleborg"], orgs["Hudiksvall"], "Hudiksvall", False)
    t2 = await compute(db, scope, periods.Period("tertial", 2017, 2), pop=POP)
    assert t2.figure("cases").value == 1  # report 6 at 00:00 on 1 May (22:00 UTC on 30 April)
    y2016 = await compute(db, scope, periods.Period("year", 2016), pop=POP)
    assert y2016.figure("cases").value == 1  # report 7 at 23:59 on New Year's Eve
    assert y2016.code_version == "2016"


def test_period_arithmetic() -> None:
    t2 = periods.Period("tertial", 2017, 2)
    assert t2.start == datetime(2017, 4, 30, 22, 0, tzinfo=UTC)  # CEST
    assert t2.end == datetime(2017, 8, 31, 22, 0, tzinfo=UTC)
    q1 = periods.parse("2017-K1")
    assert q1.start == datetime(2016, 12, 31, 23, 0, tzinfo=UTC)  # CET
    assert q1.end == datetime(2017, 3, 31, 22, 0, tzinfo=UTC)  # DST began 26 March
    assert periods.parse("2017").end == datetime(2017, 12, 31, 23, 0, tzinfo=UTC)
    assert periods.parse("2017-T3").label == "Tertial 3 2017"
    for bad in ("2017-T4", "17", "2017-X1", ""):
        with pytest.raises(InvalidInput):
            periods.parse(bad)
    assert [p.key for p in periods.recent("tertial", t2.start, 4)] == [
        "2017-T2",
        "2017-T1",
        "2016-T3",
        "2016-T2",
    ]


def test_small_counts_are_suppressed_with_a_complement() -> None:
    assert suppress([0, 3, 10, 7], 5) == ["0", "<5", "10", "<5"]  # 7 hides the lone 3
    assert suppress([2, 3, 10], 5) == ["<5", "<5", "10"]
    assert suppress([12, 5, 9], 5) == ["12", "5", "9"]
    assert suppress([1], 5) == ["<5"]
    assert shown(4, 5) == "<5" and shown(0, 5) == "0" and shown(4, None) == "4"
