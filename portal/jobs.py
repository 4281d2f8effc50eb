"""Periodic jobs of a portal instance: the purge of unfinished, ended and expired browser
sessions, advisory expiry reminders, audit-chain anchors, and aborting uploads a killed
instance left incomplete.

Run in every instance's lifespan (every 15 minutes, unless `run_periodic_jobs` is false) and by
`jourpost jobs run-once` (for cron). The e-mail outbox is not one of them: every instance's
dispatcher sends mail, each row under a lease.

One owner per job and round, with several instances on one database:
- on PostgreSQL a job runs only under a session-level advisory lock (`pg_try_advisory_lock`,
  one key per job): an instance that doesn't get it skips the job (logged at DEBUG);
- every instance's loop claims the round in the `periodic_jobs` table with a conditional UPDATE
  (the job's `last_started_at` older than half an interval), so a job that finished a moment ago
  in another instance is not run again in the same round. `run_once` (cron, tests) claims
  without that gap: it runs every job now unless another instance is running it.
On SQLite (one instance) the lock is not needed; the claim works the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, or_, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from auth.sessions import SessionPolicy
from portal.db.base import Base, utcnow
from storage import ObjectStore

if TYPE_CHECKING:
    from portal.metrics import Metrics
    from portal.pii import Vault

log = logging.getLogger("jourpost.jobs")

INTERVAL_SECONDS = 15 * 60
JOB_NAMES = ("purge_sessions", "expiry_reminders", "audit_anchor", "abort_uploads")
"""The periodic jobs, in the order a round runs them (also the `job` label of the metrics)."""


class PeriodicJob(Base):
    """When a periodic job was last started and last succeeded (by any instance)."""

    __tablename__ = "periodic_jobs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_succeeded_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True, slots=True)
class JobContext:
    """What the jobs work on."""

    maker: async_sessionmaker[AsyncSession]
    store: ObjectStore | None = None
    session_policy: SessionPolicy | None = None
    vault: Vault | None = None  # to address the chair's reminder (e-mail encrypted at rest)
    upload_max_age: timedelta = timedelta(hours=24)  # incomplete uploads older are aborted


@dataclass(slots=True)
class RoundReport:
    """What one round did: per job that ran, its count; the jobs skipped and failed."""

    ran: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def lock_key(job: str) -> int:
    """The PostgreSQL advisory-lock key of `job` (stable across instances and versions)."""
    return zlib.crc32(f"jourpost.jobs.{job}".encode())


async def _purge_sessions(ctx: JobContext) -> int:
    from portal.account.service import purge_sessions
    from portal.assignments.service import purge_handover
    from portal.drafts.service import purge_expired

    async with ctx.maker() as db, db.begin():
        purged = await purge_sessions(db, now=utcnow(), policy=ctx.session_policy)
        drafts = await purge_expired(db, now=utcnow())  # a draft lives beyond its session
        notes = await purge_handover(db, now=utcnow())
    if purged or drafts or notes:
        log.info(
            "purged %d browser sessions, %d expired form drafts and %d old handover notes",
            purged, drafts, notes,
        )  # fmt: skip
    return purged


async def _expiry_reminders(ctx: JobContext) -> int:
    """Advisories about to expire, assignments past their deadline (escalated), and decisions
    still waiting for the chair's signature (the chair reminded, then the jour told); returns
    how many of the three were handled."""
    from portal.advisories.service import send_expiry_reminders
    from portal.assignments.service import escalate_overdue
    from portal.decisions.service import remind_unsigned

    async with ctx.maker() as db, db.begin():
        queued = await send_expiry_reminders(db, now=utcnow())
        overdue = await escalate_overdue(db, now=utcnow())
        unsigned = await remind_unsigned(db, ctx.vault, now=utcnow()) if ctx.vault else 0
    if queued or overdue or unsigned:
        log.info(
            "queued %d expiry reminders, escalated %d overdue assignments, %d unsigned decisions",
            queued, overdue, unsigned,
        )  # fmt: skip
    return queued + overdue + unsigned


async def _audit_anchor(ctx: JobContext) -> int:
    from portal.audit.anchor import anchor

    if ctx.store is None:
        return 0
    async with ctx.maker() as db:
        seq = await anchor(db, ctx.store)
    return 0 if seq is None else 1


async def _abort_uploads(ctx: JobContext) -> int:
    """Incomplete uploads older than `upload_max_age` (an instance killed mid-upload): aborted."""
    from portal.sweep import sweep_uploads

    if ctx.store is None:
        return 0
    report = await sweep_uploads(ctx.store, now=utcnow(), max_age=ctx.upload_max_age)
    if report.aborted:
        log.info("aborted %d incomplete uploads", len(report.aborted))
    return len(report.aborted)


JOBS: dict[str, Callable[[JobContext], Awaitable[int]]] = {
    "purge_sessions": _purge_sessions,
    "expiry_reminders": _expiry_reminders,
    "audit_anchor": _audit_anchor,
    "abort_uploads": _abort_uploads,
}


def _engine_of(maker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = maker.kw.get("bind")
    assert isinstance(bind, AsyncEngine), "the sessionmaker must be bound to an engine"
    return bind


@contextlib.asynccontextmanager
async def _advisory_lock(engine: AsyncEngine, job: str) -> AsyncIterator[bool]:
    """Hold `job`'s session-level advisory lock for the block (PostgreSQL); yield whether we got
    it. Elsewhere yield True. Closing a broken connection ends its session, releasing the lock."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        key = lock_key(job)
        got = bool(await auto.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        try:
            yield got
        finally:
            if got:
                try:
                    await auto.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except Exception:  # the session is gone or unusable: drop it, the lock goes too
                    await conn.invalidate()


def _insert_ignore(dialect: str, job: str) -> Any:
    """INSERT of `job`'s row that does nothing when another instance just created it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(PeriodicJob).values(name=job).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(PeriodicJob).values(name=job).on_conflict_do_nothing()


async def _claim_round(maker: async_sessionmaker[AsyncSession], job: str, gap: timedelta) -> bool:
    """Mark `job` started now unless it started less than `gap` ago; whether we may run it."""
    now = utcnow()
    async with maker() as db, db.begin():
        if await db.get(PeriodicJob, job) is None:  # first round ever: create the row
            await db.execute(_insert_ignore(db.get_bind().dialect.name, job))
        claimed = await db.execute(
            update(PeriodicJob)
            .where(
                PeriodicJob.name == job,
                or_(
                    PeriodicJob.last_started_at.is_(None),
                    PeriodicJob.last_started_at <= now - gap,
                ),
            )
            .values(last_started_at=now)
        )
    return getattr(claimed, "rowcount", 0) == 1


async def _mark_success(maker: async_sessionmaker[AsyncSession], job: str) -> None:
    async with maker() as db, db.begin():
        await db.execute(
            update(PeriodicJob).where(PeriodicJob.name == job).values(last_succeeded_at=utcnow())
        )


async def run_job(
    ctx: JobContext, job: str, *, gap: timedelta, metrics: Metrics | None = None
) -> int | None:
    """Run one job if this instance owns it this round; its count, or None when skipped.

    A failure (of the job, or of the database while claiming it) is counted, logged by type and
    re-raised.
    """
    try:
        count = await _run_if_owner(ctx, job, gap, metrics)
    except Exception as exc:
        log.warning("job %s failed: %s", job, type(exc).__name__)
        if metrics is not None:
            metrics.job_failures.labels(job).inc()
        raise
    if count is None:
        log.debug("job %s skipped: another instance runs it this round", job)
        if metrics is not None:
            metrics.job_skipped.labels(job).inc()
        return None
    log.info("job %s done (%d)", job, count)
    if metrics is not None:
        metrics.job_last_success.labels(job).set(time.time())
    return count


async def _run_if_owner(
    ctx: JobContext, job: str, gap: timedelta, metrics: Metrics | None
) -> int | None:
    async with _advisory_lock(_engine_of(ctx.maker), job) as mine:
        if not mine or not await _claim_round(ctx.maker, job, gap):
            return None
        if metrics is not None:
            metrics.job_runs.labels(job).inc()
        count = await JOBS[job](ctx)
        await _mark_success(ctx.maker, job)
    return count


async def run_round(
    ctx: JobContext, *, gap: timedelta = timedelta(0), metrics: Metrics | None = None
) -> RoundReport:
    """Run every job this instance owns this round; one job's failure doesn't stop the others."""
    report = RoundReport()
    for job in JOB_NAMES:
        try:
            count = await run_job(ctx, job, gap=gap, metrics=metrics)
        except Exception:  # logged and counted by run_job; retried next round
            report.failed.append(job)
            continue
        if count is None:
            report.skipped.append(job)
        else:
            report.ran[job] = count
    return report


async def run_once(
    maker: async_sessionmaker[AsyncSession],
    store: ObjectStore | None = None,
    session_policy: SessionPolicy | None = None,
    metrics: Metrics | None = None,
    vault: Vault | None = None,
) -> int:
    """Run every job once now (unless another instance is running it); return how many
    reminders and notices were queued (expiring advisories, overdue assignments, unsigned
    decisions). Raises RuntimeError naming the jobs that failed.

    With `store` (the raw object store), the audit chain's head is also anchored there. Pending
    logins and ended sessions are purged; with `session_policy`, sessions past their timeouts too.
    """
    report = await run_once_report(maker, store, session_policy, metrics, vault)
    return report.ran.get("expiry_reminders", 0)


async def run_once_report(
    maker: async_sessionmaker[AsyncSession],
    store: ObjectStore | None = None,
    session_policy: SessionPolicy | None = None,
    metrics: Metrics | None = None,
    vault: Vault | None = None,
    upload_max_age: timedelta = timedelta(hours=24),
) -> RoundReport:
    """`run_once`, returning what each job did (`jourpost jobs run-once` prints it)."""
    ctx = JobContext(maker, store, session_policy, vault, upload_max_age)
    report = await run_round(ctx, metrics=metrics)
    if report.failed:
        raise RuntimeError(f"periodic jobs failed: {', '.join(report.failed)}")
    return report


async def _loop(ctx: JobContext, interval: float, metrics: Metrics | None) -> None:
    gap = timedelta(seconds=interval / 2)  # another instance's run this round counts as ours
    while True:
        try:
            await run_round(ctx, gap=gap, metrics=metrics)
        except Exception as exc:  # e.g. the database is unreachable: retried next round
            log.warning("periodic jobs failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def start(
    maker: async_sessionmaker[AsyncSession],
    store: ObjectStore | None = None,
    interval: float = INTERVAL_SECONDS,
    session_policy: SessionPolicy | None = None,
    metrics: Metrics | None = None,
    vault: Vault | None = None,
    upload_max_age: timedelta = timedelta(hours=24),
) -> asyncio.Task[None]:
    """Start the periodic loop (for the app's lifespan)."""
    ctx = JobContext(maker, store, session_policy, vault, upload_max_age)
    return asyncio.create_task(_loop(ctx, interval, metrics), name="jourpost-jobs")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the loop and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
