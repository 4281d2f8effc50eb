"""Small async helpers shared by the storage tests."""

import random
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from storage import ObjectStore, S3Store
from tests.servers.seaweedfs import SeaweedFS

MiB = 1 << 20


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Yield `data` in pieces of `size` bytes (at least one piece, maybe empty)."""
    if not data:
        yield b""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def failing(data: bytes, fail_after: int) -> AsyncIterator[bytes]:
    """Yield `fail_after` bytes of `data`, then raise as a broken upload would."""
    async for piece in chunks(data[:fail_after]):
        yield piece
    raise ConnectionResetError("client went away")


async def collect(stream: AsyncIterable[bytes]) -> bytes:
    """Concatenate a stream."""
    return b"".join([chunk async for chunk in stream])


async def read_until_error(stream: AsyncGenerator[bytes, None]) -> tuple[bytes, BaseException]:
    """Return (everything yielded, the exception that ended the stream); fail if none did."""
    received = bytearray()
    try:
        async for chunk in stream:
            received += chunk
    except Exception as exc:
        return bytes(received), exc
    finally:
        await stream.aclose()
    raise AssertionError("the stream ended without an error")


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible bytes."""
    return random.Random(seed).randbytes(size)


async def raw(store: ObjectStore, key: str) -> bytes:
    """The stored bytes (ciphertext, when written through EncryptedObjectStore)."""
    return await collect(store.get(key))


async def replace_raw(store: ObjectStore, key: str, data: bytes) -> None:
    """Overwrite the stored bytes, as an attacker with access to the store could."""
    await store.put(key, chunks(data))


def s3_store(server: SeaweedFS, tmp_path: Path, *, object_lock: bool = True) -> S3Store:
    """A store on a fresh bucket (names must be unique and 3-63 lowercase characters)."""
    return S3Store.connect(
        server.endpoint,
        server.access_key,
        server.secret_key,
        f"test-{uuid.uuid4().hex}",
        secure=False,
        object_lock=object_lock,
        read_timeout=120.0,
    )


class StreamedOnly:
    """`inner` without its file methods (as S3 has none): `EncryptedObjectStore` takes the
    streamed path through this store's `put` and `get`."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    async def put(self, key: str, chunks: AsyncIterable[bytes], **kw: Any) -> None:
        await self.inner.put(key, chunks, **kw)

    def get(self, key: str) -> AsyncGenerator[bytes, None]:
        return self.inner.get(key)
