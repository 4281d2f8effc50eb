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

from typing import Any

from sqlalchemy import event
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
    return create_async_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )


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


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (templates render after the handler)."""
    return async_sessionmaker(engine, expire_on_commit=False)
