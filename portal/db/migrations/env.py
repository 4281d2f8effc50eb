"""Alembic environment: runs on a connection handed over by portal.db.migrate."""

from __future__ import annotations

from alembic import context

from portal.db import registry  # noqa: F401  (registers every table on Base.metadata)
from portal.db.base import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; use `jourpost db upgrade`")
run_migrations_online()
