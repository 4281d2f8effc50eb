"""Random tampering with the audit chain: every edit, deletion, insertion and reordering is found.

One chain of 25 entries is written through `audit.record`; each trial then tampers with it inside
a transaction, runs the verifier in that transaction (it sees the tampered rows) and rolls back,
so many random trials share one chain. The rewrite trial (every hash recomputed after an edit, so
the chain itself verifies) is caught by the anchors in the object store.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portal.audit import anchor as anchors
from portal.audit import service as audit
from portal.db.engine import make_sessionmaker
from portal.db.models import AuditEntry, AuditHead
from storage.filesystem import FilesystemStore

N = 25
TRIALS = 12
FIELDS = (
    "action",
    "object_id",
    "object_type",
    "outcome",
    "details",
    "at",
    "actor_user_id",
    "owner_org_id",
    "prev_hash",
    "hash",
)


def _text(rng: random.Random) -> str:
    alphabet = string.printable + 'åäöÅÄÖ"\\\u2028\U0001f600\x00\x1f'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


def test_hand_written_rendering_equals_json_dumps() -> None:
    """The fast canonical rendering is byte-for-byte the json.dumps definition."""
    rng = random.Random(20261124)
    for _ in range(3000):
        fields: dict[str, Any] = {
            "seq": rng.randrange(1, 10**9),
            "at": audit.utcnow() - timedelta(microseconds=rng.randrange(10**12)),
            "actor_user_id": rng.choice([None, uuid.uuid4()]),
            "actor_org_id": rng.choice([None, uuid.uuid4()]),
            "owner_org_id": rng.choice([None, uuid.uuid4()]),
            "action": _text(rng),
            "object_type": rng.choice([None, _text(rng)]),
            "object_id": rng.choice([None, _text(rng)]),
            "outcome": _text(rng),
            "details": {_text(rng): rng.choice([_text(rng), rng.randrange(-9, 9), None, [1, "ä"]])},
            "prev_hash": _text(rng),
        }
        expected = hashlib.sha256(audit.reference_canonical(fields).encode()).hexdigest()
        assert audit.entry_hash(**fields) == expected


async def _chain(engine: AsyncEngine) -> None:
    maker = make_sessionmaker(engine)
    for i in range(N):
        async with maker() as db, db.begin():
            await audit.record(
                db,
                "record.read",
                actor=audit.Actor(uuid.uuid4(), uuid.uuid4()),
                owner_org_id=uuid.uuid4(),
                object_type="advisory",
                object_id=str(uuid.uuid4()),
                details={"version": i},
            )


async def _trial(
    engine: AsyncEngine, tamper: Callable[[AsyncSession], Awaitable[None]]
) -> audit.ChainReport:
    async with make_sessionmaker(engine)() as db:
        trans = await db.begin()
        await tamper(db)
        report = await audit.verify_chain(db)
        await trans.rollback()
    return report


async def _row(db: AsyncSession, seq: int) -> dict[str, Any]:
    entry = (await db.execute(select(AuditEntry.__table__).where(AuditEntry.seq == seq))).one()
    return dict(entry._mapping)


def _changed(field: str, value: Any, rng: random.Random) -> Any:
    if field == "at":
        return value + timedelta(microseconds=rng.choice([-1, 1, 3600 * 10**6]))
    if field in ("actor_user_id", "owner_org_id"):
        return uuid.uuid4()
    if field == "details":
        return {**value, "version": value["version"] + 1}
    if field in ("prev_hash", "hash"):
        return hashlib.sha256(value.encode()).hexdigest()
    return (value or "") + "x"


@pytest.fixture
async def chained(migrated_engine: AsyncEngine) -> AsyncEngine:
    await _chain(migrated_engine)
    assert (await _trial(migrated_engine, _nothing)).ok
    return migrated_engine


async def _nothing(db: AsyncSession) -> None:
    return None


async def test_random_edits_are_found_at_the_edited_entry(chained: AsyncEngine) -> None:
    rng = random.Random(1)
    for _ in range(TRIALS):
        seq, field = rng.randint(1, N), rng.choice(FIELDS)

        async def edit(db: AsyncSession, seq: int = seq, field: str = field) -> None:
            old = (await _row(db, seq))[field]
            values = {field: _changed(field, old, rng)}
            await db.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(**values))

        report = await _trial(chained, edit)
        # Editing the last entry's hash breaks only its link to the head.
        assert report.first_bad_seq == seq, (seq, field, report)


async def test_random_deletions_are_found(chained: AsyncEngine) -> None:
    rng = random.Random(2)
    for _ in range(TRIALS):
        seqs = sorted(rng.sample(range(1, N + 1), rng.randint(1, 3)))

        async def remove(db: AsyncSession, seqs: list[int] = seqs) -> None:
            await db.execute(delete(AuditEntry).where(AuditEntry.seq.in_(seqs)))

        report = await _trial(chained, remove)
        assert not report.ok
        assert report.first_bad_seq == seqs[0], (seqs, report)


async def _shift_up(db: AsyncSession, from_seq: int) -> None:
    """Make room at `from_seq` (two steps, so the primary key never collides)."""
    big = 10**6
    await db.execute(
        update(AuditEntry).where(AuditEntry.seq >= from_seq).values(seq=AuditEntry.seq + big)
    )
    await db.execute(
        update(AuditEntry).where(AuditEntry.seq >= big).values(seq=AuditEntry.seq - big + 1)
    )


async def test_random_insertions_are_found(chained: AsyncEngine) -> None:
    """A forged entry, correctly hashed and linked to its predecessor, slipped in anywhere."""
    rng = random.Random(3)
    for _ in range(TRIALS):
        at = rng.randint(1, N + 1)

        async def forge(db: AsyncSession, at: int = at) -> None:
            prev = audit.GENESIS_HASH if at == 1 else (await _row(db, at - 1))["hash"]
            if at <= N:
                await _shift_up(db, at)
            fields: dict[str, Any] = {
                "seq": at,
                "at": audit.utcnow(),
                "actor_user_id": None,
                "actor_org_id": None,
                "owner_org_id": None,
                "action": "record.read",
                "object_type": "advisory",
                "object_id": str(uuid.uuid4()),
                "outcome": "ok",
                "details": {},
                "prev_hash": prev,
            }
            await db.execute(insert(AuditEntry).values(**fields, hash=audit.entry_hash(**fields)))

        report = await _trial(chained, forge)
        assert not report.ok
        # The forged entry itself verifies; the next one (or the head) exposes it.
        assert report.first_bad_seq == min(at + 1, N + 1), (at, report)


async def test_random_reorderings_are_found(chained: AsyncEngine) -> None:
    rng = random.Random(4)
    for _ in range(TRIALS):
        i, j = sorted(rng.sample(range(1, N + 1), 2))

        async def swap(db: AsyncSession, i: int = i, j: int = j) -> None:
            a, b = await _row(db, i), await _row(db, j)
            big = 10**6
            await db.execute(update(AuditEntry).where(AuditEntry.seq == j).values(seq=big))
            await db.execute(update(AuditEntry).where(AuditEntry.seq == i).values(seq=j))
            await db.execute(update(AuditEntry).where(AuditEntry.seq == big).values(seq=i))
            assert a["hash"] != b["hash"]

        report = await _trial(chained, swap)
        assert report.first_bad_seq == i, (i, j, report)


async def test_a_rewritten_chain_is_caught_by_its_anchor(
    chained: AsyncEngine, tmp_path: Path
) -> None:
    """Someone with database access edits entry k and recomputes every hash after it."""
    store = FilesystemStore(tmp_path / "store")
    maker = make_sessionmaker(chained)
    async with maker() as db:
        assert await anchors.anchor(db, store) == N
        assert (await anchors.verify_anchors(db, store)).ok
    k = 7
    async with maker() as db, db.begin():
        prev = (await _row(db, k - 1))["hash"]
        for seq in range(k, N + 1):
            row = await _row(db, seq)
            row.pop("hash")
            row["prev_hash"] = prev
            if seq == k:
                row["action"] = "record.print"
            prev = audit.entry_hash(**row)
            await db.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == seq)
                .values(action=row["action"], prev_hash=row["prev_hash"], hash=prev)
            )
        await db.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
    async with maker() as db:
        assert (await audit.verify_chain(db)).ok  # the chain alone can't tell
        report = await anchors.verify_anchors(db, store)
    assert report.first_bad_seq == N


class _SlowToLook:
    """A store that takes its time answering "does it exist?" — two instances' anchoring jobs
    then both look before either writes, the race seen with several instances."""

    def __init__(self, real: FilesystemStore) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def exists(self, key: str) -> bool:
        import asyncio

        found = await self._real.exists(key)
        await asyncio.sleep(0.3)
        return found


async def test_two_instances_anchoring_at_once_write_one_anchor(
    chained: AsyncEngine, tmp_path: Path
) -> None:
    import asyncio

    store = FilesystemStore(tmp_path / "store")
    maker = make_sessionmaker(chained)

    async def job() -> int | None:
        async with maker() as db:
            return await anchors.anchor(db, _SlowToLook(store))

    results = await asyncio.gather(job(), job(), return_exceptions=True)
    assert sorted(results, key=str) == sorted([N, None], key=str), results
    keys = [k async for k in store.list_keys(anchors.PREFIX)]
    assert len(keys) == 1
    async with maker() as db:
        assert (await anchors.verify_anchors(db, store)).ok


async def _restore_backup_taken_at(engine: AsyncEngine, k: int) -> None:
    """What restoring a database backup taken when entry k was the newest leaves behind."""
    maker = make_sessionmaker(engine)
    async with maker() as db, db.begin():
        head_hash = (await _row(db, k))["hash"]
        await db.execute(delete(AuditEntry).where(AuditEntry.seq > k))
        await db.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=k, hash=head_hash))


async def test_a_restore_from_backup_is_told_apart_from_a_rewrite(
    chained: AsyncEngine, tmp_path: Path
) -> None:
    """Rehearsal: anchor, restore the database to an older backup, see it reported as a shorter
    chain (not a rewrite), record the restore, keep working, and verify clean again — with the
    lost entries named. A rewrite after all that is still caught."""
    store = FilesystemStore(tmp_path / "store")
    maker = make_sessionmaker(chained)
    async with maker() as db:
        assert await anchors.anchor(db, store) == N
    k = 18
    await _restore_backup_taken_at(chained, k)
    async with maker() as db:
        assert (await audit.verify_chain(db)).ok
        report = await anchors.verify_anchors(db, store)
    assert not report.ok and report.first_bad_seq is None
    assert (report.ends_at, report.anchored_through) == (k, N)

    async with maker() as db, db.begin():
        lost = await anchors.record_restore(db, store)
    assert (lost.first_seq, lost.last_seq) == (k + 1, N)
    # Work goes on after the restore: new entries take the lost numbers, with new hashes.
    await _chain(chained)
    async with maker() as db:
        await anchors.anchor(db, store)
        assert (await audit.verify_chain(db)).ok
        report = await anchors.verify_anchors(db, store)
    assert report.ok, report
    assert [(s.first_seq, s.last_seq) for s in report.lost] == [(k + 1, N)]

    async with maker() as db, db.begin():
        await db.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="x"))
    async with maker() as db:
        assert (await audit.verify_chain(db)).first_bad_seq == 3


async def test_nothing_to_record_without_a_gap(chained: AsyncEngine, tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "store")
    maker = make_sessionmaker(chained)
    async with maker() as db:
        await anchors.anchor(db, store)
    with pytest.raises(anchors.NothingToRecord):
        async with maker() as db, db.begin():
            await anchors.record_restore(db, store)
