"""Streaming keeps memory bounded: 64 MiB through encryption and back on both backends."""

import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from storage import EncryptedObjectStore
from tests.storage.helpers import MiB

TOTAL = 64 * MiB
LIMIT = 16 * MiB
"""Peak traced allocations allowed: segments, spool buffers and one 5 MiB S3 part, not the file."""


async def generated(digest: "hashlib._Hash") -> AsyncIterator[bytes]:
    rng = random.Random(7)
    for _ in range(TOTAL // (256 * 1024)):
        chunk = rng.randbytes(256 * 1024)
        digest.update(chunk)
        yield chunk


@pytest.mark.slow
async def test_large_stream_bounded_memory(encrypted: EncryptedObjectStore) -> None:
    sent = hashlib.sha256()
    tracemalloc.start()
    try:
        stored = await encrypted.put("big", generated(sent))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received, size = hashlib.sha256(), 0
        async for chunk in encrypted.get(stored):
            received.update(chunk)
            size += len(chunk)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == size == TOTAL
    assert received.hexdigest() == sent.hexdigest() == stored.sha256
    assert put_peak < LIMIT, f"put peaked at {put_peak / MiB:.1f} MiB"
    assert get_peak < LIMIT, f"get peaked at {get_peak / MiB:.1f} MiB"
