"""A real portal over HTTP for the advisory tests, with an injectable object store.

Like tests/portal/conftest.py's `portal` (migrated, demo-seeded, served by uvicorn on loopback,
SQLite and PostgreSQL), but without the login machinery: these tests open sessions directly
(tests/portal/sessions.py), so no identity provider is mounted, and the object store can be
swapped for the fault-injection wrapper of test_attachments.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database
from tests.portal.sessions import client_as
from tests.servers.portal import serve


@dataclass
class AdvisoryPortal:
    """A portal under test."""

    url: str
    """Base URL."""
    settings: Settings
    """Its settings (database, keys, object root)."""

    def client(self, personnummer: str) -> httpx.Client:
        """An HTTP client logged in as the demo person, CSRF header set."""
        return client_as(self.url, self.settings, personnummer)


class _NoLogin:
    """Stands in for the OIDC relying party: these tests never walk the login flow."""


StoreFactory = Callable[[Settings], Any]


def start_portal(database_url: str, tmp_path: Path, store: StoreFactory | None = None) -> Any:
    """Context manager serving a portal; `store(settings)` builds its object store."""
    from portal.app import create_app

    holder: dict[str, Settings] = {}

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path,
            database_url,
            public_url=f"http://127.0.0.1:{port}",
            dev_idp_enabled=False,
            oidc_issuer="http://127.0.0.1:9/unused",
        )
        asyncio.run(prepare_database(settings))
        holder["settings"] = settings
        return create_app(
            settings,
            relying_party=_NoLogin(),
            object_store=store(settings) if store else None,
        )

    return serve(factory), holder


@pytest.fixture
def jp(database_url: str, tmp_path: Path) -> Iterator[AdvisoryPortal]:
    """The demo portal with the real (filesystem) encrypted object store."""
    server, holder = start_portal(database_url, tmp_path)
    with server as url:
        yield AdvisoryPortal(url, holder["settings"])
