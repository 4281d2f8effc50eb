"""The `jourpost` command: demo preparation is idempotent, db check, audit verify."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from portal.cli import main
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Membership, Organisation, User
from portal.demo import DEMO_PERSONS, MEMBERS, demo_settings
from portal.demo_night import OTHER_CHAIRS
from tests.servers.net import free_port


async def _counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            return (
                await db.scalar(select(func.count()).select_from(Organisation)) or 0,
                await db.scalar(select(func.count()).select_from(User)) or 0,
                await db.scalar(select(func.count()).select_from(Membership)) or 0,
            )
    finally:
        await engine.dispose()


def test_demo_prepare_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    settings = demo_settings(data, "127.0.0.1", 8000)
    first = asyncio.run(_counts(settings.database_url))
    # The demo persons, plus a fictitious chair and substitute for each member municipality
    # without a demo chair (portal.demo_night: every municipality has a roster).
    extra = 2 * len(OTHER_CHAIRS)
    assert first == (2 + len(MEMBERS), len(DEMO_PERSONS) + extra, len(DEMO_PERSONS) + extra)
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    assert asyncio.run(_counts(settings.database_url)) == first
    assert (data / "secrets.toml").stat().st_mode & 0o077 == 0


def test_db_check_and_audit_verify_through_the_console_script(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    settings = demo_settings(data, "127.0.0.1", 8000)
    env = {
        "JOURPOST_CONFIG": str(data / "secrets.toml"),
        "JOURPOST_DATABASE_URL": settings.database_url,
        "JOURPOST_DEV_IDP_ENABLED": "true",
        "PATH": "/usr/bin:/bin",
    }
    jourpost = [sys.executable, "-m", "portal.cli"]
    check = subprocess.run([*jourpost, "db", "check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "schema matches" in check.stdout
    ok = subprocess.run([*jourpost, "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout

    async def tamper() -> None:
        engine = make_engine(settings.database_url)
        async with make_sessionmaker(engine)() as db, db.begin():
            await db.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(outcome="x"))
        await engine.dispose()

    asyncio.run(tamper())
    bad = subprocess.run([*jourpost, "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "entry 2" in bad.stdout


def test_serve_refuses_an_unsafe_production_configuration(tmp_path: Path) -> None:
    env = {"JOURPOST_MODE": "production", "JOURPOST_DEV_IDP_ENABLED": "true", "PATH": "/usr/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "portal.cli", "serve"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "refuses the development identity provider" in r.stderr
    assert "key-encryption key" in r.stderr


def test_anchors_detect_a_chain_rewritten_with_fresh_hashes(tmp_path: Path) -> None:
    """Someone with database access edits an entry and recomputes every later hash: the chain
    verifies, but the head anchored earlier in the object store no longer matches."""
    from portal.audit.service import entry_hash
    from portal.db.models import AuditHead

    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    settings = demo_settings(data, "127.0.0.1", 8000)
    env = {
        "JOURPOST_CONFIG": str(data / "secrets.toml"),
        "JOURPOST_DATABASE_URL": settings.database_url,
        "JOURPOST_DATA_DIR": settings.data_dir,
        "JOURPOST_DEV_IDP_ENABLED": "true",
        "PATH": "/usr/bin:/bin",
    }
    jourpost = [sys.executable, "-m", "portal.cli"]
    run = subprocess.run([*jourpost, "jobs", "run-once"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # What each job did, one line per job (it printed only the advisory reminders before).
    assert run.stdout.splitlines() == [
        "purge_sessions: 0 sessions purged",
        "expiry_reminders: 1 reminders and notices queued",  # the demo's expiring advisory
        "audit_anchor: 1 anchors written",
        "abort_uploads: 0 incomplete uploads aborted",
    ], run.stdout
    ok = subprocess.run([*jourpost, "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "1 anchors match" in ok.stdout, ok.stdout + ok.stderr

    async def rewrite() -> None:
        engine = make_engine(settings.database_url)
        async with make_sessionmaker(engine)() as db, db.begin():
            rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
            rows[1].outcome = "denied"
            prev = rows[0].hash
            for e in rows[1:]:
                e.prev_hash = prev
                e.hash = "x" * 64  # placeholder, set below (unique constraint)
                await db.flush()
                e.hash = entry_hash(
                    seq=e.seq,
                    at=e.at,
                    actor_user_id=e.actor_user_id,
                    actor_org_id=e.actor_org_id,
                    owner_org_id=e.owner_org_id,
                    action=e.action,
                    object_type=e.object_type,
                    object_id=e.object_id,
                    outcome=e.outcome,
                    details=e.details,
                    prev_hash=e.prev_hash,
                )
                await db.flush()
                prev = e.hash
            await db.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
        await engine.dispose()

    asyncio.run(rewrite())
    bad = subprocess.run([*jourpost, "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "REWRITTEN" in bad.stdout, bad.stdout


def _keys_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import base64
    import os

    key = lambda: base64.b64encode(os.urandom(32)).decode()  # noqa: E731
    return {
        "PATH": "/usr/bin:/bin",
        "JOURPOST_KEKS": f"k1:{key()}",
        "JOURPOST_CURRENT_KEK": "k1",
        "JOURPOST_BLIND_INDEX_KEY": key(),
        "JOURPOST_SECRET_KEY": key(),
        "JOURPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "JOURPOST_DATA_DIR": str(tmp_path),
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        # No JOURPOST_MODE at all: the default mode must not let the dev identity provider in.
        ({"JOURPOST_DEV_IDP_ENABLED": "true"}, "anyone could log in as anyone"),
        (
            {"JOURPOST_MODE": "demo", "JOURPOST_DEV_IDP_ENABLED": "true"},
            "development identity provider is enabled",
        ),
        (
            {"JOURPOST_MODE": "development", "JOURPOST_OIDC_ISSUER": "https://idp.example"},
            "not https",
        ),
    ],
)
def test_serve_is_secure_by_default(tmp_path: Path, extra: dict[str, str], reason: str) -> None:
    port = free_port()
    env = _keys_env(tmp_path, JOURPOST_PORT=str(port), **extra)
    r = subprocess.run(
        [sys.executable, "-m", "portal.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "refusing to start an insecure portal" in r.stderr and reason in r.stderr
    assert "--insecure-development" in r.stderr


def test_serve_runs_the_dev_setup_only_when_asked_loudly(tmp_path: Path) -> None:
    import time

    import httpx

    port = free_port()
    env = _keys_env(tmp_path, JOURPOST_PORT=str(port), JOURPOST_DEV_IDP_ENABLED="true")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--insecure-development"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "INSECURE DEVELOPMENT SERVER" in err


def test_audit_verify_tells_a_restore_and_record_restore_acknowledges_it(tmp_path: Path) -> None:
    """The operator's rehearsal through the command line, on a demo's data."""
    import shutil

    data = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--no-serve"]) == 0
    settings = demo_settings(data, "127.0.0.1", 8000)
    db_file = Path(settings.database_url.split("///", 1)[1])
    backup = tmp_path / "backup.sqlite3"
    shutil.copyfile(db_file, backup)  # the nightly backup
    jourpost = [sys.executable, "-m", "portal.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*jourpost, *args, "--data", str(data)], capture_output=True, text=True, timeout=120
        )

    # A day's work after the backup, anchored in the object store.
    async def work() -> None:
        from portal.audit import service as audit

        engine = make_engine(settings.database_url)
        try:
            for n in range(5):
                async with make_sessionmaker(engine)() as db, db.begin():
                    await audit.record(db, "report.read", details={"n": n})
        finally:
            await engine.dispose()

    asyncio.run(work())
    assert run("jobs", "run-once").returncode == 0
    assert run("audit", "verify").returncode == 0
    shutil.copyfile(backup, db_file)  # the database is restored; the object store is not
    shorter = run("audit", "verify")
    assert shorter.returncode == 1 and "SHORTER than its anchors" in shorter.stdout
    assert "REWRITTEN" not in shorter.stdout
    recorded = run("audit", "record-restore")
    assert recorded.returncode == 0, recorded.stderr
    after = run("audit", "verify")
    assert after.returncode == 0, after.stdout
    assert "were lost in a restore from backup" in after.stdout
