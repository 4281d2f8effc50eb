"""Overlapping the stages of a streamed upload or download (read, hash + seal, write).

Every stage of the storage streams awaits a thread for its work (a file read, SHA-256 and
AES-GCM, a write), and hashlib and the file system release the GIL while they work. Chained as
plain async generators the stages still take turns: the writer waits for the sealer, which waits
for the reader. `readahead` runs the stage before it in its own task, one item ahead, so the
stages' threads work at the same time on consecutive chunks (on two cores, the hashing of one
segment runs while the previous one is being written).

Memory stays bounded: at most `depth` items wait in the queue, plus the one the producer is
making and the one the consumer holds.

The sealing and opening of segments (`in_worker`) run on two threads of their own rather than
the event loop's default pool: glibc gives every thread that allocates its own malloc arena and
keeps freed megabyte buffers cached in each, so spreading the 1 MiB segments over the default
pool's six threads added ~10 MiB of resident memory per process for nothing (measured with
`bench/bench_storage.py`: peak RSS 65 MiB with the default pool, 56-59 MiB with these two).
Two threads, not one, so that on two cores two concurrent uploads hash at the same time.

The SHA-256 of a stream runs in a lane of its own (`HashLane`, on two more threads): it is the
largest single cost (about 0.12 s of CPU per 200 MB against 0.02 s for AES-GCM), must see the
segments in order, and is needed only at the end of the stream, so it runs beside the sealing
(or opening) and the I/O of the same segment instead of before it. A lane keeps one update in
flight; when that update has finished by the time the next one is due (the usual case), the
lane neither waits nor wakes the event loop. The hashing threads allocate nothing large, so
they add no malloc arena slack.
"""

import asyncio
import functools
import os
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from typing import ParamSpec, Protocol, TypeAlias, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")
_END = object()

WORKERS = min(2, os.cpu_count() or 1)
"""Threads sealing and opening segments, shared by every stream in the process."""
_workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="storage-crypto")
_hashers = ThreadPoolExecutor(WORKERS, thread_name_prefix="storage-hash")

Buffer: TypeAlias = bytes | bytearray | memoryview


class Digest(Protocol):
    """What the streams feed the plaintext to (a hashlib object, a counter)."""

    def update(self, data: Buffer, /) -> None:
        """Take the next plaintext bytes."""


async def in_worker(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run the blocking `fn` on the storage crypto threads and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_workers, functools.partial(fn, *args, **kwargs))


def submit(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> "asyncio.Future[_T]":
    """Start the blocking `fn` on the storage crypto threads now; await the result later."""
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_workers, functools.partial(fn, *args, **kwargs))


class HashLane:
    """Feeds `digest` on a hashing thread, in order, with one update in flight at a time.

    The buffer handed to `update` must not change until the next `update` or `drain` returns
    (bytes, or views of bytes, as the streams pass it).
    """

    def __init__(self, digest: Digest | None) -> None:
        self._digest = digest
        self._pending: Future[None] | None = None

    async def update(self, data: Buffer) -> None:
        """Wait for the previous update to finish, then start hashing `data`."""
        if self._digest is None:
            return
        await self.drain()
        self._pending = _hashers.submit(self._digest.update, data)

    async def drain(self) -> None:
        """Wait until everything handed over is hashed (raise what the digest raised)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if not pending.done():
            # Only now is a loop callback attached: a finished update costs no wake-up.
            await asyncio.wrap_future(pending)
        pending.result()


async def readahead(source: AsyncIterable[_T], depth: int = 1) -> AsyncGenerator[_T, None]:
    """Yield the items of `source`, fetched by a task of their own up to `depth` ahead.

    Exceptions of `source` are raised here, in order, after the items before them. Closing this
    generator early (or cancelling its consumer) cancels the task and closes `source` within it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(depth)
    failure: list[BaseException] = []

    async def pump() -> None:
        try:
            if isinstance(source, AsyncGenerator):
                # Closed in this task, the one iterating it (on error or cancellation too).
                async with aclosing(source) as items:
                    async for item in items:
                        await queue.put(item)
            else:
                async for item in source:
                    await queue.put(item)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, raised there
            failure.append(exc)
        await queue.put(_END)

    task = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not _END:
            yield item  # type: ignore[misc]  # anything but _END is an item of source
        if failure:
            raise failure[0]
    finally:
        task.cancel()
        # wait() never raises the task's own cancellation, only ours.
        await asyncio.wait([task])
