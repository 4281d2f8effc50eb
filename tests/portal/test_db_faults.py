"""PostgreSQL outages seen through a served portal: stopped, frozen (SIGSTOP), back again.

Each test gets a private PostgreSQL server (tests/servers/postgres.py) that it stops, freezes
and restarts for real; the shared server on 5432 is never touched. The portal runs with short
database timeouts so the bounds below stay small:

- stopped: the API answers 503 problem+json with Retry-After, pages a Swedish 503 page,
  /healthz stays 200 (it never touches the database), nothing of a POST is stored;
- frozen: requests (more than the pool holds) and /readyz answer within their bounds while the
  server is still frozen, instead of hanging for the freeze's duration;
- back: the same portal process answers 200 again, without a restart;
- a statement held up by a lock ends at the statement timeout (503), while a genuine
  programming error (bad SQL, a broken constraint) stays 500.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import get
from sqlalchemy import text

from portal.db.engine import STATEMENT_GRACE
from portal.health.service import CHECK_TIMEOUT
from portal.web.deps import Db
from tests.portal.advisories.helpers import HANNA, JONNA, body
from tests.portal.conftest import RunningPortal, running_portal
from tests.portal.sessions import client_as
from tests.servers.postgres import PrivatePostgres, missing_reason, private_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LIMITS: dict[str, Any] = {
    "db_pool_size": 2,
    "db_max_overflow": 1,
    "db_pool_timeout_seconds": 1.0,
    "db_connect_timeout_seconds": 1.0,
    "db_statement_timeout_seconds": 2.0,
}
REQUEST_BOUND = (
    LIMITS["db_statement_timeout_seconds"]
    + STATEMENT_GRACE
    + LIMITS["db_connect_timeout_seconds"]
    + LIMITS["db_pool_timeout_seconds"]
    + 4.0  # a loaded two-core machine
)
"""Longest a request may take on a frozen database: a pooled connection's ping times out
(statement timeout + grace), a new connection's attempt times out, plus slack."""
READY_BOUND = CHECK_TIMEOUT + 2.0
"""Longest /readyz may take, whatever hangs."""
CLIENT_TIMEOUT = 30.0
"""The test clients' own limit: the code before the fix hangs until here (the test fails)."""


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server for this test."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"a private PostgreSQL server is required under CI: {reason}")
        pytest.skip(reason)
    with private_postgres() as server:
        yield server


@pytest.fixture
def jp(pg: PrivatePostgres, tmp_path: Path) -> Iterator[RunningPortal]:
    """The demo portal on the private server's `postgres` database, short timeouts."""
    with running_portal(tmp_path, pg.url(), **LIMITS) as running:
        yield running


def _client(jp: RunningPortal, personnummer: str) -> httpx.Client:
    client = client_as(jp.url, jp.settings, personnummer)
    client.timeout = httpx.Timeout(CLIENT_TIMEOUT)
    return client


def _assert_problem_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["status"] == 503
    assert problem["title"] == "Databasen svarar inte"
    assert "Försök igen" in problem["detail"]


def _assert_page_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert int(response.headers["retry-after"]) > 0
    assert "Databasen svarar inte" in response.text
    assert "Försök igen om en stund" in response.text


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_stopped_database_answers_503_and_the_same_portal_recovers(
    pg: PrivatePostgres, jp: RunningPortal
) -> None:
    jonna, hanna = _client(jp, JONNA), _client(jp, HANNA)
    until = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    assert hanna.post("/api/v1/advisories", json=body(valid_until=until)).status_code == 201
    sent_before = hanna.get("/api/v1/advisories").json()
    assert jonna.get("/").status_code == 200

    pg.stop()
    _assert_problem_503(jonna.get("/api/v1/advisories"))
    _assert_page_503(jonna.get("/"))
    _assert_problem_503(hanna.post("/api/v1/advisories", json=body(valid_until=until)))
    assert jonna.get("/healthz").status_code == 200
    ready = jonna.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable"

    pg.start()
    assert jonna.get("/api/v1/advisories").status_code == 200
    assert jonna.get("/").status_code == 200
    assert jonna.get("/readyz").json() == {
        "status": "ok",
        "checks": {"database": "ok", "schema": "ok", "object_store": "ok"},
    }
    assert hanna.get("/api/v1/advisories").json() == sent_before  # the refused POST left nothing


def test_frozen_database_answers_within_bounds_and_recovers(
    pg: PrivatePostgres, jp: RunningPortal
) -> None:
    jonna = _client(jp, JONNA)
    assert jonna.get("/api/v1/advisories").status_code == 200
    probe = httpx.Client(base_url=jp.url, timeout=CLIENT_TIMEOUT)

    with pg.frozen(), ThreadPoolExecutor(6) as pool:
        # More requests than the pool holds (2 + 1 overflow): the rest wait pool_timeout.
        api = [pool.submit(_timed, lambda: jonna.get("/api/v1/advisories")) for _ in range(4)]
        page = pool.submit(_timed, lambda: jonna.get("/"))
        ready = pool.submit(_timed, lambda: probe.get("/readyz"))
        ready_response, ready_took = ready.result()
        results = [f.result() for f in api]
        page_response, page_took = page.result()
        health = probe.get("/healthz")
        # Still frozen here: every answer above came during the freeze, not after it.

    assert ready_response.status_code == 503 and ready_took < READY_BOUND, ready_took
    assert ready_response.json()["checks"]["database"] == "timeout"
    for response, took in results:
        _assert_problem_503(response)
        assert took < REQUEST_BOUND, took
    _assert_page_503(page_response)
    assert page_took < REQUEST_BOUND, page_took
    assert health.status_code == 200

    # Thawed: the same portal serves again (a pooled connection may still be settling).
    deadline = time.monotonic() + 15
    while (status := jonna.get("/api/v1/advisories").status_code) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert probe.get("/readyz").status_code == 200


@get("/test-only/bad-sql", include_in_schema=False)
async def bad_sql(db: Db) -> None:
    """A programming error: a table that doesn't exist."""
    await db.execute(text("SELECT * FROM no_such_table"))


@get("/test-only/duplicate", include_in_schema=False)
async def duplicate(db: Db) -> None:
    """A programming error: the same primary key twice."""
    await db.execute(text("CREATE TEMPORARY TABLE t (id int PRIMARY KEY)"))
    await db.execute(text("INSERT INTO t VALUES (1), (1)"))


def test_lock_wait_ends_at_the_statement_timeout_and_bugs_stay_500(
    pg: PrivatePostgres, jp: RunningPortal
) -> None:
    jp.app.register(bad_sql)
    jp.app.register(duplicate)
    jonna = _client(jp, JONNA)
    assert jonna.get("/api/v1/advisories").status_code == 200

    async def locked_while(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
        # Another session holds the advisories table: the request's SELECT waits for the lock.
        conn = await asyncpg.connect(pg.url().replace("postgresql+asyncpg", "postgresql"))
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE advisories IN ACCESS EXCLUSIVE MODE")
                return await asyncio.to_thread(_timed, call)
        finally:
            await conn.close()

    response, took = asyncio.run(locked_while(lambda: jonna.get("/api/v1/advisories")))
    _assert_problem_503(response)
    assert LIMITS["db_statement_timeout_seconds"] <= took < REQUEST_BOUND, took
    assert jonna.get("/api/v1/advisories").status_code == 200  # lock gone: served again

    for path in ("/test-only/bad-sql", "/test-only/duplicate"):
        crashed = jonna.get(path, headers={"accept": "application/json"})
        assert crashed.status_code == 500, crashed.text
        assert "retry-after" not in crashed.headers
        assert crashed.json()["title"] == "Något gick fel"
