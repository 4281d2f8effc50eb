"""Migrations: every one upgrades and downgrades, and the models match the migrated schema."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from portal.db import migrate
from portal.db.engine import make_engine


async def test_models_match_migrations(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await migrate.schema_differences(engine) == []
    finally:
        await engine.dispose()


async def test_every_migration_upgrades_and_downgrades(empty_database_url: str) -> None:
    revisions = list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions())
    revisions.reverse()  # oldest first
    engine = make_engine(empty_database_url)
    try:
        for rev in revisions:
            await migrate.upgrade(engine, rev.revision)
            assert await migrate.current_revision(engine) == rev.revision
            await migrate.downgrade(engine, rev.down_revision or "base")
            assert await migrate.current_revision(engine) == rev.down_revision
            await migrate.upgrade(engine, rev.revision)
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
    finally:
        await engine.dispose()


def test_migration_file_names_are_date_prefixed() -> None:
    import re

    names = [p.name for p in (migrate.MIGRATIONS / "versions").glob("*.py")]
    assert names
    for name in names:
        assert re.match(r"^\d{4}_\d{2}_\d{2}_\d{4}-", name), name


def test_concurrent_upgrades_of_one_postgresql_database_both_succeed(pg_server: str) -> None:
    """Two instances starting at once (or a migration Job and an operator) must not collide."""
    import asyncio

    from tests.conftest import drop_pg_database, make_pg_database

    name, url = make_pg_database(pg_server)

    async def both() -> list[BaseException | None]:
        engines = [make_engine(url) for _ in range(3)]
        try:
            # Bounded: without a migration lock the migrators can block each other for good.
            return await asyncio.wait_for(
                asyncio.gather(*(migrate.upgrade(e) for e in engines), return_exceptions=True),
                timeout=90,
            )
        finally:
            for e in engines:
                await e.dispose()

    async def revision() -> str | None:
        engine = make_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        assert asyncio.run(both()) == [None, None, None]
        assert asyncio.run(revision()) == migrate.head_revision()
    finally:
        drop_pg_database(name)
