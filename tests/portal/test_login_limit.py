"""The login-start limit holds across instances: it is counted in the shared database.

Two portal apps (each with its own engine, pool and state, as two instances behind a load
balancer) on one database, SQLite and PostgreSQL: starts alternating between them are refused
after LOGIN_START_LIMIT in all (an in-memory count per instance allowed twice that). The count
is one statement: many starts from two engines at once let exactly the limit through. Finished
windows are purged by the session purge job.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.account import service
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import LoginStartCount
from portal.pii import Vault
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import RunningPortal, prepare_database
from tests.servers.portal import serve


@pytest.fixture
def two_instances(database_url: str, tmp_path: Path) -> Iterator[list[RunningPortal]]:
    """Two portal apps on one database with the same keys, each with a data directory of its
    own and no periodic jobs."""
    from portal.app import create_app

    shared = make_settings(tmp_path, database_url, run_periodic_jobs=False)
    asyncio.run(prepare_database(shared))

    def instance(index: int) -> Iterator[RunningPortal]:
        holder: dict[str, Any] = {}

        def factory(port: int) -> object:
            data = tmp_path / f"instance{index}"
            data.mkdir()
            holder["settings"] = dataclasses.replace(
                shared, public_url=f"http://127.0.0.1:{port}", data_dir=str(data)
            )
            holder["app"] = create_app(holder["settings"])
            return holder["app"]

        with serve(factory) as url:
            yield RunningPortal(url, holder["settings"], holder["app"])

    first, second = instance(0), instance(1)
    try:
        yield [next(first), next(second)]
    finally:
        for gen in (second, first):
            gen.close()


def _start(portal: RunningPortal) -> httpx.Response:
    return httpx.get(f"{portal.url}/auth/login", headers={"accept": "text/html"})


def test_the_limit_holds_across_two_instances(two_instances: list[RunningPortal]) -> None:
    a, b = two_instances
    for i in range(service.LOGIN_START_LIMIT):
        started = _start((a, b)[i % 2])
        assert started.status_code in (302, 303), started.text
    for portal in (a, b):  # each instance has seen only half the limit; both refuse
        refused = _start(portal)
        assert refused.status_code == 429
        retry = int(refused.headers["retry-after"])
        assert 0 < retry <= service.LOGIN_START_WINDOW.total_seconds()
        assert "För många inloggningsförsök" in refused.text


def _vault(settings: Settings) -> Vault:
    return Vault(settings.keks, settings.current_kek, settings.blind_index_key)


async def _counted_at_once(settings: Settings, starts: int) -> list[int | None]:
    """`starts` starts from one address, half through each of two engines, all at once, each
    in its own transaction; what each got."""
    engines = [make_engine(settings.database_url) for _ in range(2)]
    limiter, vault = service.LoginStartLimiter(), _vault(settings)
    go = asyncio.Event()

    async def one(index: int) -> int | None:
        await go.wait()
        async with make_sessionmaker(engines[index % 2])() as db, db.begin():
            return await limiter.retry_after(db, vault, "203.0.113.7")

    try:
        tasks = [asyncio.ensure_future(one(i)) for i in range(starts)]
        go.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        for engine in engines:
            await engine.dispose()


def test_starts_at_once_from_two_engines_let_exactly_the_limit_through(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url)
    asyncio.run(prepare_database(settings))
    answers = asyncio.run(_counted_at_once(settings, 2 * service.LOGIN_START_LIMIT + 10))
    assert answers.count(None) == service.LOGIN_START_LIMIT
    assert all(a is not None and a > 0 for a in answers if a is not None)


async def _rows(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return int(await db.scalar(select(func.count()).select_from(LoginStartCount)) or 0)
    finally:
        await engine.dispose()


async def _count_and_purge(settings: Settings) -> tuple[int, int]:
    """Starts from two addresses (one an IPv6 /64 from two hosts: one row), one of them a
    window ago: the rows before and after the purge job."""
    engine = make_engine(settings.database_url)
    limiter, vault = service.LoginStartLimiter(), _vault(settings)
    maker = make_sessionmaker(engine)
    now = utcnow()
    try:
        async with maker() as db, db.begin():
            await limiter.retry_after(
                db, vault, "198.51.100.1", now - 2 * service.LOGIN_START_WINDOW
            )
            await limiter.retry_after(db, vault, "2001:db8:1:2::10", now)
            await limiter.retry_after(db, vault, "2001:db8:1:2:ffff::1", now)  # the same /64
        before = await _rows(settings)
        await jobs.run_once(maker)
        after = await _rows(settings)
    finally:
        await engine.dispose()
    return before, after


def test_the_purge_job_deletes_finished_windows_only(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url)
    asyncio.run(prepare_database(settings))
    before, after = asyncio.run(_count_and_purge(settings))
    assert (before, after) == (2, 1)


def test_a_new_window_starts_after_the_last_one_ended(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url)
    asyncio.run(prepare_database(settings))

    async def run() -> list[int | None]:
        engine = make_engine(settings.database_url)
        limiter, vault = service.LoginStartLimiter(limit=2), _vault(settings)
        t0 = utcnow()
        answers = []
        try:
            for at in (t0, t0 + timedelta(seconds=10), t0 + timedelta(seconds=20)):
                async with make_sessionmaker(engine)() as db, db.begin():
                    answers.append(await limiter.retry_after(db, vault, "192.0.2.9", at))
            later = t0 + service.LOGIN_START_WINDOW + timedelta(seconds=1)
            async with make_sessionmaker(engine)() as db, db.begin():
                answers.append(await limiter.retry_after(db, vault, "192.0.2.9", later))
        finally:
            await engine.dispose()
        return answers

    # Allowed, allowed, refused until 60 s after the first start (40 s left), allowed again.
    assert asyncio.run(run()) == [None, None, 40, None]
