"""The fast verification path (raw text rows on PostgreSQL, in pipelined batches).

It must accept exactly the chains the definition accepts — entries hashed over
`json.dumps(sort_keys=True)` of their fields, as every version of the portal wrote them — and
find every tamper, also at the edge of a batch (where one batch's last hash links to the next
batch's first entry, and where the next query is already in flight).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portal.audit import service as audit
from portal.db.engine import make_sessionmaker
from portal.db.models import AuditEntry, AuditHead

AWKWARD = [
    'q"uote',
    "back\\slash",
    "tab\tnew\nline\r",
    "ctl\x01\x1f\x7f",
    "åäö ÅÄÖ",
    "\u2028\U0001f600",
]


def _defined_hash(fields: dict[str, Any]) -> str:
    """The hash by the definition (json.dumps), independent of the code under test."""
    return hashlib.sha256(audit.reference_canonical(fields).encode()).hexdigest()


def _fields(seq: int, prev: str) -> dict[str, Any]:
    word = AWKWARD[seq % len(AWKWARD)]
    ats = [
        datetime(2026, 12, 4, 19, 0, 0, 0, tzinfo=UTC),  # no microseconds: ".000000" all the same
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 3, 30, 1, 30, 0, 5, tzinfo=UTC),
    ]
    return {
        "seq": seq,
        "at": ats[seq % len(ats)],
        "actor_user_id": None if seq % 4 == 0 else uuid.UUID(int=seq),
        "actor_org_id": None if seq % 3 == 0 else uuid.uuid4(),
        "owner_org_id": None if seq % 5 == 0 else uuid.uuid4(),
        "action": f"record.{word}",
        "object_type": None if seq % 2 else word,
        "object_id": None if seq % 7 == 0 else f"{word}-{seq}",
        "outcome": "ok" if seq % 3 else "denied",
        "details": [
            {},
            {"version": seq},
            {"z": 1, "a": [1.5, None, True, word], "ö": {"b": -2, "a": "x"}},
            {word: word, "n": 10**20, "f": 0.1},
        ][seq % 4],
        "prev_hash": prev,
    }


async def _write_defined_chain(engine: AsyncEngine, n: int) -> None:
    """n entries hashed by the definition and inserted directly (as an old writer left them)."""
    prev = audit.GENESIS_HASH
    async with make_sessionmaker(engine)() as db, db.begin():
        for seq in range(1, n + 1):
            fields = _fields(seq, prev)
            prev = _defined_hash(fields)
            await db.execute(insert(AuditEntry).values(**fields, hash=prev))
        await db.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=n, hash=prev))


async def _verify(engine: AsyncEngine) -> audit.ChainReport:
    async with make_sessionmaker(engine)() as db:
        return await audit.verify_chain(db)


async def test_a_chain_hashed_by_the_definition_verifies(migrated_engine: AsyncEngine) -> None:
    await _write_defined_chain(migrated_engine, 60)
    report = await _verify(migrated_engine)
    assert report.ok and report.entries == 60, report
    async with make_sessionmaker(migrated_engine)() as db:
        portable = await audit.verify_chain_portable(db)
    assert portable.ok and portable.entries == 60


@pytest.mark.parametrize(
    ("tamper", "seq", "expected"),
    [
        ("edit", 5, 5),  # the last entry of the first batch
        ("edit", 6, 6),  # the first entry of the second batch
        ("edit-prev", 6, 6),  # the link across the boundary
        ("delete", 5, 5),
        ("delete", 6, 6),
        ("edit", 10, 10),  # the last entry of a batch with a next query already in flight
        ("edit", 12, 12),  # the last entry of the chain, in a short batch
    ],
)
async def test_tampering_at_a_batch_boundary_is_found(
    migrated_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    tamper: str,
    seq: int,
    expected: int,
) -> None:
    monkeypatch.setattr(audit, "PG_BATCH", 5)
    monkeypatch.setattr(audit, "BATCH", 5)
    await _write_defined_chain(migrated_engine, 12)
    assert (await _verify(migrated_engine)).ok
    async with make_sessionmaker(migrated_engine)() as db:
        trans = await db.begin()
        where = AuditEntry.seq == seq
        if tamper == "edit":
            await db.execute(update(AuditEntry).where(where).values(outcome="okay"))
        elif tamper == "edit-prev":
            await db.execute(update(AuditEntry).where(where).values(prev_hash="f" * 64))
        else:
            await db.execute(delete(AuditEntry).where(where))
        report = await audit.verify_chain(db)
        await trans.rollback()
    assert not report.ok
    assert report.first_bad_seq == expected, report


@pytest.mark.parametrize(
    "tamper",
    [
        None,
        ("edit", 6),  # the last entry of the first half
        ("edit", 7),  # the first entry of the second half
        ("edit-prev", 7),  # the link between the halves
        ("delete", 6),
        ("delete", 7),
        ("delete", 1),
        ("delete", 12),
        ("edit", 10),
        ("extra", 13),  # an entry after the head
        ("head", 0),
    ],
)
async def test_two_processes_report_what_one_does(
    migrated_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, tamper: tuple[str, int] | None
) -> None:
    """`verify_chain(parallel=True)` splits a chain of 12 at 6 (PARALLEL_MIN lowered; the second
    process reads in batches of 20,000 as always); whatever was tampered with, committed, it
    reports exactly what the sequential check reports."""
    monkeypatch.setattr(audit, "PARALLEL_MIN", 1)
    monkeypatch.setattr(audit, "PG_BATCH", 4)  # the first half (this process) in batches
    used: list[bool] = []
    real = audit._verify_postgres_parallel

    async def spy(db: AsyncSession) -> audit.ChainReport:
        used.append(True)
        return await real(db)

    monkeypatch.setattr(audit, "_verify_postgres_parallel", spy)
    await _write_defined_chain(migrated_engine, 12)
    if tamper is not None:
        kind, seq = tamper
        async with make_sessionmaker(migrated_engine)() as db, db.begin():
            where = AuditEntry.seq == seq
            if kind == "edit":
                await db.execute(update(AuditEntry).where(where).values(action="record.print"))
            elif kind == "edit-prev":
                await db.execute(update(AuditEntry).where(where).values(prev_hash="e" * 64))
            elif kind == "delete":
                await db.execute(delete(AuditEntry).where(where))
            elif kind == "extra":
                fields = _fields(seq, "a" * 64)
                await db.execute(insert(AuditEntry).values(**fields, hash=_defined_hash(fields)))
            else:
                await db.execute(update(AuditHead).values(hash="d" * 64))
    async with make_sessionmaker(migrated_engine)() as db:
        sequential = await audit.verify_chain(db)
    async with make_sessionmaker(migrated_engine)() as db:
        parallel = await audit.verify_chain(db, parallel=True)
    assert used == ([True] if migrated_engine.dialect.name == "postgresql" else [])
    assert parallel == sequential
    assert sequential.ok == (tamper is None), sequential
    if tamper not in (None, ("extra", 13), ("head", 0), ("delete", 12)):
        assert sequential.first_bad_seq == tamper[1]
