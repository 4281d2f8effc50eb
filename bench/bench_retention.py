"""The retention plan after a long pause: N reports due at once, paged plan vs the old load-all.

A fresh database (migrated, demo organisations) gets N reports of Hudiksvall whose time is up
(bare rows: no subjects, no files) and N/10 not yet due. Then, in the same run and on the same
data, each measured with its peak Python memory (tracemalloc) and wall time:

- page:     what `/retention` now does — `plan_counts` (the whole plan's counts, SQL) and
            `plan_page` (the first 50, judged);
- stream:   the whole plan read as the CLI's dry run reads it (`iter_plan`, 200 at a time);
- stream1:  the same streamed plan with the research sample asked record by record (one
            `persons_named` statement per due record, as `plan_page` did before the batched
            `persons_named_many`);
- old:      the plan as it was before (issue 14): every report's lifecycle loaded, each judged
            in Python (its persons read record by record), then sorted — reproduced here for
            reports from the same queries.

The report rule has the research sample (born on the 5th, 15th or 25th) by default. With
`--subjects` every report names one person (a fictitious personnummer, encrypted as the portal
stores it; every tenth born on the 15th, so kept): each sample check then reads and decrypts a
row, as in a real archive; without it the reports name no one (the query still runs).

The ratios (page / old, stream / old) are the figures; the seconds depend on the machine.

Usage: .venv/bin/python bench/bench_retention.py [--due 50000] [--db sqlite postgres] [--subjects]
PostgreSQL on 127.0.0.1:5432 (trust auth), as the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def _seed(settings: Any, due: int, subjects: bool) -> uuid.UUID:
    from sqlalchemy import insert, select

    from portal.db.base import utcnow
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.db.models import Organisation, User
    from portal.pii import Vault, field_context
    from portal.reports.models import Report, ReportSubject
    from portal.retention.service import add_months
    from tests.portal.conftest import prepare_database

    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    now = utcnow()
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
            author = await db.scalar(select(User.id).limit(1))
            old = add_months(now, -61)
            anchors = [old - timedelta(minutes=i) for i in range(due)]
            anchors += [now - timedelta(days=i % 1000) for i in range(due // 10)]
            rows = [
                {
                    "id": uuid.uuid4(), "jour_id": orgs["Socialjouren Gävleborg"],
                    "author_id": author, "municipality_id": orgs["Hudiksvall"],
                    "code_list_version": "2017", "occurred_at": at, "on_call": False,
                    "initiator_code": "polisen", "category_code": "man",
                    "character_code": "boende", "minutes": 5, "child_involved": False,
                    "narrative_enc": "x", "follow_up_requested": False,
                }
                for at in anchors
            ]  # fmt: skip
            for i in range(0, len(rows), 2000):
                await db.execute(insert(Report), rows[i : i + 2000])
            if subjects:
                vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
                persons = []
                for n, r in enumerate(rows):
                    # Fictitious: born 1980-01-15 for every tenth report, else 1980-01-10.
                    pnr = f"198001{15 if n % 10 == 0 else 10}{n % 10000:04d}"
                    sid = uuid.uuid4()
                    pnr_enc = vault.encrypt(pnr, field_context(ReportSubject.pnr_enc, sid))
                    persons.append(
                        {"id": sid, "report_id": r["id"], "position": 0,
                         "identity_unknown": False, "pnr_index": "bench", "pnr_enc": pnr_enc}
                    )  # fmt: skip
                for i in range(0, len(persons), 2000):
                    await db.execute(insert(ReportSubject), persons[i : i + 2000])
            return orgs["Hudiksvall"]
    finally:
        await engine.dispose()


async def _old_plan(db: Any, vault: Any, store: Any, rules: Any, now: Any, org: uuid.UUID) -> int:
    """The reports' part of the plan as `plan()` computed it before: load every lifecycle, judge
    each in Python, sort."""
    from sqlalchemy import select

    from portal.attachments import service as attachments
    from portal.reports import records as reports
    from portal.reports.models import Report
    from portal.retention import service

    rule = rules["report"]
    ids = select(Report.id).where(Report.municipality_id == org)
    keys = await attachments.object_keys(db, "report", ids)
    lives = [
        reports._life(r, keys.get(r.id, []))
        for r in await db.scalars(select(Report).where(Report.municipality_id == org))
    ]
    candidates = []
    for life in lives:
        due_at = service.add_months(life.anchor, rule.after_months)
        if due_at > now:
            continue
        c = service.Candidate(
            "report", life.record_id, life.owner_org_id, due_at, life.anchor, objects=[]
        )
        persons = await reports.persons_named(db, vault, life.record_id)
        service._judge(c, rule, False, life.in_progress, persons)
        candidates.append(c)
    candidates.sort(key=lambda c: (c.record_type, c.due_at))
    return len(candidates)


class _OneByOne:
    """The reports' records module with the research sample asked record by record (one
    `persons_named` statement per record), as the plan asked it before `persons_named_many`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    async def persons_named_many(
        self, db: Any, vault: Any, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        return {i: await self.module.persons_named(db, vault, i) for i in ids}


async def _measure(fn: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """(seconds, peak MiB of Python allocations, result)."""
    tracemalloc.start()
    began = time.perf_counter()
    result = await fn()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result


async def _one(kind: str, due: int, tmp: Path, subjects: bool) -> dict[str, Any]:
    from portal.attachments.store import build_file_store
    from portal.db.base import utcnow
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.pii import Vault
    from portal.retention import service
    from tests.conftest import make_settings

    name = ""
    if kind == "postgres":
        import asyncpg

        name = f"bench_retention_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG}/{name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    settings = make_settings(tmp, url)
    try:
        org = await _seed(settings, due, subjects)
        engine = make_engine(url)
        maker = make_sessionmaker(engine)
        vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
        store = build_file_store(settings).store
        rules = service.load_rules()
        now = utcnow()

        async def page() -> int:
            async with maker() as db, db.begin():
                counts = await service.plan_counts(db, rules, now=now, org_id=org)
                rows, _ = await service.plan_page(
                    db, vault, store, rules, "report", now=now, org_id=org
                )
                assert counts["report"].due == due and len(rows) == 50
                return len(rows)

        async def stream() -> int:
            async with maker() as db, db.begin():
                n = 0
                async for _ in service.iter_plan(db, vault, store, rules, now=now, org_id=org):
                    n += 1
                return n

        async def stream1() -> int:
            batched = service.RECORDS["report"]
            service.RECORDS["report"] = _OneByOne(batched)
            try:
                return await stream()
            finally:
                service.RECORDS["report"] = batched

        async def old() -> int:
            async with maker() as db, db.begin():
                return await _old_plan(db, vault, store, rules, now, org)

        out: dict[str, Any] = {}
        for label, fn in (("page", page), ("stream", stream), ("stream1", stream1), ("old", old)):
            out[label] = await _measure(fn)
        counted = (out["stream"][2], out["stream1"][2], out["old"][2])
        assert counted == (due, due, due), counted
        await engine.dispose()
        return out
    finally:
        if name:
            import asyncpg

            admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=50_000)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--subjects", action="store_true", help="each report names a person (a tenth exempt)"
    )
    args = parser.parse_args()
    named = ", each naming a person" if args.subjects else ", naming no one"
    print(f"{args.due} reports due at once (and {args.due // 10} not yet due){named}, Hudiksvall")
    print("db        what     seconds  peak MiB   s/old  MiB/old")
    for kind in args.db:
        with tempfile.TemporaryDirectory() as tmp:
            out = asyncio.run(_one(kind, args.due, Path(tmp), args.subjects))
        old_s, old_m, _ = out["old"]
        for label in ("page", "stream", "stream1", "old"):
            s, m, _ = out[label]
            print(f"{kind:9} {label:7} {s:8.3f} {m:9.1f} {s / old_s:7.3f} {m / old_m:8.3f}")


if __name__ == "__main__":
    main()
