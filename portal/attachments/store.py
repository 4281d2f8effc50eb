"""The portal's encrypted file store: built from the settings, and kept in table columns.

A `storage.StoredObject` is kept in five columns with one prefix, `<p>object_id, <p>size,
<p>sha256, <p>kek_id, <p>wrapped_key` (no prefix on attachments, `signed_` on decisions):
`stored_object` reads them, `stored_columns` gives the values to write, and key rotation
(portal.keys) finds every such group by these names.
"""

from __future__ import annotations

from typing import Any

from portal.settings import Settings
from storage import (
    EncryptedObjectStore,
    FilesystemStore,
    Keyring,
    ObjectStore,
    S3Store,
    StoredObject,
)

STORED_COLUMNS = ("object_id", "size", "sha256", "kek_id", "wrapped_key")
"""The column names (after the prefix) that keep a StoredObject, in its field order."""


def stored_object(row: object, prefix: str = "") -> StoredObject:
    """The object kept in `row`'s columns (an ORM instance or a result row).

    ValueError if a column is empty: where the columns are nullable (a decision not yet signed),
    check `<p>object_id` first.
    """
    values = [getattr(row, prefix + name) for name in STORED_COLUMNS]
    if any(v is None for v in values):
        raise ValueError(f"no stored object in the columns {prefix}*")
    return StoredObject(*values)


def stored_columns(stored: StoredObject, prefix: str = "") -> dict[str, Any]:
    """The column values that keep `stored` (for a constructor, an update or `setattr`)."""
    return {prefix + name: getattr(stored, name) for name in STORED_COLUMNS}


class FileStore(EncryptedObjectStore):
    """The encrypted store with the backend's `ping`, which the portal's /readyz calls."""

    async def ping(self) -> None:
        """Raise `storage.BackendUnavailable` unless the backend can be used."""
        await self.store.ping()


def build_file_store(settings: Settings) -> FileStore:
    """Filesystem store at `settings.object_root`, or S3 from `settings.s3_*`; KEKs from settings.

    Files and database fields share the keyring (`keks`/`current_kek`): one rotation covers both.
    S3 requests are bounded by `s3_connect_timeout_seconds`, `s3_read_timeout_seconds` and
    `s3_max_attempts` (see `storage.s3`). Nothing is contacted here; the S3 bucket is
    checked/created by `S3Store.ensure_bucket()` at start-up (and `/readyz` pings the store).
    """
    backend: ObjectStore
    if settings.storage_backend == "s3":
        backend = S3Store.connect(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_bucket,
            secure=settings.s3_secure,
            object_lock=True,
            connect_timeout=settings.s3_connect_timeout_seconds,
            read_timeout=settings.s3_read_timeout_seconds,
            max_attempts=settings.s3_max_attempts,
        )
    else:
        backend = FilesystemStore(settings.object_root)
    return FileStore(backend, Keyring(settings.keks, settings.current_kek))
