"""`jourpost audit verify` over 1,000,000 entries, beside what reading and hashing alone cost.

For each database (PostgreSQL and SQLite) a fresh database is migrated and filled with N chained
audit entries (realistic shapes: a read of a record by a user in an organisation, small details).
Then, in the same run and on the same data:

- verify:   `portal.audit.service.verify_chain(parallel=True)` — what `jourpost audit verify`
            runs (on PostgreSQL also in one process, and the portable SQLAlchemy path);
- scan:     the same rows read in the same batches through the same driver, nothing computed
            (the floor: the verification cannot be faster than reading the table);
- hash:     `entry_hash` over the rows already in memory (the floor for the cryptography and the
            canonical JSON, with no database at all).

Usage: .venv/bin/python bench/bench_audit.py [--entries 1000000] [--db postgres sqlite]
Needs PostgreSQL on 127.0.0.1:5432 (trust auth), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
ACTIONS = ["record.read", "attachment.download", "report.acknowledge", "advisory.update"]
TYPES = ["advisory", "report", "decision", "roster"]


def _rows(n: int) -> list[dict[str, Any]]:
    from portal.audit.service import GENESIS_HASH, entry_hash

    rng = random.Random(1)
    users = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(200)]
    orgs = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(11)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    prev, out = GENESIS_HASH, []
    for seq in range(1, n + 1):
        fields: dict[str, Any] = {
            "seq": seq,
            "at": start + timedelta(seconds=seq * 30, microseconds=rng.randrange(1_000_000)),
            "actor_user_id": rng.choice(users),
            "actor_org_id": rng.choice(orgs),
            "owner_org_id": rng.choice(orgs),
            "action": rng.choice(ACTIONS),
            "object_type": rng.choice(TYPES),
            "object_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "outcome": "ok",
            "details": {"version": rng.randrange(1, 5)},
            "prev_hash": prev,
        }
        fields["hash"] = prev = entry_hash(**fields)
        out.append(fields)
    return out


async def _fill(url: str, rows: list[dict[str, Any]]) -> float:
    from sqlalchemy import insert, text, update

    from portal.db import migrate
    from portal.db.engine import make_engine
    from portal.db.models import AuditEntry, AuditHead

    engine = make_engine(url)
    await migrate.upgrade(engine)
    began = time.perf_counter()
    async with engine.begin() as conn:
        for i in range(0, len(rows), 20_000):
            await conn.execute(insert(AuditEntry), rows[i : i + 20_000])
        last = rows[-1]
        await conn.execute(
            update(AuditHead).where(AuditHead.id == 1).values(seq=last["seq"], hash=last["hash"])
        )
    async with engine.connect() as conn:
        # What autovacuum does to a table of this size in production: without statistics the
        # planner sorts the whole table for each keyset batch instead of walking the index.
        await conn.execute(text("ANALYZE audit_entries"))
        await conn.commit()
    await engine.dispose()
    return time.perf_counter() - began


async def _timed_verify(
    url: str, portable: bool = False, parallel: bool = True
) -> tuple[float, int, bool]:
    from portal.audit.service import verify_chain, verify_chain_portable
    from portal.db.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            began = time.perf_counter()
            if portable:
                report = await verify_chain_portable(db)
            else:
                report = await verify_chain(db, parallel=parallel)
            return time.perf_counter() - began, report.entries, report.ok
    finally:
        await engine.dispose()


async def _timed_scan(url: str) -> tuple[float, int]:
    from sqlalchemy import select

    from portal.audit.service import BATCH
    from portal.db.engine import make_engine
    from portal.db.models import AuditEntry

    cols = [c for c in AuditEntry.__table__.c]
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            began, last, count = time.perf_counter(), 0, 0
            while True:
                rows = (
                    await conn.execute(
                        select(*cols)
                        .where(AuditEntry.seq > last)
                        .order_by(AuditEntry.seq)
                        .limit(BATCH)
                    )
                ).all()
                if not rows:
                    break
                count += len(rows)
                last = rows[-1].seq
            return time.perf_counter() - began, count
    finally:
        await engine.dispose()


def _timed_hash(rows: list[dict[str, Any]]) -> float:
    from portal.audit.service import entry_hash

    began = time.perf_counter()
    for r in rows:
        fields = {k: v for k, v in r.items() if k != "hash"}
        if entry_hash(**fields) != r["hash"]:
            raise SystemExit("hash mismatch in the baseline")
    return time.perf_counter() - began


async def _one(kind: str, rows: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    if kind == "postgres":
        import asyncpg

        name = f"bench_audit_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG}/{name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'audit.db'}"
    try:
        fill = await _fill(url, rows)
        verify, entries, ok = await _timed_verify(url)
        scan, scanned = await _timed_scan(url)
        old = one = None
        if kind == "postgres":
            one, one_entries, one_ok = await _timed_verify(url, parallel=False)
            old, old_entries, old_ok = await _timed_verify(url, portable=True)
            ok = ok and old_ok and old_entries == entries and one_ok and one_entries == entries
        if not ok or entries != len(rows) or scanned != len(rows):
            raise SystemExit(f"{kind}: verification failed or counted wrong ({entries}, {ok})")
        return {"db": kind, "fill": fill, "verify": verify, "scan": scan, "old": old, "one": one}
    finally:
        if kind == "postgres":
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", nargs="+", default=["postgres", "sqlite"])
    args = parser.parse_args()

    began = time.perf_counter()
    rows = _rows(args.entries)
    print(f"built {len(rows):,} chained entries in {time.perf_counter() - began:.1f} s")
    hashed = _timed_hash(rows)
    print(f"hash only (no database): {hashed:.1f} s ({len(rows) / hashed:,.0f} entries/s)")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db:
            r = asyncio.run(_one(kind, rows, Path(tmp)))
            rate = len(rows) / r["verify"]
            print(
                f"{r['db']:>8}: verify {r['verify']:.1f} s ({rate:,.0f} entries/s) | "
                f"scan {r['scan']:.1f} s | hash {hashed:.1f} s | "
                f"verify/scan {r['verify'] / r['scan']:.2f}x, "
                f"verify/(scan+hash) {r['verify'] / (r['scan'] + hashed):.2f}x "
                f"(fill took {r['fill']:.0f} s)"
            )
            if r["old"] is not None:
                print(
                    f"{'':>8}  one process: {r['one']:.1f} s; the portable path (SQLAlchemy "
                    f"rows, as SQLite uses, and before 4 Dec PostgreSQL too) on the same data: "
                    f"{r['old']:.1f} s; two processes/portable {r['verify'] / r['old']:.2f}x, "
                    f"one process/portable {r['one'] / r['old']:.2f}x"
                )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of this process (includes the {len(rows):,} rows held for the fill): "
        f"{peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
