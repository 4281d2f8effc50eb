"""The async engine and its sessionmaker (the per-request session provider is portal.web.deps).

An outage must cost a request seconds, not minutes, so every wait on PostgreSQL is bounded:

    waiting for a pooled connection   pool_timeout      (sqlalchemy.exc.TimeoutError)
    opening a connection              connect_timeout   (asyncpg `timeout`)
    one statement, in the server      statement_timeout (PostgreSQL `statement_timeout`)
    one statement, seen by the client statement_timeout + STATEMENT_GRACE (asyncpg
                                      `command_timeout`: a frozen or unreachable server never
                                      answers, so the server's own limit can't fire)

`portal.db.faults` tells these failures (→ 503) from programming errors (→ 500).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import CursorResult, Executable, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from portal.settings import Settings

STATEMENT_GRACE = 2.0
"""Seconds the client waits beyond the server's statement_timeout before giving up itself."""

_DEFAULTS = Settings()


def make_engine(
    database_url: str,
    *,
    pool_size: int = _DEFAULTS.db_pool_size,
    max_overflow: int = _DEFAULTS.db_max_overflow,
    pool_timeout: float = _DEFAULTS.db_pool_timeout_seconds,
    connect_timeout: float = _DEFAULTS.db_connect_timeout_seconds,
    statement_timeout: float = _DEFAULTS.db_statement_timeout_seconds,
) -> AsyncEngine:
    """Create the engine with bounded waits (defaults: the settings' defaults).

    `statement_timeout` 0 means no limit (migrations and bulk jobs from the CLI). SQLite (the
    single-process demo) gets foreign keys and WAL instead; pool sizes don't apply to it and its
    only wait is the file lock (busy timeout).
    """
    if database_url.startswith("sqlite"):
        return _sqlite_engine(database_url)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    if statement_timeout > 0:
        connect_args["command_timeout"] = statement_timeout + STATEMENT_GRACE
        connect_args["server_settings"] = {"statement_timeout": str(int(statement_timeout * 1000))}
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine.pool, "checkin", _checked_in)
    event.listen(engine.sync_engine.pool, "checkout", _check_on_checkout)
    return engine


PING_IDLE_SECONDS = 30.0
"""A pooled connection idle this long is pinged before it is handed out (see
`_check_on_checkout`)."""


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


def _check_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Hand out only a live connection, without a round trip on the hot path.

    SQLAlchemy's own pre-ping costs three round trips per request on asyncpg (BEGIN, ";",
    ROLLBACK) — a sixth of a lookup's. Instead: a connection the server closed (a restart, a
    terminated backend, a failover: the socket was closed and asyncpg saw it) is known locally
    and replaced; one idle for PING_IDLE_SECONDS or more (a firewall may have dropped it
    silently) is pinged first. What neither catches (the link broke silently within the last
    30 s) fails its statement as a disconnect: that request answers 503 (portal.db.faults) and
    SQLAlchemy replaces every pooled connection older than the failure.
    """
    raw = dbapi_connection.driver_connection
    if raw is None or raw.is_closed():
        raise sa_exc.DisconnectionError("connection closed by the server")
    idle_since = record.info.get("checked_in_at")
    if idle_since is not None and time.monotonic() - idle_since >= PING_IDLE_SECONDS:
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise sa_exc.DisconnectionError("ping failed") from exc


def engine_from_settings(
    settings: Settings, *, statement_timeout: float | None = None
) -> AsyncEngine:
    """The engine `settings` describe; `statement_timeout` overrides the setting (0: no limit)."""
    return make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout=(
            settings.db_statement_timeout_seconds
            if statement_timeout is None
            else statement_timeout
        ),
    )


def _sqlite_engine(database_url: str) -> AsyncEngine:
    engine = create_async_engine(database_url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


async def core_execute(
    db: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[*tuple[Any, ...]]:
    """Execute `statement` on the session's connection, in the session's transaction, as Core.

    For statements of plain columns on hot paths (the principal per request, the night
    dashboard's lists): the ORM session's `execute` costs about 0.1 ms more per statement (ORM
    compile state and execution options, the ORM result wrapper), and there are no entities to
    load. Nothing is autoflushed first: use it for reads that do not depend on objects added to
    the session in the same request (or flush them before).
    """
    conn = await db.connection()
    return await conn.execute(statement, params)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (templates render after the handler)."""
    return async_sessionmaker(engine, expire_on_commit=False)
