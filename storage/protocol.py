"""The interface every object store backend implements."""

from collections.abc import AsyncGenerator, AsyncIterable
from datetime import datetime
from typing import Protocol, runtime_checkable


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
