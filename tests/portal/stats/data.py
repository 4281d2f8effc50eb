"""A small, hand-countable set of incident reports for the statistics tests.

Eight reports around the first tertial of 2017 (January–April, Stockholm time). Six fall inside
it; the expected figures in the tests are counted by hand from this table:

#  municipality  list  category  on call  min  actions                           Stockholm time
1  Hudiksvall    2017  0_12_ar   yes       90  skyddsbedomning, ordf_besl_6_lvu  2017-02-10 03:00
2  Hudiksvall    2016  13_20_ar  no        30  -                                 2017-01-05 22:00
3  Gävle         2017  13_17_ar  no        45  upplys_hanvis, tillsyn_individ   2017-03-01 20:00
4  Annan kommun  2017  kvinna    yes       15  upplys_hanvis                     2017-03-15 02:00
5  Hudiksvall    2017  man       no        60  uppfoljning                       2017-04-30 23:30
6  Hudiksvall    2017  man       no       999  uppfoljning                       2017-05-01 00:00 T2
7  Hudiksvall    2016  man       no       999  uppfoljning                       2016-12-31 23:59
8  (none)        2017  familj    no        10  -                                 2017-04-02 12:00
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.models import Organisation, User
from portal.reports.models import Report, ReportAction
from portal.timefmt import STOCKHOLM

ROWS = (
    (
        "Hudiksvall",
        "2017",
        "0_12_ar",
        True,
        90,
        ("skyddsbedomning", "ordf_besl_6_lvu"),
        (2017, 2, 10, 3, 0),
    ),
    ("Hudiksvall", "2016", "13_20_ar", False, 30, (), (2017, 1, 5, 22, 0)),
    (
        "Gävle",
        "2017",
        "13_17_ar",
        False,
        45,
        ("upplys_hanvis", "tillsyn_individ"),
        (2017, 3, 1, 20, 0),
    ),
    ("Annan kommun", "2017", "kvinna", True, 15, ("upplys_hanvis",), (2017, 3, 15, 2, 0)),
    ("Hudiksvall", "2017", "man", False, 60, ("uppfoljning",), (2017, 4, 30, 23, 30)),
    ("Hudiksvall", "2017", "man", False, 999, ("uppfoljning",), (2017, 5, 1, 0, 0)),
    ("Hudiksvall", "2016", "man", False, 999, ("uppfoljning",), (2016, 12, 31, 23, 59)),
    (None, "2017", "familj", False, 10, (), (2017, 4, 2, 12, 0)),
)


async def org_ids(db: AsyncSession) -> dict[str, uuid.UUID]:
    """Organisation name -> id."""
    return {name: oid for oid, name in await db.execute(select(Organisation.id, Organisation.name))}


async def insert_reports(db: AsyncSession, rows: tuple[tuple[object, ...], ...] = ROWS) -> None:
    """Insert the rows above (no personal data: statistics never decrypt anything)."""
    orgs = await org_ids(db)
    author = await db.scalar(select(User.id).limit(1))
    assert author is not None
    for muni, version, category, on_call, minutes, actions, when in rows:
        assert isinstance(when, tuple) and isinstance(actions, tuple)
        report = Report(
            jour_id=orgs["Socialjouren Gävleborg"],
            author_id=author,
            municipality_id=orgs.get(str(muni)) if muni != "Annan kommun" else None,
            other_municipality="Uppsala" if muni == "Annan kommun" else None,
            code_list_version=version,
            occurred_at=datetime(*when, tzinfo=STOCKHOLM),
            on_call=on_call,
            initiator_code="polisen",
            category_code=category,
            character_code="barn_ungdom",
            minutes=minutes,
            child_involved=False,
            narrative_enc="not used by statistics",
            follow_up_requested=False,
        )
        db.add(report)
        await db.flush()
        for code in actions:
            db.add(ReportAction(report_id=report.id, action_code=str(code)))
    await db.flush()
