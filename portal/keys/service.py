"""`jourpost keys rotate`: move everything to the current key-encryption key.

What is under a KEK:
- files in the object store: each has its own data key, wrapped by a KEK; rotation re-wraps
  the data key (a few dozen bytes per row) and never re-encrypts content;
- database fields (`*_enc` columns): AES-GCM directly under a KEK; rotation decrypts and
  re-encrypts each value that is not already under the current key.

Both are found by convention, not by a list that could go stale: every column named `X_enc` of
table `T` with primary key `id` is bound to the context "T.X:<id>" (portal.pii.field_context),
and every set of columns `<p>object_id, <p>size, <p>sha256, <p>kek_id, <p>wrapped_key` keeps a
stored object (portal.attachments.store).
After a rotation the old KEK can be removed from the keyring. Rows are processed in batches, each
in its own transaction, so the job can be interrupted and run again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.attachments.store import STORED_COLUMNS, stored_columns, stored_object
from portal.db import registry  # noqa: F401  (every table on Base.metadata)
from portal.db.base import Base
from portal.pii import Vault, field_context
from storage import EncryptedObjectStore

BATCH = 500


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a rotation changed."""

    fields: int
    """Database values re-encrypted."""
    objects: int
    """Stored objects whose data key was re-wrapped."""


def encrypted_columns() -> Iterator[tuple[Table, str]]:
    """(table, column) for every `*_enc` column of a table with an `id` primary key."""
    for table in Base.metadata.sorted_tables:
        if "id" not in table.c:
            continue
        for column in table.c:
            if column.name.endswith("_enc"):
                yield table, column.name


def stored_object_prefixes() -> Iterator[tuple[Table, str]]:
    """(table, prefix) for every group of stored-object columns."""
    for table in Base.metadata.sorted_tables:
        for column in table.c:
            if column.name.endswith("wrapped_key"):
                prefix = column.name[: -len("wrapped_key")]
                if all(f"{prefix}{n}" in table.c for n in STORED_COLUMNS) and "id" in table.c:
                    yield table, prefix


async def rotate(
    maker: async_sessionmaker[AsyncSession], vault: Vault, files: EncryptedObjectStore
) -> RotationReport:
    """Re-encrypt every field and re-wrap every object key under the current KEK."""
    fields = objects = 0
    for table, name in encrypted_columns():
        last = None
        while True:
            async with maker() as db, db.begin():
                query = select(table.c.id, table.c[name]).order_by(table.c.id).limit(BATCH)
                if last is not None:
                    query = query.where(table.c.id > last)
                rows = (await db.execute(query)).all()
                for row_id, value in rows:
                    if value and vault.needs_rewrap(value):
                        context = field_context(table.c[name], row_id)
                        fresh = vault.encrypt(vault.decrypt(value, context), context)
                        await db.execute(
                            update(table).where(table.c.id == row_id).values({name: fresh})
                        )
                        fields += 1
            if len(rows) < BATCH:
                break
            last = rows[-1][0]
    current = files.keyring.current_id
    for table, p in stored_object_prefixes():
        cols = [table.c[f"{p}{n}"] for n in STORED_COLUMNS]
        while True:
            async with maker() as db, db.begin():
                object_rows = (
                    await db.execute(
                        select(table.c.id, *cols)
                        .where(cols[3].is_not(None), cols[3] != current)
                        .limit(BATCH)
                    )
                ).all()
                for row in object_rows:
                    moved = files.rewrap(stored_object(row, p))
                    await db.execute(
                        update(table).where(table.c.id == row.id).values(stored_columns(moved, p))
                    )
                    objects += 1
            if len(object_rows) < BATCH:
                break
    return RotationReport(fields, objects)
