"""E-archive export of 10,000 records: time and peak memory, beside a plain zip of the same files.

A fresh SQLite database (demo organisations) gets N incident reports to Hudiksvall (the synthetic
generator, one fictitious subject each) and one encrypted 20 KB attachment per report in the
filesystem object store. Then, in the same run:

- export:   `jourpost archive export` (portal.archive.cli.export_command): per record the audit
            entry, the integrity check (every file read back and hash-checked), the record XML, the
            audit trail, the verification report, then METS, PREMIS and the schemas — streamed
            into a zip on disk;
- baseline: the same records' attachments read back through the encrypted store and written
            into a plain zip with a small XML per record (no checks, no metadata, no audit).

Peak memory is tracemalloc's peak of Python allocations during each run (a second run of each,
because tracemalloc slows the code it watches); the package is then checked with eark-validator.

Usage: .venv/bin/python bench/bench_export.py [--records 10000] [--pdf]
(--pdf adds each record's PDF/A rendition, about 60 ms of WeasyPrint per record.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def _fill(settings: Any, n: int) -> None:
    from sqlalchemy import select

    from portal.app import build_runtime
    from portal.attachments.models import Attachment
    from portal.db.base import utcnow
    from portal.db.models import Organisation, User
    from portal.reports.models import Report
    from portal.stats.synthetic import generate_year
    from tests.portal.conftest import prepare_database

    await prepare_database(settings)
    rt = build_runtime(settings)
    try:
        async with rt.sessionmaker() as db, db.begin():
            await generate_year(db, rt.vault, now=utcnow(), cases=n)
            hud = await db.scalar(select(Organisation.id).where(Organisation.name == "Hudiksvall"))
            await db.execute(
                Report.__table__.update().values(municipality_id=hud, other_municipality=None)
            )
            ids = list(await db.scalars(select(Report.id)))
            author = await db.scalar(select(User.id).limit(1))
        payload = os.urandom(20_000)

        async def one(data: bytes) -> Any:
            yield data

        rows = []
        for rid in ids:
            object_id = f"attachments/{uuid.uuid4()}"
            stored = await rt.object_store.put(object_id, one(payload))
            aid = uuid.uuid4()
            rows.append(
                {
                    "id": aid,
                    "owner_type": "report",
                    "owner_id": rid,
                    "organisation_id": hud,
                    "object_id": object_id,
                    "name_enc": rt.vault.encrypt("underlag.pdf", f"attachments.name:{aid}"),
                    "content_type": "application/pdf",
                    "size": stored.size,
                    "sha256": stored.sha256,
                    "kek_id": stored.kek_id,
                    "wrapped_key": stored.wrapped_key,
                    "created_by": author,
                }
            )
        async with rt.sessionmaker() as db, db.begin():
            for i in range(0, len(rows), 1000):
                await db.execute(Attachment.__table__.insert(), rows[i : i + 1000])
    finally:
        await rt.engine.dispose()


PDF = {"on": False}


async def _export(settings: Any, out: Path) -> None:
    from portal.archive.cli import export_command

    code = await export_command(
        settings,
        org="Hudiksvall",
        since=None,
        until=None,
        kinds=["report"],
        out=out,
        pdf=PDF["on"],
    )
    assert code == 0


async def _baseline(settings: Any, out: Path) -> None:
    from sqlalchemy import select

    from portal.app import build_runtime
    from portal.attachments.models import Attachment
    from storage import StoredObject

    rt = build_runtime(settings)
    try:
        async with rt.sessionmaker() as db:
            rows = list(await db.scalars(select(Attachment)))
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for a in rows:
                z.writestr(f"{a.owner_id}/record.xml", f"<record id='{a.owner_id}'/>")
                stored = StoredObject(a.object_id, a.size, a.sha256, a.kek_id, a.wrapped_key)
                with z.open(f"{a.owner_id}/attachment.pdf", "w") as w:
                    async for chunk in rt.object_store.get(stored):
                        w.write(chunk)
    finally:
        await rt.engine.dispose()


def _timed(fn: Any, *args: Any) -> float:
    began = time.perf_counter()
    asyncio.run(fn(*args))
    return time.perf_counter() - began


def _peak(fn: Any, *args: Any) -> float:
    tracemalloc.start()
    asyncio.run(fn(*args))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--pdf", action="store_true", help="with the PDF/A rendition per record")
    args = parser.parse_args()
    PDF["on"] = args.pdf

    from tests.conftest import make_settings
    from tests.portal.archive.eark import validate_sip

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        settings = make_settings(base, f"sqlite+aiosqlite:///{base / 'bench.sqlite3'}")
        began = time.perf_counter()
        asyncio.run(_fill(settings, args.records))
        took = time.perf_counter() - began
        print(f"filled {args.records:,} reports with one 20 KB attachment each in {took:.0f} s")
        sip, plain = base / "sip.zip", base / "plain.zip"
        t_export = _timed(_export, settings, sip)
        t_base = _timed(_baseline, settings, plain)
        m_export = _peak(_export, settings, base / "sip2.zip")
        m_base = _peak(_baseline, settings, base / "plain2.zip")
        report = validate_sip(sip.read_bytes(), base / "check")
        print(
            f"export:   {t_export:6.1f} s ({args.records / t_export:,.0f} records/s), "
            f"peak Python memory {m_export:5.1f} MiB, {sip.stat().st_size / 2**20:.0f} MiB zip, "
            f"{len(report.data_files):,} files in METS, "
            f"eark-validator: {'ok' if report.ok else report.problems[:3]}"
        )
        print(
            f"baseline: {t_base:6.1f} s ({args.records / t_base:,.0f} records/s), "
            f"peak Python memory {m_base:5.1f} MiB, {plain.stat().st_size / 2**20:.0f} MiB zip"
        )
        ratio = f"time {t_export / t_base:.2f}x, peak memory {m_export / m_base:.2f}x"
        print(f"ratio export/baseline: {ratio}")


if __name__ == "__main__":
    main()
