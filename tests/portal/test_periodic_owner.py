"""One owner for periodic work with several instances on one PostgreSQL database.

Each instance's lifespan runs a round of jobs (session purge, expiry reminders, audit anchor)
every 15 minutes. A round claims each job in `periodic_jobs` and, on PostgreSQL, runs it under
a session-level advisory lock, so every job runs once per round whatever the number of
instances; `run_periodic_jobs=false` takes an instance out of the periodic work altogether.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from portal import jobs
from portal.metrics import Metrics
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database
from tests.servers.portal import serve

pytestmark = pytest.mark.postgres


def _count(metrics: Metrics, family: str, job: str) -> float:
    value = metrics.registry.get_sample_value(f"{family}_total", {"job": job})
    return value or 0.0


def _tries(metrics: Metrics, job: str) -> float:
    return _count(metrics, "jourpost_job_runs", job) + _count(metrics, "jourpost_job_skipped", job)


def _wait(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


async def _job_rows(url: str) -> dict[str, Any]:
    from portal.db.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            rows = (await db.scalars(select(jobs.PeriodicJob))).all()
            return {r.name: r for r in rows}
    finally:
        await engine.dispose()


def _serve_instances(stack: ExitStack, base: Settings, *participating: bool) -> list[Any]:
    """Serve one app per flag (run_periodic_jobs), all on `base`'s database and files."""
    from portal.app import create_app

    apps: list[Any] = []
    for flag in participating:

        def factory(port: int, flag: bool = flag) -> object:
            settings = dataclasses.replace(
                base, public_url=f"http://127.0.0.1:{port}", run_periodic_jobs=flag
            )
            apps.append(create_app(settings))
            return apps[-1]

        stack.enter_context(serve(factory))
    return apps


def test_two_instances_run_each_job_once_per_round(pg_url: str, tmp_path: Path) -> None:
    base = make_settings(tmp_path, pg_url)
    asyncio.run(prepare_database(base))
    with ExitStack() as stack:
        apps = _serve_instances(stack, base, True, True)
        both = [app.state.portal.metrics for app in apps]
        _wait(lambda: all(sum(_tries(m, job) for m in both) == 2 for job in jobs.JOB_NAMES))
        for job in jobs.JOB_NAMES:
            runs = [_count(m, "jourpost_job_runs", job) for m in both]
            assert sum(runs) == 1, (job, runs)
            assert sum(_count(m, "jourpost_job_failures", job) for m in both) == 0
    rows = asyncio.run(_job_rows(pg_url))
    assert sorted(rows) == sorted(jobs.JOB_NAMES)
    assert all(r.last_succeeded_at is not None for r in rows.values())


async def _concurrent_rounds(url: str, tmp_path: Path) -> list[Metrics]:
    from portal.app import build_runtime

    settings = make_settings(tmp_path, url)
    runtimes = [build_runtime(settings) for _ in range(2)]
    try:
        gap = timedelta(seconds=jobs.INTERVAL_SECONDS / 2)  # what the lifespan loop uses
        await asyncio.gather(
            *(
                jobs.run_round(
                    jobs.JobContext(rt.sessionmaker, rt.object_store.store, rt.policy),
                    gap=gap,
                    metrics=rt.metrics,
                )
                for rt in runtimes
            )
        )
        return [rt.metrics for rt in runtimes]
    finally:
        for rt in runtimes:
            await rt.engine.dispose()


def test_rounds_started_at_the_same_moment_run_each_job_once(pg_url: str, tmp_path: Path) -> None:
    both = asyncio.run(_concurrent_rounds(pg_url, tmp_path))
    for job in jobs.JOB_NAMES:
        assert sum(_count(m, "jourpost_job_runs", job) for m in both) == 1, job
        assert sum(_count(m, "jourpost_job_skipped", job) for m in both) == 1, job


async def _run_once_while_locked(url: str, tmp_path: Path) -> tuple[Metrics, Metrics]:
    """run_once while another session holds purge_sessions' lock, then after it let go."""
    from portal.app import build_runtime

    runtime = build_runtime(make_settings(tmp_path, url))
    other = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        key = jobs.lock_key("purge_sessions")
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", key)
        held, freed = Metrics(), Metrics()
        await jobs.run_once(runtime.sessionmaker, runtime.object_store.store, metrics=held)
        await other.execute("SELECT pg_advisory_unlock($1)", key)
        await jobs.run_once(runtime.sessionmaker, runtime.object_store.store, metrics=freed)
        return held, freed
    finally:
        await other.close()
        await runtime.engine.dispose()


def test_a_job_another_instance_is_running_is_skipped(pg_url: str, tmp_path: Path) -> None:
    held, freed = asyncio.run(_run_once_while_locked(pg_url, tmp_path))
    assert _count(held, "jourpost_job_skipped", "purge_sessions") == 1
    assert _count(held, "jourpost_job_runs", "purge_sessions") == 0
    assert _count(held, "jourpost_job_runs", "expiry_reminders") == 1  # only that job waits
    assert _count(freed, "jourpost_job_runs", "purge_sessions") == 1  # next time it runs


def test_an_instance_with_run_periodic_jobs_false_runs_no_jobs(pg_url: str, tmp_path: Path) -> None:
    base = make_settings(tmp_path, pg_url)
    asyncio.run(prepare_database(base))
    with ExitStack() as stack:
        # The non-participant starts first: a loop of its own would have begun its round
        # before the participant's round is over.
        passive, active = _serve_instances(stack, base, False, True)
        metrics = active.state.portal.metrics
        _wait(lambda: all(_tries(metrics, job) == 1 for job in jobs.JOB_NAMES))
        assert all(_count(metrics, "jourpost_job_runs", job) == 1 for job in jobs.JOB_NAMES)
    idle = passive.state.portal.metrics
    assert all(_tries(idle, job) == 0 for job in jobs.JOB_NAMES)
