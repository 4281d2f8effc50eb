"""The hash-chained audit log: appends chain, and edits, deletions, insertions are detected."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid

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
