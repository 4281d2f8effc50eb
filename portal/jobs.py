"""Periodic jobs of a portal instance: advisory expiry reminders, audit-chain anchors, and the
purge of unfinished, ended and expired browser sessions.

Run in every instance's lifespan (every 15 minutes) and by `jourpost jobs run-once` (for cron).
Safe to run in several instances at once: each advisory is claimed with a conditional UPDATE, so
it is reminded once. The reminders go to the e-mail outbox; the dispatcher sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.sessions import SessionPolicy
from portal.db.base import utcnow

log = logging.getLogger("jourpost.jobs")

INTERVAL_SECONDS = 15 * 60


async def run_once(
    maker: async_sessionmaker[AsyncSession],
    store: object = None,
    session_policy: SessionPolicy | None = None,
) -> int:
    """Run every job once; return how many reminders were queued.

    With `store` (the raw object store), the audit chain's head is also anchored there. Pending
    logins and ended sessions are purged; with `session_policy`, sessions past their timeouts too.
    """
    from portal.account.service import purge_sessions
    from portal.advisories.service import send_expiry_reminders
    from portal.audit.anchor import anchor

    async with maker() as db, db.begin():
        purged = await purge_sessions(db, now=utcnow(), policy=session_policy)
    if purged:
        log.info("purged %d browser sessions", purged)
    async with maker() as db, db.begin():
        queued = await send_expiry_reminders(db, now=utcnow())
    if store is not None:
        async with maker() as db:
            await anchor(db, store)
    if queued:
        log.info("queued %d expiry reminders", queued)
    return queued


async def _loop(
    maker: async_sessionmaker[AsyncSession],
    store: object,
    interval: float,
    session_policy: SessionPolicy | None,
) -> None:
    while True:
        try:
            await run_once(maker, store, session_policy)
        except Exception as exc:  # a failed round is retried at the next one
            log.warning("periodic jobs failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def start(
    maker: async_sessionmaker[AsyncSession],
    store: object = None,
    interval: float = INTERVAL_SECONDS,
    session_policy: SessionPolicy | None = None,
) -> asyncio.Task[None]:
    """Start the periodic loop (for the app's lifespan)."""
    return asyncio.create_task(_loop(maker, store, interval, session_policy), name="jourpost-jobs")


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the loop and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
