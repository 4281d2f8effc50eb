"""The interface every object store backend implements."""

import io
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, cast, runtime_checkable


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    """An upload a crashed or killed writer left unfinished: it holds no object, only space."""

    key: str
    """S3: the object key it was for. Filesystem: the temporary file, relative to the root."""
    initiated: datetime
    """When it was started (S3: initiated; filesystem: last written), aware UTC."""
    upload_id: str = ""
    """The S3 multipart upload id ("" on the filesystem)."""


@runtime_checkable
class ObjectStore(Protocol):
    """An async byte store addressed by keys (see `storage.keys` for the allowed form).

    Contract shared by the filesystem and S3 backends (the tests run on both):
    - `put` is atomic: afterwards the key holds the whole new content, or, if the source
      iterator or the backend failed, whatever it held before. A key under retention or legal
      hold is never overwritten (`RetentionError`).
    - `get` is an async generator; `ObjectNotFound` is raised on the first iteration. Close it
      (`contextlib.aclosing`) when you stop early so the file or connection is released.
    - `delete` removes the object for good; `ObjectNotFound` if absent, `RetentionError`
      while `retain_until` is in the future or a legal hold is on.
    """

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Store the concatenated chunks under `key`, retained until the aware datetime given."""
        ...

    def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """Yield the object's bytes in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object (and, on S3, every version of it)."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    async def modified(self, key: str) -> datetime:
        """When the object was last written (aware UTC); `ObjectNotFound` if absent."""
        ...

    async def set_legal_hold(self, key: str, on: bool) -> None:
        """Put or lift a legal hold: while on, the object can't be deleted or overwritten."""
        ...

    async def lock_state(self, key: str) -> tuple[datetime | None, bool]:
        """(retain_until, legal_hold) of the object; (None, False) when unlocked or absent."""
        ...

    async def ping(self) -> None:
        """Raise `BackendUnavailable` unless the store can be used (for /readyz)."""
        ...

    def list_keys(self, prefix: str = "") -> AsyncGenerator[str, None]:
        """Yield every key starting with `prefix` (in no guaranteed order)."""
        ...

    def incomplete_uploads(self) -> AsyncGenerator[IncompleteUpload, None]:
        """Yield the uploads in progress or left behind by a writer that died mid-`put` (S3:
        the bucket's incomplete multipart uploads; filesystem: temporary files)."""
        ...

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        """Discard an incomplete upload (its parts or temporary file); no-op if already gone."""
        ...


class ObjectReader(Protocol):
    """An object's stored bytes, open for reading, with their size known when opened
    (`ReaderObjectStore.open_reader`).

    `read_exactly` and `at_end` block: a download calls them on a thread of its own
    (`storage.segments.decrypt_reader`). A reader is used by one thread at a time; close it
    when done, also after a failure or an early stop.
    """

    size: int
    """Bytes the object holds."""

    def read_exactly(self, buffer: bytearray, length: int) -> memoryview:
        """The next `length` bytes, read into the start of `buffer` (blocking).

        Raises if the object ends before: the backend's error (S3: `BackendUnavailable`).
        """
        ...

    def at_end(self) -> bool:
        """Whether nothing follows what was read (blocking)."""
        ...

    def close(self) -> None:
        """Release the file or connection (blocking only briefly)."""
        ...


class ReaderObjectStore(ObjectStore, Protocol):
    """A store that can also open an object with its size known up front (the S3 backend).

    `EncryptedObjectStore` then reads each sealed segment whole and opens it in the same
    thread hop (`storage.segments.decrypt_reader`) instead of joining the response's chunks;
    same contract as `get` otherwise.
    """

    async def open_reader(self, key: str) -> ObjectReader:
        """The object, open for reading; `ObjectNotFound` if absent."""
        ...


def reader_store(store: ObjectStore) -> ReaderObjectStore | None:
    """`store` if its class offers `open_reader`, else None (looked up on the class, as
    `file_store` does, for the same reason)."""
    if callable(getattr(type(store), "open_reader", None)):
        return cast(ReaderObjectStore, store)
    return None


@runtime_checkable
class FileObjectStore(ReaderObjectStore, Protocol):
    """A store that can also hand out its objects as files (the filesystem backend).

    `EncryptedObjectStore` uses `put_file` to seal and write each segment in one thread hop
    (`storage.segments.encrypt_to_file`), and reads, as from any `ReaderObjectStore`, through
    `open_reader`; same contract as `put` / `get` otherwise.
    """

    async def put_file(
        self,
        key: str,
        fill: Callable[[BinaryIO], Awaitable[None]],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Atomically store what `await fill(file)` writes to the (temporary) file."""
        ...

    async def open_file(self, key: str) -> io.BufferedReader:
        """The object's file, open for reading; `ObjectNotFound` if absent."""
        ...


def file_store(store: ObjectStore) -> FileObjectStore | None:
    """`store` if its class offers the file methods, else None.

    Looked up on the class, not the instance: a wrapper that forwards unknown attributes to an
    inner store (`__getattr__`, as fault-injecting test stores do) must keep its own `put` and
    `get` in use rather than have the inner store's file methods bypass them.
    """
    cls = type(store)
    methods = ("put_file", "open_file", "open_reader")
    if all(callable(getattr(cls, name, None)) for name in methods):
        return cast(FileObjectStore, store)
    return None
