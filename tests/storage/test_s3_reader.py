"""Downloads from S3 read each sealed segment whole from the response (`S3Store.open_reader`,
`segments.decrypt_reader`), and a connection that breaks mid-download is an outage, not a
tampered object.

A real SeaweedFS; the object is stored directly and read back through `FaultyProxy`, which
breaks the server's answer after a given number of bytes: closed early, reset, or stalled
until the client's read timeout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from pathlib import Path

import pytest

from storage import BackendUnavailable, EncryptedObjectStore, Keyring, ObjectStore, S3Store
from storage.protocol import reader_store
from storage.segments import SEGMENT_SIZE
from tests.servers.faulty_proxy import FaultyProxy, Mode
from tests.servers.seaweedfs import SeaweedFS
from tests.storage.helpers import MiB, chunks, collect, random_bytes, read_until_error, s3_store

READ_TIMEOUT = 1.0
CAUSES: dict[str, type[BaseException] | type[None]] = {
    "cut": type(None),  # the body ended before its Content-Length: no error below ours
    "reset": ConnectionResetError,
    "stall": TimeoutError,
}
DATA = random_bytes(3 * MiB + 5)


@pytest.fixture
def proxy(seaweed: SeaweedFS) -> Iterator[FaultyProxy]:
    host, port = seaweed.endpoint.rsplit(":", 1)
    with FaultyProxy((host, int(port))) as proxy:
        yield proxy


@pytest.fixture
async def direct(seaweed: SeaweedFS, tmp_path: Path) -> S3Store:
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    return store


def through(proxy: FaultyProxy, seaweed: SeaweedFS, direct: S3Store) -> S3Store:
    """The same bucket through the proxy, with a short read timeout and one attempt."""
    return S3Store.connect(
        proxy.endpoint,
        seaweed.access_key,
        seaweed.secret_key,
        direct.bucket,
        secure=False,
        region="us-east-1",  # no bucket-location request before the GET
        read_timeout=READ_TIMEOUT,
        max_attempts=1,
    )


class NoStreamedGet(S3Store):
    """An S3 store whose chunked `get` must not be used."""

    def get(self, key: str) -> AsyncGenerator[bytes, None]:
        raise AssertionError("the streamed get was used")


async def test_the_s3_store_is_read_segment_by_segment(
    seaweed: SeaweedFS, direct: S3Store, keyring: Keyring
) -> None:
    stored = await EncryptedObjectStore(direct, keyring).put("k", chunks(DATA, MiB))
    store = NoStreamedGet(direct.client, direct.bucket, object_lock=True)
    assert reader_store(store) is store
    assert await collect(EncryptedObjectStore(store, keyring).get(stored)) == DATA


@pytest.mark.parametrize("mode", ["cut", "reset", "stall"])
async def test_a_connection_broken_mid_download_is_an_outage(
    mode: Mode, proxy: FaultyProxy, seaweed: SeaweedFS, direct: S3Store, keyring: Keyring
) -> None:
    stored = await EncryptedObjectStore(direct, keyring).put("k", chunks(DATA, MiB))
    store: ObjectStore = through(proxy, seaweed, direct)
    encrypted = EncryptedObjectStore(store, keyring)
    proxy.arm(mode, after=SEGMENT_SIZE + SEGMENT_SIZE // 2)  # within the second segment
    started = time.monotonic()
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, BackendUnavailable), repr(error)
    assert isinstance(error.__cause__, CAUSES[mode]), repr(error.__cause__)
    # Only whole verified segments were handed out: the first one, unless the reset also
    # discarded it from the client's socket buffer before it was read.
    assert received in ((b"", DATA[:SEGMENT_SIZE]) if mode == "reset" else (DATA[:SEGMENT_SIZE],))
    assert proxy.faults == 1
    assert time.monotonic() - started < READ_TIMEOUT + 10
    # The store is usable again: the broken connection went back to the pool closed.
    proxy.disarm()
    assert await collect(encrypted.get(stored)) == DATA


async def test_a_download_closed_early_releases_its_reader(
    proxy: FaultyProxy, seaweed: SeaweedFS, direct: S3Store, keyring: Keyring
) -> None:
    stored = await EncryptedObjectStore(direct, keyring).put("k", chunks(DATA, MiB))
    store = through(proxy, seaweed, direct)
    encrypted = EncryptedObjectStore(store, keyring)
    for _ in range(3):
        # Closed while the next segment's read is in flight: the close waits for it, then
        # closes the response.
        async with aclosing(encrypted.get(stored)) as plaintext:
            first = await anext(plaintext)
        assert first == DATA[:SEGMENT_SIZE]
    assert await collect(encrypted.get(stored)) == DATA
