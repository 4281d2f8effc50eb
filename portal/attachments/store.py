"""Build the portal's encrypted file store from the settings."""

from __future__ import annotations

from portal.settings import Settings
from storage import EncryptedObjectStore, FilesystemStore, Keyring, ObjectStore, S3Store


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
