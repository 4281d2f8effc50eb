"""A migrated, demo-seeded database for the retention tests: its engine's sessionmaker, the
vault, the file store, the organisations by name and a user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.attachments.store import build_file_store
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import Organisation, User
from portal.pii import Vault
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database


@dataclass
class Seeded:
    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    vault: Vault
    files: Any
    orgs: dict[str, uuid.UUID]
    user: uuid.UUID


@asynccontextmanager
async def seeded(database_url: str, tmp_path: Path) -> AsyncIterator[Seeded]:
    """The database of `database_url` migrated and seeded; its engine disposed of after."""
    settings = make_settings(tmp_path, database_url)
    await prepare_database(settings)
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as s:
            orgs = {n: i for i, n in await s.execute(select(Organisation.id, Organisation.name))}
            user = await s.scalar(select(User.id).limit(1))
        assert user is not None
        vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
        yield Seeded(settings, maker, vault, build_file_store(settings), orgs, user)
    finally:
        await engine.dispose()
