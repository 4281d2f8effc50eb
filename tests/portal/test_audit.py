"""The hash-chained audit log: appends chain, and edits, deletions, insertions are detected."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from portal.audit import service as audit
from portal.db.engine import make_sessionmaker
from portal.db.models import AuditEntry


async def _append(engine: AsyncEngine, n: int) -> None:
    maker = make_sessionmaker(engine)
    for i in range(n):
        async with maker() as db, db.begin():
            await audit.record(
                db, "record.read", object_type="advisory", object_id=str(i), details={"i": i}
            )


async def _verify(engine: AsyncEngine) -> audit.ChainReport:
    async with make_sessionmaker(engine)() as db:
        return await audit.verify_chain(db)


async def test_chain_verifies_and_links(migrated_engine: AsyncEngine) -> None:
    await _append(migrated_engine, 5)
    report = await _verify(migrated_engine)
    assert report.ok and report.entries == 5
    async with make_sessionmaker(migrated_engine)() as db:
        rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


async def test_edit_is_detected_at_that_entry(migrated_engine: AsyncEngine) -> None:
    await _append(migrated_engine, 6)
    target = random.randint(1, 6)
    async with make_sessionmaker(migrated_engine)() as db, db.begin():
        await db.execute(
            update(AuditEntry).where(AuditEntry.seq == target).values(action="record.print")
        )
    report = await _verify(migrated_engine)
    assert report.first_bad_seq == target


async def test_deletion_is_detected(migrated_engine: AsyncEngine) -> None:
    await _append(migrated_engine, 6)
    async with make_sessionmaker(migrated_engine)() as db, db.begin():
        await db.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    report = await _verify(migrated_engine)
    assert report.first_bad_seq == 3 and "missing" in (report.problem or "")


async def test_deleting_the_tail_is_detected_by_the_head(migrated_engine: AsyncEngine) -> None:
    await _append(migrated_engine, 4)
    async with make_sessionmaker(migrated_engine)() as db, db.begin():
        await db.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    assert not (await _verify(migrated_engine)).ok


async def test_rollback_leaves_no_entry(migrated_engine: AsyncEngine) -> None:
    maker = make_sessionmaker(migrated_engine)
    async with maker() as db, db.begin():
        await audit.record(db, "will.rollback")
        await db.rollback()
    async with maker() as db:
        assert await db.scalar(select(func.count()).select_from(AuditEntry)) == 0
    await _append(migrated_engine, 1)
    assert (await _verify(migrated_engine)).ok


async def test_concurrent_writers_do_not_fork_the_chain(migrated_engine: AsyncEngine) -> None:
    maker = make_sessionmaker(migrated_engine)

    async def writer(k: int) -> None:
        for _ in range(5):
            async with maker() as db, db.begin():
                await audit.record(db, "concurrent", object_id=str(uuid.uuid4()))
                await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in range(6)))
    report = await _verify(migrated_engine)
    assert report.ok and report.entries == 30


async def test_record_many_appends_the_same_chain(migrated_engine: AsyncEngine) -> None:
    """A batch appended at once links into the chain like entries appended one by one."""
    await _append(migrated_engine, 2)
    org = uuid.uuid4()
    async with make_sessionmaker(migrated_engine)() as db, db.begin():
        await audit.record_many(
            db,
            [
                audit.NewEntry(
                    "archive.export",
                    actor=audit.Actor(None, org),
                    owner_org_id=org,
                    object_type="report",
                    object_id=uuid.UUID(int=i),
                    details={"i": i} if i else None,
                )
                for i in range(3)
            ],
        )
        await audit.record_many(db, [])
    await _append(migrated_engine, 1)
    report = await _verify(migrated_engine)
    assert report.ok and report.entries == 6, report
    async with make_sessionmaker(migrated_engine)() as db:
        rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    batch = rows[2:5]
    assert [r.object_id for r in batch] == [str(uuid.UUID(int=i)) for i in range(3)]
    assert [r.details for r in batch] == [{}, {"i": 1}, {"i": 2}]
    assert all(r.action == "archive.export" and r.actor_org_id == org for r in batch)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


@pytest.mark.postgres
async def test_many_concurrent_appenders_on_postgres_keep_one_chain(pg_url: str) -> None:
    """40 connections append at once, each holding its transaction open a little after the
    append (as a request does until its commit), some rolling back: one unbroken chain, seq
    without gaps, `at` in seq order, the head at the last entry."""
    from portal.db.engine import make_engine

    engine = make_engine(pg_url, pool_size=40, max_overflow=0)
    maker = make_sessionmaker(engine)
    rng = random.Random(11)
    kept: list[str] = []

    async def writer(k: int) -> None:
        for i in range(5):
            roll_back = rng.random() < 0.2
            object_id = f"{k}-{i}"
            try:
                async with maker() as db, db.begin():
                    await audit.record(
                        db, "concurrent", object_type="t", object_id=object_id,
                        details={"k": k, "i": i, "name": "Åsa \"q\" \\ ü"},
                    )  # fmt: skip
                    await asyncio.sleep(rng.random() / 200)
                    if roll_back:
                        raise _RolledBack
                kept.append(object_id)
            except _RolledBack:
                pass

    try:
        await asyncio.gather(*(writer(k) for k in range(40)))
        report = await _verify(engine)
        assert report.ok and report.entries == len(kept), report
        async with maker() as db:
            rows = (await db.execute(select(AuditEntry.seq, AuditEntry.at, AuditEntry.object_id)
                                     .order_by(AuditEntry.seq))).all()  # fmt: skip
        assert [r.seq for r in rows] == list(range(1, len(kept) + 1))
        assert sorted(r.object_id for r in rows) == sorted(kept)
        assert all(a.at <= b.at for a, b in itertools.pairwise(rows))
    finally:
        await engine.dispose()


class _RolledBack(Exception):
    """Raised to roll a writer's transaction back."""


async def test_batch_hashed_entries_equal_the_python_definition(
    migrated_engine: AsyncEngine,
) -> None:
    """`record_many` (on PostgreSQL one statement, audit._PG_APPEND_MANY, chained by the server)
    stores entries whose hashes are `entry_hash` of the stored fields, each linked to the one
    before, between single appends, for awkward text, nulls and empty details too."""
    from sqlalchemy import event

    org, user = uuid.uuid4(), uuid.uuid4()
    awkward = 'id "x" \\ \u2028 \x01 ä \U0001f600'
    entries = [
        audit.NewEntry(
            "a.b", actor=audit.Actor(user, org), outcome="denied", owner_org_id=org,
            object_type="tÿpe", object_id=awkward,
            details={"b": [1, "ä"], "a": {"z": None, "y": 1.5}, "s": awkward},
        ),
        audit.NewEntry("plain"),
        audit.NewEntry("third", actor=audit.Actor(None, org), object_id=uuid.UUID(int=7)),
    ]  # fmt: skip
    statements: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_a: object) -> None:
        statements.append(statement)

    await _append(migrated_engine, 1)
    event.listen(migrated_engine.sync_engine, "before_cursor_execute", count)
    try:
        async with make_sessionmaker(migrated_engine)() as db, db.begin():
            await audit.record_many(db, entries)
    finally:
        event.remove(migrated_engine.sync_engine, "before_cursor_execute", count)
    await _append(migrated_engine, 1)
    if migrated_engine.dialect.name == "postgresql":
        assert len([s for s in statements if "audit" in s]) == 1, statements
    async with make_sessionmaker(migrated_engine)() as db:
        rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [r.action for r in rows[1:4]] == ["a.b", "plain", "third"]
    assert rows[1].object_id == awkward and rows[1].details["s"] == awkward
    assert rows[2].details == {} and rows[2].actor_user_id is None
    assert rows[3].object_id == str(uuid.UUID(int=7)) and rows[3].actor_org_id == org
    for e in rows:
        assert e.hash == audit.entry_hash(
            seq=e.seq, at=e.at, actor_user_id=e.actor_user_id, actor_org_id=e.actor_org_id,
            owner_org_id=e.owner_org_id, action=e.action, object_type=e.object_type,
            object_id=e.object_id, outcome=e.outcome, details=e.details, prev_hash=e.prev_hash,
        )  # fmt: skip
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert all(a.at <= b.at for a, b in itertools.pairwise(rows))
    assert (await _verify(migrated_engine)).ok


async def test_server_hashed_entry_equals_the_python_definition(
    migrated_engine: AsyncEngine,
) -> None:
    """On PostgreSQL the server hashes the entry (audit._PG_APPEND); the stored hash is
    `entry_hash` of the stored fields, recomputed here in Python, for awkward text too."""
    org, user = uuid.uuid4(), uuid.uuid4()
    async with make_sessionmaker(migrated_engine)() as db, db.begin():
        await audit.record(
            db, "a.b", actor=audit.Actor(user, org), outcome="denied", owner_org_id=org,
            object_type="tÿpe", object_id='id "x" \\ \u2028 \x01',
            details={"b": [1, "ä"], "a": {"z": None, "y": 1.5}, "emoji": "\U0001f600"},
        )  # fmt: skip
        await audit.record(db, "plain")
    async with make_sessionmaker(migrated_engine)() as db:
        rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    for e in rows:
        assert e.hash == audit.entry_hash(
            seq=e.seq, at=e.at, actor_user_id=e.actor_user_id, actor_org_id=e.actor_org_id,
            owner_org_id=e.owner_org_id, action=e.action, object_type=e.object_type,
            object_id=e.object_id, outcome=e.outcome, details=e.details, prev_hash=e.prev_hash,
        )  # fmt: skip
    assert rows[0].prev_hash == audit.GENESIS_HASH and rows[1].prev_hash == rows[0].hash
    assert rows[0].object_id == 'id "x" \\ \u2028 \x01'
    assert rows[0].details == {"b": [1, "ä"], "a": {"z": None, "y": 1.5}, "emoji": "\U0001f600"}
