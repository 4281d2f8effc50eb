"""The plan's SQL and the Python judgement agree on every record, for every type.

Retention asks each type two ways: `retention_rows` (SQL: which records the plan selects, pages
and counts, by anchor, busy flag and organisation) and `lifecycles` / `lifecycle` (Python: owner,
anchor and in-progress reason of a page's records, or of one record for a legal hold). Records
of every type are built in the states where the two could part (an advisory withdrawn after its
end, open and closed assignments and police requests, an ongoing placement, a draft decision, a
report owned by the jour, roster versions whose last period ends long after their creation or
that have no entries), and for each record the single `lifecycle` equals what `lifecycles`
gives, its anchor and in-progress flag equal the SQL row's, and a record whose time can run out
is in its owner's plan. SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories.models import Advisory
from portal.assignments.models import Assignment
from portal.decisions.models import Decision
from portal.placements.models import Placement
from portal.police.models import PoliceRequest
from portal.reports.models import Report
from portal.retention import service
from portal.rosters import records as roster_records
from portal.rosters.models import RosterEntry, RosterVersion
from tests.portal.retention import test_sample as sample
from tests.portal.retention.helpers import seeded

NOW = sample.NOW


@dataclass
class World:
    d: sample.Db
    ids: dict[str, uuid.UUID]
    """Each record built, by a name saying its state."""


async def _roster(
    d: sample.Db,
    s: AsyncSession,
    number: int,
    *,
    created_months_ago: int,
    periods: list[tuple[int, int]],
) -> uuid.UUID:
    """A roster version of Hudiksvall made `created_months_ago`, with a period per (from, to)
    in months from now (negative: in the past)."""
    v = RosterVersion(
        id=uuid.uuid4(),
        municipality_id=d.hud,
        number=number,
        created_by=d.user,
        created_at=service.add_months(NOW, -created_months_ago),
    )
    s.add(v)
    await s.flush()
    for position, (start, end) in enumerate(periods, start=1):
        s.add(
            RosterEntry(
                version_id=v.id,
                user_id=d.user,
                function="chair",
                position=position,
                valid_from=service.add_months(NOW, start),
                valid_to=service.add_months(NOW, end),
                phone_enc="",
            )
        )
    return v.id


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with seeded(database_url, tmp_path) as w:
        world = await _build(
            sample.Db(
                w.maker, w.vault, w.files, w.orgs["Socialjouren Gävleborg"],
                w.orgs["Hudiksvall"], w.user,
            )
        )  # fmt: skip
        yield world


async def _build(d: sample.Db) -> World:
    """The records of every type in the states where the plan and the judgement could differ."""
    async with d.maker() as s, s.begin():
        ids: dict[str, uuid.UUID] = {}
        for kind, make in sample.MAKERS.items():
            ids[f"{kind}_closed"] = await make(d, s, [sample.BORN_10TH])
        ids["advisory_withdrawn_late"] = await sample._advisory(d, s, [sample.BORN_10TH])
        ids["assignment_open"] = await sample._assignment(d, s, [])
        ids["assignment_withdrawn"] = await sample._assignment(d, s, [])
        ids["placement_ongoing"] = await sample._placement(d, s, [sample.BORN_10TH])
        ids["police_open"] = await sample._police(d, s, [sample.BORN_10TH])
        ids["decision_draft"] = await sample._decision(d, s, [])
        ids["report_of_the_jour"] = await sample._report(d, s, [])
        await s.flush()
        advisory = await s.get(Advisory, ids["advisory_withdrawn_late"])
        assert advisory is not None
        advisory.withdrawn_at = advisory.valid_until + timedelta(days=40)
        open_one = await s.get(Assignment, ids["assignment_open"])
        assert open_one is not None
        open_one.status, open_one.outcome_at, open_one.outcome_by = "sent", None, None
        withdrawn = await s.get(Assignment, ids["assignment_withdrawn"])
        assert withdrawn is not None
        withdrawn.status, withdrawn.outcome_at, withdrawn.outcome_by = "withdrawn", None, None
        withdrawn.withdrawn_at = sample.OLD + timedelta(days=3)
        ongoing = await s.get(Placement, ids["placement_ongoing"])
        assert ongoing is not None
        ongoing.ends_on = None
        police = await s.get(PoliceRequest, ids["police_open"])
        assert police is not None
        police.status = "sent"
        draft = await s.get(Decision, ids["decision_draft"])
        assert draft is not None
        draft.status = "draft"
        jours = await s.get(Report, ids["report_of_the_jour"])
        assert jours is not None
        jours.municipality_id, jours.other_municipality = None, "Ockelbo"
        # Rosters (a rule of 24 months from the end of the last period): made 30 months ago but
        # in force until a month ago (due by its creation, not by its period); made long ago,
        # its periods long over; made 27 months ago without any entry; the newest, in force.
        ids["roster_long_period"] = await _roster(
            d, s, 1, created_months_ago=30, periods=[(-30, -20), (-20, -1)]
        )
        ids["roster_over"] = await _roster(
            d, s, 2, created_months_ago=40, periods=[(-40, -30), (-38, -26)]
        )
        ids["roster_empty"] = await _roster(d, s, 3, created_months_ago=27, periods=[])
        ids["roster_newest"] = await _roster(d, s, 4, created_months_ago=0, periods=[(0, 6)])
    return World(d, ids)


def _type_of(name: str) -> str:
    return next(t for t in service.TYPES if name.startswith(t.split("_")[0]))


async def test_sql_rows_lifecycles_and_lifecycle_agree_for_every_record(world: World) -> None:
    async with world.d.maker() as s, s.begin():
        for t in service.TYPES:
            names = {i: n for n, i in world.ids.items() if _type_of(n) == t}
            assert names, t
            source = service.RECORDS[t]
            anchored = source.retention_rows(None)
            rows = {
                record_id: (anchored.from_sql(anchor), bool(busy))
                for record_id, anchor, busy in await s.execute(anchored.rows)
            }
            lives = {life.record_id: life for life in await source.lifecycles(s, list(names))}
            assert set(lives) == set(names), t
            for record_id, name in names.items():
                life = lives[record_id]
                assert await source.lifecycle(s, record_id) == life, name
                assert rows[record_id] == (life.anchor, life.in_progress is not None), name
                if life.in_progress is None:
                    # A record whose time can run out is in its owner's plan (the /retention
                    # page's, which culls the organisation's records).
                    owners = await s.scalars(
                        select(source.retention_rows(life.owner_org_id).rows.subquery().c.id)
                    )
                    assert record_id in set(owners), name


async def test_a_roster_runs_from_the_end_of_its_last_period_for_holds_and_plan_alike(
    world: World,
) -> None:
    rosters = service.RECORDS["roster"]
    months = service.load_rules()["roster"].after_months
    long_period = world.ids["roster_long_period"]
    async with world.d.maker() as s, s.begin():
        one = await rosters.lifecycle(s, long_period)
        (many,) = await rosters.lifecycles(s, [long_period])
        empty = await rosters.lifecycle(s, world.ids["roster_empty"])
        newest = await rosters.lifecycle(s, world.ids["roster_newest"])
        assert await rosters.lifecycle(s, uuid.uuid4()) is None
        plan = {
            c.record_id: c
            async for c in service.iter_plan(
                s,
                world.d.vault,
                world.d.files.store,
                service.load_rules(),
                now=NOW,
                org_id=world.d.hud,
            )
        }
    end = service.add_months(NOW, -1)
    assert one is not None and one == many
    assert one.anchor == end and one.owner_org_id == world.d.hud and one.in_progress is None
    assert service.add_months(one.anchor, months) > NOW  # not due, though made 30 months ago
    assert long_period not in plan
    assert empty is not None and empty.anchor == service.add_months(NOW, -27)
    assert plan[world.ids["roster_empty"]].action == "cull"  # no period: from its creation
    assert plan[world.ids["roster_over"]].due_at == service.add_months(NOW, -26 + months)
    assert newest is not None and newest.in_progress == roster_records.CURRENT
