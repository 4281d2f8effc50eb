"""`jourpost storage sweep`: orphaned objects removed past the grace period (or reported when
locked), young ones left alone, and a row whose object is gone raised as an alarm — on the
filesystem store and on SeaweedFS."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portal.app import build_runtime
from portal.cli import main
from portal.demo import demo_settings
from portal.sweep import SweepReport, sweep
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import signed_decision


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _scenario(portal: RunningPortal) -> tuple[SweepReport, SweepReport, SweepReport]:
    runtime = build_runtime(portal.settings, object_store=portal.app.state.portal.object_store)
    store = runtime.object_store.store
    try:
        # Orphans, as a killed instance leaves them: one plain, one under retention.
        await store.put("attachments/orphan-plain", _one(b"x"))
        await store.put(
            "decisions/orphan-locked.pdf",
            _one(b"x"),
            retain_until=datetime.now(UTC) + timedelta(days=365),
        )
        later = datetime.now(UTC) + timedelta(days=2)
        async with runtime.sessionmaker() as db:
            now_report = await sweep(db, store, now=datetime.now(UTC))
            dry = await sweep(db, store, now=later, dry_run=True)
            done = await sweep(db, store, now=later)
        return now_report, dry, done
    finally:
        await runtime.engine.dispose()


def _check(portal: RunningPortal) -> None:
    signed_decision(portal)
    now_report, dry, done = asyncio.run(_scenario(portal))
    # Within the grace period nothing is judged.
    assert now_report.removed == () and now_report.young == 2 and not now_report.alarm
    # Past it: the plain orphan goes (not in a dry run), the locked one is reported, the
    # signed decision (named by its row) and the audit anchors are left alone.
    assert dry.removed == ("attachments/orphan-plain",)
    assert done.removed == ("attachments/orphan-plain",)
    assert [o.key for o in done.locked] == ["decisions/orphan-locked.pdf"]
    assert done.rows == 1 and not done.alarm


def test_sweep_on_the_filesystem_store(portal: RunningPortal) -> None:
    _check(portal)
    # A disk lost the signed decision's file: the row still names it — the alarm.
    objects = portal.settings.object_root / "objects"
    [signed] = [p for p in (objects / "decisions").rglob("signed-*.pdf")]
    signed.unlink()

    async def again() -> SweepReport:
        runtime = build_runtime(portal.settings)
        try:
            async with runtime.sessionmaker() as db:
                return await sweep(db, runtime.object_store.store, now=datetime.now(UTC))
        finally:
            await runtime.engine.dispose()

    report = asyncio.run(again())
    assert report.alarm and report.missing == (str(signed.relative_to(objects)),)


def test_sweep_on_seaweedfs(portal_s3: RunningPortal) -> None:
    _check(portal_s3)


def test_cli_sweep_of_a_demos_data_removes_an_old_orphan(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    settings = demo_settings(data, "127.0.0.1", 8000)
    root = settings.object_root / "objects"
    orphan = root / "attachments" / "left-behind"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"ciphertext nobody can find")
    old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    os.utime(orphan, (old, old))
    assert main(["storage", "sweep", "--data", str(data), "--dry-run"]) == 0
    assert orphan.exists()
    assert main(["storage", "sweep", "--data", str(data)]) == 0
    assert not orphan.exists()


def test_cli_sweep_uploads_and_the_periodic_job_remove_old_temporary_files(
    tmp_path: Path,
) -> None:
    """A demo's filesystem store after a kill mid-upload: its temporary files (the S3 case,
    incomplete multipart uploads, is in tests/storage/test_incomplete_uploads.py)."""
    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    root = demo_settings(data, "127.0.0.1", 8000).object_root / "objects" / "attachments"
    root.mkdir(parents=True, exist_ok=True)
    old, older, fresh = root / ".tmp-old", root / ".tmp-older", root / ".tmp-fresh"
    for path, age in ((old, timedelta(hours=25)), (older, timedelta(days=3)), (fresh, None)):
        path.write_bytes(b"part of an upload")
        if age is not None:
            stamp = (datetime.now(UTC) - age).timestamp()
            os.utime(path, (stamp, stamp))
    assert main(["storage", "sweep-uploads", "--data", str(data), "--dry-run"]) == 0
    assert main(["storage", "sweep-uploads", "--data", str(data), "--older-than-hours", "0"]) == 2
    assert old.exists() and older.exists() and fresh.exists()
    assert main(["storage", "sweep-uploads", "--data", str(data), "--older-than-hours", "48"]) == 0
    assert old.exists() and not older.exists() and fresh.exists()
    assert main(["jobs", "run-once", "--data", str(data)]) == 0  # default: a day
    assert not old.exists() and fresh.exists()
