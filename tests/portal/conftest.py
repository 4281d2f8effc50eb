"""A real portal served over HTTP on loopback, migrated and seeded with the demo data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portal.settings import Settings
from tests.conftest import make_settings
from tests.servers.portal import serve
from tests.servers.seaweedfs import SeaweedFS


@dataclass
class RunningPortal:
    """A portal under test."""

    url: str
    settings: Settings
    app: Any


async def prepare_database(settings: Settings) -> None:
    """Migrate to head and seed the demo organisations and persons."""
    from portal.db import migrate
    from portal.db.engine import engine_from_settings, make_sessionmaker
    from portal.demo import seed
    from portal.pii import Vault

    settings.object_root.mkdir(parents=True, exist_ok=True)
    engine = engine_from_settings(settings, statement_timeout=0)  # as `jourpost db upgrade`
    try:
        await migrate.upgrade(engine)
        async with make_sessionmaker(engine)() as db, db.begin():
            await seed(db, Vault(settings.keks, settings.current_kek, settings.blind_index_key))
    finally:
        await engine.dispose()


@contextmanager
def running_portal(
    tmp_path: Path, database_url: str, *, prepare: bool = True, **overrides: Any
) -> Iterator[RunningPortal]:
    """Serve the portal on a free port (its public URL set to it) with `overrides` of its
    settings; `prepare` migrates and seeds the demo data first."""
    from portal.app import create_app

    holder: dict[str, Any] = {}

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path, database_url, public_url=f"http://127.0.0.1:{port}", **overrides
        )
        settings.object_root.mkdir(parents=True, exist_ok=True)
        if prepare:
            asyncio.run(prepare_database(settings))
        holder["settings"] = settings
        holder["app"] = create_app(settings)
        return holder["app"]

    with serve(factory) as url:
        yield RunningPortal(url, holder["settings"], holder["app"])


@pytest.fixture
def portal(database_url: str, tmp_path: Path) -> Iterator[RunningPortal]:
    """The demo portal (dev identity provider mounted) on a free port."""
    with running_portal(tmp_path, database_url) as running:
        yield running


@pytest.fixture
def one_connection(database_url: str, tmp_path: Path) -> Iterator[RunningPortal]:
    """The demo portal with ONE pooled database connection (PostgreSQL; SQLite has no pool)
    and no periodic jobs: a request that keeps its connection leaves none for the others
    (the signing-concurrency tests, tests/portal/signing_helpers.py)."""
    with running_portal(
        tmp_path, database_url, db_pool_size=1, db_max_overflow=0, run_periodic_jobs=False
    ) as running:
        yield running


@pytest.fixture
def portal_s3(database_url: str, tmp_path: Path, seaweed: SeaweedFS) -> Iterator[RunningPortal]:
    """The demo portal with its files in a real S3 server (object lock on, a fresh bucket)."""
    import uuid

    with running_portal(
        tmp_path,
        database_url,
        storage_backend="s3",
        s3_endpoint=seaweed.endpoint,
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        s3_bucket=f"jp-{uuid.uuid4().hex[:12]}",
        s3_secure=False,
    ) as running:
        yield running


@contextmanager
def portal_at_oidc_provider(
    database_url: str, tmp_path: Path, **provider: Any
) -> Iterator[RunningPortal]:
    """The portal logging in at the independent oidc-provider (npm), configured by `provider`
    (e.g. user_pnr, post_logout_redirect_uri, login_form); fails under CI when it can't run."""
    import os
    import secrets

    from portal.app import create_app
    from tests.servers.net import free_port
    from tests.servers.oidc_provider import missing_reason, running_oidc_provider

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"oidc-provider is required under CI: {reason}")
        pytest.skip(reason)
    port = free_port()
    secret = secrets.token_urlsafe(32)
    with running_oidc_provider(
        client_id="jourpost",
        client_secret=secret,
        redirect_uri=f"http://127.0.0.1:{port}/auth/callback",
        **{
            key: value.format(port=port) if isinstance(value, str) else value
            for key, value in provider.items()
        },
    ) as op:
        holder: dict[str, Any] = {}

        def factory(p: int) -> object:
            settings = make_settings(
                tmp_path,
                database_url,
                public_url=f"http://127.0.0.1:{p}",
                oidc_issuer=op.issuer,
                oidc_client_id="jourpost",
                oidc_client_secret=secret,
            )
            asyncio.run(prepare_database(settings))
            holder["settings"] = settings
            holder["app"] = create_app(settings)
            return holder["app"]

        with serve(factory, port=port) as url:
            yield RunningPortal(url, holder["settings"], holder["app"])
