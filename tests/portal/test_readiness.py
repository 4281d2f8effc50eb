"""/readyz tells the load balancer the truth, in time; the portal starts without S3.

- An unmigrated or older database is not ready ("schema": "unmigrated" / "behind"); the same
  process becomes ready once `db upgrade` has run.
- S3 down at start-up (SeaweedFS not running yet): the portal starts, /readyz is 200 "degraded"
  and names the object store, pages and the API that need no files work, uploads answer 503;
  once S3 runs, "ok".
- S3 frozen (SIGSTOP): /readyz still answers within its bound, and pages keep working.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.health.service import CHECK_TIMEOUT
from portal.settings import Settings
from tests.conftest import drop_pg_database, make_pg_database
from tests.portal.advisories.helpers import HANNA, JONNA, body, pdf_bytes
from tests.portal.conftest import running_portal
from tests.portal.sessions import client_as
from tests.servers.seaweedfs import SeaweedFS, reserve_ports, seaweedfs

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

READY_BOUND = CHECK_TIMEOUT + 2.0
"""Longest /readyz may take, whatever hangs (checks run concurrently; slack for a busy box)."""
CLIENT_TIMEOUT = 30.0
"""The test clients' own limit: code that hangs fails the test here."""


@pytest.fixture
def empty_pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database that was never migrated."""
    name, url = make_pg_database(pg_server)
    try:
        yield url
    finally:
        drop_pg_database(name)


def _ready(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(f"{url}/readyz", timeout=CLIENT_TIMEOUT)
    return response, time.monotonic() - started


def _wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


async def _migrate_to(settings: Settings, revision: str) -> None:
    from portal.db import migrate
    from portal.db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        await migrate.upgrade(engine, revision)
    finally:
        await engine.dispose()


def test_unmigrated_and_older_database_is_not_ready(tmp_path: Path, empty_pg_url: str) -> None:
    from alembic.script import ScriptDirectory

    from portal.db import migrate

    head = migrate.head_revision()
    assert head is not None
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str)

    with running_portal(tmp_path, empty_pg_url, prepare=False) as jp:
        ready, _ = _ready(jp.url)
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "schema": "unmigrated", "object_store": "ok"},
        }
        assert int(ready.headers["retry-after"]) > 0

        asyncio.run(_migrate_to(jp.settings, previous))
        ready, _ = _ready(jp.url)
        assert ready.status_code == 503
        assert ready.json()["checks"]["schema"] == "behind"

        asyncio.run(_migrate_to(jp.settings, head))
        ready, _ = _ready(jp.url)
        assert ready.status_code == 200, ready.text  # the same process, no restart
        assert ready.json()["checks"]["schema"] == "ok"


def _s3_settings(endpoint: str, secret: str) -> dict[str, Any]:
    return {
        "storage_backend": "s3",
        "s3_endpoint": endpoint,
        "s3_access_key": "portal",
        "s3_secret_key": secret,
        "s3_bucket": f"jp-{uuid.uuid4().hex[:12]}",
        "s3_secure": False,
        "s3_connect_timeout_seconds": 1.0,
        "s3_read_timeout_seconds": 3.0,
        "s3_max_attempts": 1,
    }


def _upload(client: httpx.Client, advisory_id: str) -> httpx.Response:
    return client.post(
        f"/api/v1/advisories/{advisory_id}/attachments",
        files={"attachments": ("plan.pdf", pdf_bytes("Plan"), "application/pdf")},
    )


def test_portal_starts_without_s3_and_becomes_ready_when_it_runs(
    tmp_path: Path, pg_url: str
) -> None:
    ports, secret = reserve_ports(), secrets.token_urlsafe(24)
    settings = _s3_settings(f"127.0.0.1:{ports[0]}", secret)  # nothing listens there yet

    with running_portal(tmp_path, pg_url, **settings) as jp:  # starts: no S3 needed
        ready, took = _ready(jp.url)
        # Ready for everything that needs no file (lookups, advisories, reports): a shared
        # store outage must not take every instance out of the load balancer. It says so.
        assert ready.status_code == 200 and took < READY_BOUND, took
        assert ready.json() == {
            "status": "degraded",
            "checks": {"database": "ok", "schema": "ok", "object_store": "unavailable"},
        }

        jonna, hanna = client_as(jp.url, jp.settings, JONNA), client_as(jp.url, jp.settings, HANNA)
        assert jonna.get("/").status_code == 200  # pages without files work
        assert jonna.get("/api/v1/advisories").status_code == 200
        until = (datetime.now(UTC) + timedelta(days=5)).isoformat()
        created = hanna.post("/api/v1/advisories", json=body(valid_until=until))
        assert created.status_code == 201, created.text
        refused = _upload(hanna, created.json()["id"])
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0

        with seaweedfs(ports=ports, secret_key=secret):
            _wait_until(lambda: _ready(jp.url)[0].json()["status"] == "ok")
            stored = _upload(hanna, created.json()["id"])
            assert stored.status_code in (200, 201), stored.text


@contextmanager
def _frozen(server: SeaweedFS) -> Iterator[None]:
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def test_frozen_s3_readiness_answers_in_time_and_pages_work(tmp_path: Path, pg_url: str) -> None:
    with seaweedfs() as s3:
        settings = _s3_settings(s3.endpoint, s3.secret_key)
        with running_portal(tmp_path, pg_url, **settings) as jp:
            _wait_until(lambda: _ready(jp.url)[0].json()["status"] == "ok")
            jonna = client_as(jp.url, jp.settings, JONNA)
            jonna.timeout = httpx.Timeout(CLIENT_TIMEOUT)
            with _frozen(s3):
                ready, took = _ready(jp.url)
                page = jonna.get("/")
            assert ready.status_code == 200 and took < READY_BOUND, took
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["object_store"] == "timeout"
            assert ready.json()["checks"]["database"] == "ok"
            assert page.status_code == 200
            _wait_until(lambda: _ready(jp.url)[0].json()["status"] == "ok")
