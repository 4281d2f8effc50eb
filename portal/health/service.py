"""Readiness checks, each bounded in time, and the background check of the S3 bucket.

`/readyz` must answer a load balancer within a few seconds whatever hangs: each check runs under
`asyncio.wait_for(CHECK_TIMEOUT)` and the checks run concurrently, so the probe takes at most
about CHECK_TIMEOUT. Each check reports one word (no error messages: the probe is public):

    database       ok | unavailable (refused, failed) | timeout (no answer in time)
    schema         ok | behind | unmigrated | ahead | unknown (database not reached)
    object_store   ok | unavailable | timeout

Ready means database ok and schema ok or ahead. The object store does not decide readiness:
it is shared by every instance, so a store outage (or one hung SeaweedFS volume server, which
filled the store's threads for 90 s in the cluster test) would take every instance out of the
load balancer at once, and the night shift would lose lookups, advisories and reports that need
no file. Instead the probe answers 200 with status "degraded" and names the check, uploads and
downloads answer 503 on their own, and operators alert on "degraded". "ahead" (a revision this code
doesn't know) is what old instances see during a rolling upgrade after the new release's
migrations ran; they keep serving until replaced (migrations are additive for one release).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from portal.db import migrate
from portal.runtime import PortalState

CHECK_TIMEOUT = 2.0
"""Seconds each readiness check may take (they run concurrently)."""
BUCKET_RETRY_MIN = 1.0
"""First pause before retrying the bucket check after S3 failed at start-up (doubles)."""
BUCKET_RETRY_MAX = 30.0
"""Longest pause between bucket checks."""

log = logging.getLogger("jourpost.health")

_T = TypeVar("_T")
Schema = Literal["ok", "behind", "unmigrated", "ahead", "unknown"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of one readiness probe."""

    database: str
    """ok | unavailable | timeout."""
    schema: Schema
    """How the database's migration revision compares with this code's head."""
    object_store: str
    """ok | unavailable | timeout."""

    @property
    def ready(self) -> bool:
        """Whether this instance should get traffic (the database at a schema it can use)."""
        return self.database == "ok" and self.schema in ("ok", "ahead")

    @property
    def status(self) -> str:
        """ok | degraded (ready, but files can't be stored or read) | unavailable."""
        if not self.ready:
            return "unavailable"
        return "ok" if self.object_store == "ok" else "degraded"

    def checks(self) -> dict[str, str]:
        """The checks by name, for the probe's body."""
        return {"database": self.database, "schema": self.schema, "object_store": self.object_store}


async def readiness(state: PortalState) -> Readiness:
    """Check the database, its schema revision and the object store, concurrently and bounded."""
    (database, revision), (store, _) = await asyncio.gather(
        _bounded(lambda: _database_revision(state.engine), default=None),
        _bounded(state.object_store_ping, default=None),
    )
    schema = compare_revision(revision) if database == "ok" else "unknown"
    return Readiness(database=database, schema=schema, object_store=store)


def compare_revision(revision: str | None) -> Schema:
    """Where the database's revision stands against the migrations shipped with this code."""
    script = _scripts()
    if revision == script.get_current_head():
        return "ok"
    if revision is None:
        return "unmigrated"
    try:
        script.get_revision(revision)
    except CommandError:
        return "ahead"  # not among our migrations: a newer release migrated this database
    return "behind"


async def _database_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _bounded(check: Callable[[], Awaitable[_T]], *, default: _T) -> tuple[str, _T]:
    """("ok", result), ("timeout", default) or ("unavailable", default); logs the type only."""
    try:
        return "ok", await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except (TimeoutError, sa_exc.TimeoutError):  # ours, or the pool's, connect's, command's
        return "timeout", default
    except Exception as exc:  # any failure means not ready; the type is enough for operators
        log.info("readiness check failed: %s", type(exc).__name__)
        return "unavailable", default


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


async def keep_checking_bucket(state: PortalState, first_try: asyncio.Event) -> None:
    """Find or create the S3 bucket, retrying with backoff until it works (a background task).

    The portal starts while S3 is down; until this succeeds `/readyz` says object_store
    unavailable and uploads answer 503 (StorageUnavailable). `first_try` is set once the first
    attempt has ended, either way (start-up waits for it, bounded, so that with S3 up the
    bucket exists before the first request, as it did when start-up required it).
    """
    pause = BUCKET_RETRY_MIN
    while True:
        try:
            await state.ensure_bucket()
            return
        except Exception as exc:  # storage errors carry no personal data, but types suffice
            log.warning(
                "object store not usable yet (%s); retrying in %.0f s", type(exc).__name__, pause
            )
        finally:
            first_try.set()
        await asyncio.sleep(pause)
        pause = min(pause * 2, BUCKET_RETRY_MAX)


async def start_bucket_check(state: PortalState) -> asyncio.Task[None]:
    """Start `keep_checking_bucket`; wait for its first attempt, at most CHECK_TIMEOUT."""
    first_try = asyncio.Event()
    task = asyncio.create_task(keep_checking_bucket(state, first_try), name="bucket-check")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(first_try.wait(), CHECK_TIMEOUT)
    return task
