"""Envelope encryption over any `ObjectStore`.

Threat model: whoever reads or alters the object store (backups, disks, the S3 operator) learns
nothing but object sizes and keys, and can't make the portal serve altered, truncated,
reordered or swapped content: see `storage.segments` for the format, `storage.keyring` for the
key wrapping. What is *not* protected here: an attacker who also holds the database rows and the
KEKs (they have everything); plaintext in the portal's memory; and the `sha256` kept in the
database, which lets a database reader confirm a guess of a whole file's content.
"""

import hashlib
import hmac
import os
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, BinaryIO

from storage import segments
from storage.errors import IntegrityError
from storage.keyring import Keyring
from storage.keys import validate_key
from storage.pipeline import in_worker, readahead
from storage.protocol import ObjectStore, file_store, reader_store


@dataclass(frozen=True)
class StoredObject:
    """What the portal keeps in its database to read an encrypted object back."""

    object_id: str
    """Key of the ciphertext in the object store (also bound into every segment)."""
    size: int
    """Plaintext size in bytes."""
    sha256: str
    """Lower-case hex SHA-256 of the plaintext, checked after every full read."""
    kek_id: str
    """Id of the keyring KEK that wrapped the data key."""
    wrapped_key: bytes
    """The object's data key, wrapped by that KEK (never stored next to the ciphertext)."""


class EncryptedObjectStore:
    """Encrypts on `put`, decrypts and verifies on `get`; streams both ways in 1 MiB segments.

    Use `.store` directly for `delete`, `exists`, `set_legal_hold`, `list_keys` and `ping`:
    those need no keys.
    """

    def __init__(self, store: ObjectStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"EncryptedObjectStore({self.store!r}, {self.keyring!r})"

    async def put(
        self,
        object_id: str,
        source: AsyncIterable[bytes] | IO[bytes],
        *,
        retain_until: datetime | None = None,
    ) -> StoredObject:
        """Encrypt `source` under a fresh data key and store it atomically under `object_id`.

        `source` is an async iterable of chunks, or a readable binary file (seekable: an
        upload's spooled file), stored from its current position to its end. A file is read
        in the storage threads: into the filesystem store, each segment is read, sealed and
        written in one thread call (`segments.encrypt_readable_to_file`).
        """
        validate_key(object_id)
        # A fresh key per object: segment nonces are counters, safe only if a key seals once.
        data_key = os.urandom(segments.DATA_KEY_SIZE)
        kek_id, wrapped_key = self.keyring.wrap(object_id, data_key)
        measure = _Measure()
        files = file_store(self.store)
        if files is not None and not isinstance(source, AsyncIterable):
            readable = source

            async def fill_from_file(file: BinaryIO) -> None:
                await segments.encrypt_readable_to_file(
                    data_key, object_id, readable, file, digest=measure
                )

            await files.put_file(object_id, fill_from_file, retain_until=retain_until)
            return StoredObject(object_id, measure.size, measure.hexdigest(), kek_id, wrapped_key)
        chunks = source if isinstance(source, AsyncIterable) else _read_in_worker(source)
        if files is not None:
            # Sealed and written in one hop per segment, hashed beside it; the source read
            # ahead in its own task.
            async with aclosing(readahead(chunks)) as ahead:

                async def fill(file: BinaryIO) -> None:
                    await segments.encrypt_to_file(data_key, object_id, ahead, file, digest=measure)

                await files.put_file(object_id, fill, retain_until=retain_until)
            return StoredObject(object_id, measure.size, measure.hexdigest(), kek_id, wrapped_key)
        # Three stages at once (see storage.pipeline): the source's reads, hashing + sealing
        # in a worker thread, the backend's writes. Each closed explicitly, also when the
        # backend fails midway: the tasks reading ahead stop and the source is closed now.
        async with (
            aclosing(readahead(chunks)) as ahead,
            aclosing(
                readahead(segments.encrypt(data_key, object_id, ahead, digest=measure))
            ) as ciphertext,
        ):
            await self.store.put(object_id, ciphertext, retain_until=retain_until)
        return StoredObject(object_id, measure.size, measure.hexdigest(), kek_id, wrapped_key)

    async def get(self, stored: StoredObject) -> AsyncGenerator[bytes, None]:
        """Yield verified plaintext; raise `IntegrityError` as soon as anything doesn't match.

        The size and SHA-256 are checked at the end (the segment tags already cover every
        byte; this also catches a database row that doesn't belong to this ciphertext). A
        consumer must treat the download as failed if the iteration raises.
        """
        data_key = self.keyring.unwrap(stored.kek_id, stored.object_id, stored.wrapped_key)
        measure, size = _Measure(), 0
        async with aclosing(self._open(data_key, stored.object_id, measure)) as plaintext:
            async for chunk in plaintext:
                size += len(chunk)
                if size > stored.size:
                    raise IntegrityError(f"{stored.object_id!r} is longer than recorded")
                yield chunk
        if size != stored.size or not hmac.compare_digest(measure.hexdigest(), stored.sha256):
            raise IntegrityError(f"{stored.object_id!r} differs from its recorded size/SHA-256")

    async def _open(
        self, data_key: bytes, object_id: str, measure: "_Measure"
    ) -> AsyncGenerator[bytes, None]:
        """The verified plaintext segments, read ahead (see storage.pipeline)."""
        if (readers := reader_store(self.store)) is not None:
            # Both backends: each sealed segment read whole and opened on the download's own
            # thread, a few ahead of this consumer (segments.decrypt_reader).
            reader = await readers.open_reader(object_id)
            try:
                segments_ = segments.decrypt_reader(data_key, object_id, reader, digest=measure)
                async with aclosing(segments_) as plaintext:
                    async for chunk in plaintext:
                        yield chunk
            finally:
                reader.close()  # decrypt_reader has waited for its last read to finish
            return
        async with (
            aclosing(readahead(self.store.get(object_id))) as ciphertext,
            aclosing(
                readahead(segments.decrypt(data_key, object_id, ciphertext, digest=measure))
            ) as plaintext,
        ):
            async for chunk in plaintext:
                yield chunk

    def rewrap(self, stored: StoredObject, keyring: Keyring | None = None) -> StoredObject:
        """Wrap the data key under the current KEK of `keyring` (default: this store's).

        The content is not touched (`jourpost keys rotate` runs this over every row, then the
        old KEK can leave the keyring). `keyring` must hold both the old and the current KEK.
        """
        keyring = keyring or self.keyring
        data_key = keyring.unwrap(stored.kek_id, stored.object_id, stored.wrapped_key)
        kek_id, wrapped_key = keyring.wrap(stored.object_id, data_key)
        return replace(stored, kek_id=kek_id, wrapped_key=wrapped_key)


async def _read_in_worker(source: IO[bytes]) -> AsyncGenerator[bytes, None]:
    """A readable file's chunks (a segment each), read on the storage threads."""
    while chunk := await in_worker(source.read, segments.SEGMENT_SIZE):
        yield chunk


class _Measure:
    """SHA-256 and byte count of a plaintext, fed segment by segment (in worker threads)."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: segments.Buffer, /) -> None:
        self._sha256.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()
