"""`readahead` and the segment stages: order, errors, early close, reused producer buffers."""

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import cast

import pytest

from storage import EncryptedObjectStore, FilesystemStore, Keyring, ObjectStore
from storage.pipeline import in_worker, readahead
from storage.segments import SEGMENT_SIZE, decrypt, encrypt
from tests.storage.helpers import MiB, StreamedOnly, chunks, collect, random_bytes

KEY = bytes(32)


async def test_items_in_order_then_the_error() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(5):
            yield i
        raise ConnectionResetError("gone")

    received = []
    with pytest.raises(ConnectionResetError):
        async for item in readahead(source(), depth=2):
            received.append(item)
    assert received == [0, 1, 2, 3, 4]


async def test_runs_ahead_by_at_most_depth_plus_one() -> None:
    produced = 0

    async def source() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield i

    stream = readahead(source(), depth=2)
    assert await anext(stream) == 0
    for _ in range(10):
        await asyncio.sleep(0)
    # One handed out, two queued, one made and waiting for room in the queue.
    assert produced == 4
    await stream.aclose()


async def test_early_close_closes_the_source_and_stops_the_task() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncGenerator[int, None]:
        try:
            for i in range(1000):
                yield i
        finally:
            closed.set()

    stream = readahead(source())
    assert await anext(stream) == 0
    tasks_before = len(asyncio.all_tasks())
    await stream.aclose()
    assert closed.is_set()
    assert len(asyncio.all_tasks()) == tasks_before - 1


async def test_cancelled_consumer_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncGenerator[int, None]:
        try:
            yield 1
            await asyncio.sleep(3600)
            yield 2
        finally:
            closed.set()

    async def consume() -> None:
        async with aclosing(readahead(source())) as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed.is_set()


async def test_in_worker_returns_and_raises() -> None:
    assert await in_worker(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await in_worker(divmod, 1, 0)


@pytest.mark.parametrize("piece", [SEGMENT_SIZE, SEGMENT_SIZE - 1, 3 * MiB + 7, 4096])
async def test_producer_reusing_its_buffer(piece: int) -> None:
    """A source may yield one bytearray, refilled each time: the segments must not alias it."""
    data = random_bytes(3 * MiB + 11)

    async def reused() -> AsyncIterator[bytearray]:
        buffer = bytearray(piece)
        for start in range(0, len(data), piece):
            part = data[start : start + piece]
            buffer[: len(part)] = part
            del buffer[len(part) :]
            yield buffer
            buffer[:] = b"\xff" * len(buffer)  # scribble over it, as the next read would

    ciphertext = await collect(encrypt(KEY, "o", reused()))
    assert ciphertext == await collect(encrypt(KEY, "o", chunks(data, 65536)))
    assert await collect(decrypt(KEY, "o", chunks(ciphertext, piece))) == data


@pytest.mark.parametrize("path", ["file", "streamed"])
async def test_download_closed_early_leaves_no_task_or_open_file(tmp_path: Path, path: str) -> None:
    store = FilesystemStore(tmp_path)
    encrypted = EncryptedObjectStore(
        store if path == "file" else cast(ObjectStore, StreamedOnly(store)),
        Keyring.from_base64({"k": Keyring.generate_key()}, "k"),
    )
    stored = await encrypted.put("big", chunks(random_bytes(5 * MiB), MiB))
    opened_before = len(os.listdir("/proc/self/fd"))
    stream = encrypted.get(stored)
    await anext(stream)
    await asyncio.sleep(0.05)  # let the stages read ahead
    if path == "streamed":  # the file path reads ahead in a worker thread, not a task
        assert len(asyncio.all_tasks()) > 1
    await stream.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert len(os.listdir("/proc/self/fd")) == opened_before
