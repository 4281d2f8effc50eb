"""Fixtures shared by every test: databases (SQLite and real PostgreSQL) and portal settings.

Database-backed tests run on both backends. PostgreSQL is the server on 127.0.0.1:5432 (trust
auth): a fresh database is created per test session and dropped afterwards. Locally, the
PostgreSQL variants are skipped with a printed reason when no server answers; under CI (`CI`
set) an unreachable server is an error, never a silent skip.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from portal.settings import Settings, load_settings
from tests.servers.seaweedfs import SeaweedFS, seaweedfs

PG_HOST = os.environ.get("JOURPOST_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("JOURPOST_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("JOURPOST_TEST_PG_USER", "postgres")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it doesn't."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL of the PostgreSQL server, or a skip (locally) / failure (CI) when unreachable."""
    reason = _pg_reachable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} is required under CI: {reason}")
        pytest.skip(f"PostgreSQL on {PG_HOST}:{PG_PORT} not reachable: {reason}")
    yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}"


def make_pg_database(pg_server: str, template: str | None = None) -> tuple[str, str]:
    """Create a database (empty, or a copy of `template`); return (name, URL)."""
    name = f"jourpost_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"{copy}'))
    return name, f"{pg_server}/{name}"


def drop_pg_database(name: str) -> None:
    """Drop a test database, closing any leftover connections."""
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _migrate(url: str) -> None:
    from portal.db import migrate
    from portal.db.engine import make_engine

    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session; tests get copies of it."""
    name, url = make_pg_database(pg_server)
    try:
        asyncio.run(_migrate(url))
        yield name
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "jourpost.sqlite3"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head (for what only PostgreSQL has: pools,
    row locks, advisory locks, a server to stop)."""
    name, url = make_pg_database(pg_server, template=pg_template)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database migrated to head, on each backend (a copy of a session template)."""
    if request.param == "sqlite":
        path = tmp_path / "jourpost.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    name, url = make_pg_database(server, template=request.getfixturevalue("pg_template"))
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, never-migrated database on each backend (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name, url = make_pg_database(request.getfixturevalue("pg_server"))
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedFS]:
    """One real S3 server (SeaweedFS) for the session; each test uses its own bucket."""
    with seaweedfs() as server:
        yield server


def _b64(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    """Valid development settings for a test, with fresh keys."""
    values: dict[str, object] = {
        "mode": "development",
        "database_url": database_url,
        "data_dir": str(tmp_path),
        "dev_idp_enabled": True,
        "oidc_client_secret": secrets.token_urlsafe(16),
    }
    values.update(overrides)
    return load_settings(
        environ={
            "JOURPOST_KEKS": f"k1:{_b64()}",
            "JOURPOST_CURRENT_KEK": "k1",
            "JOURPOST_BLIND_INDEX_KEY": _b64(),
            "JOURPOST_SECRET_KEY": _b64(),
        },
        **values,
    )


@pytest.fixture
async def migrated_engine(database_url: str) -> AsyncIterator[object]:
    """An engine on a database migrated to head."""
    from portal.db import migrate
    from portal.db.engine import make_engine

    engine = make_engine(database_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()
