"""Run Alembic against the portal's database: upgrade, downgrade, and the models == schema check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portal.db import registry  # noqa: F401  (registers every table)
from portal.db.base import Base

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


MIGRATION_LOCK = 0x4A6F7572706F7374  # "Jourpost"
"""PostgreSQL advisory lock key held while migrating."""


async def _lock_for_migration(conn: AsyncConnection) -> None:
    # Several instances (or a migration Job and an operator) may run `db upgrade` at once: on
    # PostgreSQL the first takes this transaction-scoped lock, the others wait for its commit
    # and then find the database at head. SQLite (the single-process demo) needs none.
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Migrate the database up to `revision` (one migrator at a time)."""
    async with engine.begin() as conn:
        await _lock_for_migration(conn)
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database down to `revision` ("base" for empty)."""
    async with engine.begin() as conn:
        await _lock_for_migration(conn)
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def head_revision() -> str | None:
    """The newest revision in the migrations directory."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def schema_differences(engine: AsyncEngine) -> list[Any]:
    """Differences between the models and the migrated database; empty when they match."""

    def _compare(c: Connection) -> list[Any]:
        ctx = MigrationContext.configure(c, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(_compare)
