"""The research sample judged a page at a time (`persons_named_many`), not a query per record.

Records of every type that retention knows are built directly in the database, all due, some
naming a person born on an exempt day (the research sample) in the ways each type names people
(a report's several subjects, an advisory's subjects of every version, a placement's versions, a
decision's subject, an assignment's and a police request's person; a coordination number's day
is the day + 60), the others naming someone else or no one. One plan keeps exactly the first and
culls the others; a page of the plan runs the same statements whether it holds 3 due records or
30, for each type; and a list of ids longer than one `IN` list is read in chunks. SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.advisories.models import Advisory, AdvisorySubject, AdvisoryVersion
from portal.assignments.models import Assignment
from portal.audit.service import ANONYMOUS
from portal.db.base import utcnow
from portal.decisions.models import Decision
from portal.pii import Vault, field_context
from portal.placements.models import Placement, PlacementVersion
from portal.police.models import PoliceRequest
from portal.records import IN_CHUNK
from portal.reports import records as reports
from portal.reports.models import Report, ReportSubject
from portal.retention import service
from portal.rosters.models import RosterEntry, RosterVersion
from tests.portal.retention.helpers import seeded

NOW = utcnow()
OLD = service.add_months(NOW, -84)  # seven years ago: every type's time is up
# Fictitious personnummer: born on the 15th (exempt), the 10th and the 3rd (not), and a
# coordination number for someone born on the 15th (day 75).
BORN_15TH, BORN_10TH, BORN_3RD, COORD_15TH = (
    "198001159811",
    "198001109816",
    "198001039817",
    "198001759812",
)
SAMPLED = (15,)


@dataclass
class Db:
    maker: async_sessionmaker[AsyncSession]
    vault: Vault
    files: Any
    jour: uuid.UUID
    hud: uuid.UUID
    user: uuid.UUID


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Db]:
    async with seeded(database_url, tmp_path) as w:
        yield Db(
            w.maker, w.vault, w.files, w.orgs["Socialjouren Gävleborg"], w.orgs["Hudiksvall"],
            w.user,
        )  # fmt: skip


def _rules() -> dict[str, service.Rule]:
    """The default rules with the research sample (born on the 15th) for every type."""
    return {t: replace(r, exempt_birth_days=SAMPLED) for t, r in service.load_rules().items()}


# --- records of each type, naming these persons (None: a subject of unknown identity) ---------


async def _advisory(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    """An expired advisory; person i is a subject of version i + 1 (every version counts)."""
    a = Advisory(
        id=uuid.uuid4(),
        organisation_id=d.hud,
        jour_id=d.jour,
        created_by=d.user,
        status="active",
        current_version=max(1, len(persons)),
        content_version=1,
        valid_until=OLD,
        legal_basis="sol",
    )
    s.add(a)
    await s.flush()
    for n in range(max(1, len(persons))):
        s.add(
            AdvisoryVersion(
                advisory_id=a.id,
                version=n + 1,
                kind="created" if n == 0 else "amended",
                created_by=d.user,
                valid_until=OLD,
                legal_basis="sol",
                content_enc="x",
            )
        )
    for n, pnr in enumerate(persons):
        assert pnr is not None  # an advisory's subject always has a personnummer
        sid = uuid.uuid4()
        enc = d.vault.encrypt(pnr, field_context(AdvisorySubject.pnr_enc, sid))
        s.add(
            AdvisorySubject(
                id=sid, advisory_id=a.id, version=n + 1, position=0, pnr_index="i", pnr_enc=enc
            )
        )
    return a.id


async def _report(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    r = Report(
        id=uuid.uuid4(),
        jour_id=d.jour,
        author_id=d.user,
        municipality_id=d.hud,
        code_list_version="2017",
        occurred_at=OLD,
        on_call=False,
        initiator_code="polisen",
        category_code="man",
        character_code="boende",
        minutes=10,
        child_involved=False,
        narrative_enc="x",
        follow_up_requested=False,
    )
    s.add(r)
    await s.flush()
    for n, pnr in enumerate(persons):
        sid = uuid.uuid4()
        enc = (
            None if pnr is None else d.vault.encrypt(pnr, field_context(ReportSubject.pnr_enc, sid))
        )
        s.add(
            ReportSubject(
                id=sid,
                report_id=r.id,
                position=n,
                identity_unknown=pnr is None,
                pnr_index=None if pnr is None else "i",
                pnr_enc=enc,
            )
        )
    return r.id


async def _decision(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    """A delivered decision whose subject has the (first) personnummer, or none."""
    did = uuid.uuid4()
    subject = {"name": "Testperson", "pnr": persons[0] if persons else None}
    s.add(
        Decision(
            id=did,
            kind="lvu6",
            municipality_id=d.hud,
            jour_id=d.jour,
            status="delivered",
            subject_enc=d.vault.encrypt(
                json.dumps(subject), field_context(Decision.subject_enc, did)
            ),
            content_enc="x",
            oral_decision_at=OLD,
            decision_maker_id=d.user,
            decision_maker_function="chair",
            drafted_by=d.user,
        )
    )
    return did


async def _assignment(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    """A done assignment about the (first) person, or about no one identified."""
    aid = uuid.uuid4()
    pnr = persons[0] if persons else None
    s.add(
        Assignment(
            id=aid,
            organisation_id=d.hud,
            jour_id=d.jour,
            created_by=d.user,
            created_at=OLD,
            kind="call",
            due_at=OLD,
            status="done",
            content_enc="x",
            pnr_index=None if pnr is None else "i",
            pnr_enc=None
            if pnr is None
            else d.vault.encrypt(pnr, field_context(Assignment.pnr_enc, aid)),
            outcome_by=d.user,
            outcome_at=OLD,
        )
    )
    return aid


async def _placement(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    """An ended placement; person i is named by version i + 1 (every version counts)."""
    ended: date = OLD.date()
    p = Placement(
        id=uuid.uuid4(),
        organisation_id=d.hud,
        jour_id=d.jour,
        created_by=d.user,
        current_version=len(persons),
        legal_basis="lvu",
        legal_section="lvu-6",
        starts_on=ended - timedelta(days=30),
        ends_on=ended,
    )
    s.add(p)
    await s.flush()
    for n, pnr in enumerate(persons):
        assert pnr is not None  # a placement always names its person
        vid = uuid.uuid4()
        s.add(
            PlacementVersion(
                id=vid,
                placement_id=p.id,
                version=n + 1,
                kind="created" if n == 0 else "amended",
                created_by=d.user,
                legal_basis="lvu",
                legal_section="lvu-6",
                starts_on=p.starts_on,
                ends_on=ended,
                pnr_index="i",
                pnr_enc=d.vault.encrypt(pnr, field_context(PlacementVersion.pnr_enc, vid)),
                content_enc="x",
            )
        )
    return p.id


async def _police(d: Db, s: AsyncSession, persons: list[str | None]) -> uuid.UUID:
    """An executed police request about the (first) person."""
    rid = uuid.uuid4()
    assert persons and persons[0] is not None  # a request always names its person
    s.add(
        PoliceRequest(
            id=rid,
            organisation_id=d.hud,
            jour_id=d.jour,
            created_by=d.user,
            created_at=OLD,
            act="lvu",
            purpose="transport",
            stat_code="handr_43_lvu",
            legal_check="ok",
            decided_by="jour",
            status="executed",
            status_at=OLD,
            pnr_index="i",
            pnr_enc=d.vault.encrypt(persons[0], field_context(PoliceRequest.pnr_enc, rid)),
            content_enc="x",
        )
    )
    return rid


async def _roster(d: Db, s: AsyncSession, number: int) -> uuid.UUID:
    v = RosterVersion(id=uuid.uuid4(), municipality_id=d.hud, number=number, created_by=d.user)
    s.add(v)
    await s.flush()
    s.add(
        RosterEntry(
            version_id=v.id,
            user_id=d.user,
            function="chair",
            position=1,
            valid_from=OLD - timedelta(days=30),
            valid_to=OLD,
            phone_enc="",
        )
    )
    return v.id


Make = Callable[[Db, AsyncSession, list[str | None]], Any]
MAKERS: dict[str, Make] = {
    "advisory": _advisory,
    "report": _report,
    "decision": _decision,
    "assignment": _assignment,
    "placement": _placement,
    "police_request": _police,
}
"""The record types that name persons (a roster names staff only)."""

# Per type: (persons of a record kept in the sample, persons of a record culled), several each.
CASES: dict[str, tuple[list[list[str | None]], list[list[str | None]]]] = {
    "advisory": ([[BORN_15TH], [BORN_10TH, COORD_15TH]], [[BORN_10TH], [BORN_3RD, BORN_10TH]]),
    "report": (
        [[BORN_15TH], [None, BORN_10TH, COORD_15TH]],
        [[BORN_10TH, BORN_3RD], [None], []],
    ),
    "decision": ([[BORN_15TH], [COORD_15TH]], [[BORN_10TH], []]),
    "assignment": ([[BORN_15TH], [COORD_15TH]], [[BORN_3RD], []]),
    "placement": ([[BORN_10TH, BORN_15TH], [COORD_15TH]], [[BORN_10TH], [BORN_3RD, BORN_10TH]]),
    "police_request": ([[BORN_15TH], [COORD_15TH]], [[BORN_10TH]]),
}


async def _plan(d: Db, rules: dict[str, service.Rule]) -> dict[uuid.UUID, str]:
    async with d.maker() as s, s.begin():
        return {
            c.record_id: c.action
            async for c in service.iter_plan(
                s, d.vault, d.files.store, rules, now=NOW, org_id=d.hud
            )
        }


async def test_one_plan_keeps_the_sample_of_every_type_and_culls_the_rest(db: Db) -> None:
    kept: dict[str, set[uuid.UUID]] = {}
    culled: dict[str, set[uuid.UUID]] = {}
    async with db.maker() as s, s.begin():
        for t, (sampled, others) in CASES.items():
            kept[t] = {await MAKERS[t](db, s, persons) for persons in sampled}
            culled[t] = {await MAKERS[t](db, s, persons) for persons in others}
        # A roster names no one the records are about: the old version is culled whatever the
        # sample; the newest is in force.
        culled["roster"] = {await _roster(db, s, 1)}
        newest = await _roster(db, s, 2)
    rules = _rules()

    plan = await _plan(db, rules)
    for t in service.TYPES:
        assert {i for i in kept.get(t, ()) if plan.get(i) == "exempt"} == kept.get(t, set()), t
        assert {i for i in culled[t] if plan.get(i) == "cull"} == culled[t], t
    assert plan[newest] == "in_progress"
    assert list(plan.values()).count("exempt") == sum(len(k) for k in kept.values())

    result = await service.cull(
        db.maker, db.vault, db.files.store, rules, now=NOW, actor=ANONYMOUS, org_id=db.hud
    )
    assert (result.deleted, result.failed_count) == (sum(len(c) for c in culled.values()), 0)
    async with db.maker() as s, s.begin():
        for t in service.TYPES:
            source = service.RECORDS[t]
            for i in kept.get(t, set()) | ({newest} if t == "roster" else set()):
                assert await source.lifecycle(s, i) is not None, (t, "kept")
            for i in culled[t]:
                assert await source.lifecycle(s, i) is None, (t, "culled")
    # What is left is kept again by the next plan, for the same reason; nothing else is due.
    again = await _plan(db, rules)
    assert again == {i: "exempt" for k in kept.values() for i in k} | {newest: "in_progress"}


# --- a page's statements do not grow with the number of due records ---------------------------


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)


async def _page_statements(
    d: Db, rules: dict[str, service.Rule], record_type: str, limit: int
) -> list[str]:
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter)
    try:
        async with d.maker() as s, s.begin():
            page, _ = await service.plan_page(
                s, d.vault, d.files.store, rules, record_type, now=NOW, org_id=d.hud, limit=limit
            )
    finally:
        event.remove(Engine, "before_cursor_execute", counter)
    assert len(page) == limit
    # Every record on the page was judged by its persons: a third are in the sample.
    assert sum(c.action == "exempt" for c in page) >= limit // 3 - 1
    assert all(c.action in ("exempt", "cull") for c in page)
    return counter.seen


@pytest.mark.parametrize("record_type", sorted(MAKERS))
async def test_a_page_asks_for_its_persons_in_one_statement_whatever_its_size(
    db: Db, record_type: str
) -> None:
    rules = _rules()
    async with db.maker() as s, s.begin():
        for n in range(31):
            named: list[str | None] = [(BORN_15TH, BORN_10TH, BORN_3RD)[n % 3]]
            await MAKERS[record_type](db, s, named)
    few = await _page_statements(db, rules, record_type, 3)
    many = await _page_statements(db, rules, record_type, 30)
    assert len(many) == len(few), (len(few), len(many))
    # Without the sample in the rule, the page runs exactly one statement fewer (the persons').
    plain = {**rules, record_type: replace(rules[record_type], exempt_birth_days=())}
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter)
    try:
        async with db.maker() as s, s.begin():
            await service.plan_page(
                s, db.vault, db.files.store, plain, record_type, now=NOW, org_id=db.hud, limit=30
            )
    finally:
        event.remove(Engine, "before_cursor_execute", counter)
    assert len(counter.seen) == len(many) - 1


async def test_more_ids_than_one_in_list_are_read_in_chunks(db: Db) -> None:
    async with db.maker() as s, s.begin():
        sampled = await _report(db, s, [BORN_15TH, None])
        other = await _report(db, s, [BORN_10TH])
    ids = [uuid.uuid4() for _ in range(2 * IN_CHUNK)] + [sampled, other]  # the two in the last
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter)
    try:
        async with db.maker() as s, s.begin():
            named = await reports.persons_named_many(s, db.vault, ids)
            one = await reports.persons_named(s, db.vault, sampled)
    finally:
        event.remove(Engine, "before_cursor_execute", counter)
    assert len(counter.seen) == 3 + 1  # ceil((2 * IN_CHUNK + 2) / IN_CHUNK), then the one
    assert named[sampled] == one == [BORN_15TH]
    assert named[other] == [BORN_10TH]
    assert set(named) == set(ids) and sum(map(len, named.values())) == 2


# --- more ids than a statement may bind ------------------------------------------------------

ASYNCPG_MAX_ARGS = 32767
"""asyncpg refuses a statement with more bound parameters than this."""


def _bind_limit(dialect: str) -> int:
    """The most bound parameters one statement may have on the backend: asyncpg's, or what the
    SQLite library in use was compiled with (32,766 upstream; 250,000 in some builds)."""
    if dialect == "postgresql":
        return ASYNCPG_MAX_ARGS
    with closing(sqlite3.connect(":memory:")) as conn:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


async def test_any_number_of_ids_is_read_in_chunks_by_every_type(db: Db) -> None:
    """Each type's `lifecycles` and `persons_named_many` take more ids than one statement may
    bind (retention's callers hand them a page or a culling batch; nothing stops a bigger one):
    the real records among them come back, the rest (unknown ids) are absent."""
    real: dict[str, uuid.UUID] = {}
    async with db.maker() as s, s.begin():
        for t, make in MAKERS.items():
            real[t] = await make(db, s, [BORN_15TH])
        real["roster"] = await _roster(db, s, 1)
        dialect = s.get_bind().dialect.name
    assert set(real) == set(service.TYPES)
    limit = _bind_limit(dialect)
    unknown = [uuid.uuid4() for _ in range(limit + 1)]
    half = len(unknown) // 2

    # The premise: one IN list of them is refused by this backend.
    with pytest.raises(DBAPIError):
        async with db.maker() as s, s.begin():
            await s.execute(select(Report.id).where(Report.id.in_(unknown)))

    async with db.maker() as s, s.begin():
        for t, source in service.RECORDS.items():
            # The real record in the middle of the unknown ones: neither in the first chunk nor
            # the last.
            ids = [*unknown[:half], real[t], *unknown[half:]]
            lives = await source.lifecycles(s, ids)
            assert [life.record_id for life in lives] == [real[t]], t
            assert lives[0].owner_org_id == db.hud, t
            named = await source.persons_named_many(s, db.vault, ids)
            assert len(named) == len(ids), t
            assert named[real[t]] == ([] if t == "roster" else [BORN_15TH]), t
            assert not any(named[i] for i in unknown), t
