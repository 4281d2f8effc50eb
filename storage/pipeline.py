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
(or opening) and the I/O of the same segment instead of before it. A lane queues up to `depth`
updates and one job on a hashing thread takes them in turn while there are any, so the hashing
thread never waits for the event loop between segments and the loop is woken only when it has
to wait for the hashing. That matters on the VMs this runs on, where a thread hand-off costs
tens of microseconds: with one update in flight and a round trip through the loop per segment,
the hashing thread sat idle ~20 % of a download. The hashing threads allocate nothing large,
so they add no malloc arena slack.

A download reads and opens its segments on a thread of its own (`start_download`), which feeds
its lane from there (`HashLane.put`): it waits for its consumer, which the two crypto threads
must never do (storage.segments.decrypt_reader). Its plaintext segments are allocated there, so
concurrent downloads use more malloc arenas (glibc caps them at eight per core); measured, ten
concurrent 20 MiB downloads five times over peaked at 97-98 MiB RSS, against 107-109 MiB when
the crypto threads opened the segments (they also held a read-ahead task's segments).
"""

import asyncio
import functools
import os
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import ParamSpec, Protocol, TypeAlias, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")
_END = object()

WORKERS = min(2, os.cpu_count() or 1)
"""Threads sealing and opening segments, shared by every stream in the process."""
HASH_DEPTH = 3
"""Updates a stream may hand its hashing lane ahead (`HashLane`), when its buffers are
immutable: the hashing thread goes from one to the next without waiting for the event loop
(each wait for it cost a wake-up on both sides, ~20 % of a download's time here)."""
DOWNLOADS = 128
"""Downloads that can have a reading thread at once (`start_download`); more wait for one."""
_workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="storage-crypto")
_hashers = ThreadPoolExecutor(WORKERS, thread_name_prefix="storage-hash")
_downloads = ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="storage-download")

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


def start_download(fn: Callable[[], None]) -> None:
    """Run `fn`, a download's reading loop (`storage.segments.decrypt_reader`), on a thread of
    its own for as long as it takes. It waits for its consumer there, so it must not hold one
    of the few crypto threads other streams need; the threads are kept and reused (starting a
    thread blocks the event loop until it runs: 20 small downloads at once took a third
    longer with a new thread each)."""
    _downloads.submit(fn)


class HashLane:
    """Feeds `digest` on a hashing thread, in order, with up to `depth` updates handed over.

    The updates wait in the lane's own queue, and one job on a hashing thread takes them one
    after the other while there are any: the thread hashes the next update without a round
    trip through the event loop, and the loop is woken only when it waits (for room in the
    queue, or in `drain`). A buffer handed to `update` must not change until `depth` more
    updates, or a `drain`, have returned (bytes, or views of bytes, as the streams pass it;
    with `depth` 1, until the next `update`).
    """

    def __init__(self, digest: Digest | None, depth: int = 1) -> None:
        self._digest = digest
        self._depth = depth
        self._lock = threading.Lock()
        self._queue: deque[tuple[Buffer, ...]] = deque()
        self._queued = 0  # updates handed over and not yet hashed
        self._running = False  # a job is taking updates on a hashing thread
        self._failure: BaseException | None = None
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int] | None = None
        self._hashed = threading.Condition(self._lock)  # a thread waiting in `put` / `wait`

    async def update(self, *data: Buffer) -> None:
        """Wait until fewer than `depth` updates are queued, then queue hashing the `data`."""
        if self._digest is None:
            return
        await self._until(self._depth - 1)
        with self._lock:
            self._queue.append(data)
            self._queued += 1
            start, self._running = not self._running, True
        if start:
            _hashers.submit(self._run)

    def put(self, *data: Buffer) -> None:
        """`update` for a thread that may block (a download's reading thread): wait until fewer
        than `depth` updates are queued, then queue hashing the `data`."""
        if self._digest is None:
            return
        with self._lock:
            while self._failure is None and self._queued >= self._depth:
                self._hashed.wait()
            if self._failure is not None:
                raise self._failure
            self._queue.append(data)
            self._queued += 1
            start, self._running = not self._running, True
        if start:
            _hashers.submit(self._run)

    def wait(self) -> None:
        """`drain` for a thread that may block: wait until everything queued is hashed."""
        if self._digest is None:
            return
        with self._lock:
            while self._failure is None and self._queued > 0:
                self._hashed.wait()
            if self._failure is not None:
                raise self._failure

    async def drain(self) -> None:
        """Wait until everything handed over is hashed (raise what the digest raised)."""
        if self._digest is not None:
            await self._until(0)

    async def _until(self, queued: int) -> None:
        with self._lock:
            if self._failure is None and self._queued > queued:
                loop = asyncio.get_running_loop()
                waiter = loop.create_future()
                self._waiter = (loop, waiter, queued)
            else:
                waiter = None
        if waiter is not None:
            await waiter
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        """On a hashing thread: hash the queued updates in order until the queue is empty, or
        hand the thread over after `_TURN` updates (to the back of the pool's queue) so that
        other streams' lanes get their turn while a long stream keeps its lane full."""
        digest = self._digest
        assert digest is not None
        for _ in range(_TURN):
            with self._lock:
                if not self._queue:
                    self._running = False
                    return
                data = self._queue.popleft()
            failed = None
            try:
                for piece in data:
                    digest.update(piece)
            except BaseException as exc:  # raised in the stream, at its next update or drain
                failed = exc
            with self._lock:
                if failed is not None:
                    self._failure = failed
                    self._queue.clear()
                    self._queued = 0
                else:
                    self._queued -= 1
                wake = self._waiter
                if wake is not None and (failed is not None or self._queued <= wake[2]):
                    self._waiter = None
                else:
                    wake = None
                if failed is not None:
                    self._running = False
                self._hashed.notify_all()
            if wake is not None:
                loop, waiter, _ = wake
                loop.call_soon_threadsafe(resolve, waiter)
            if failed is not None:
                return
        _hashers.submit(self._run)  # still running: the rest after the other lanes' turns


_TURN = 8
"""Updates a lane hashes before it lets the other lanes waiting for a hashing thread go first."""


def resolve(waiter: "asyncio.Future[None]") -> None:
    """Set `waiter`'s result unless it is done (called on its loop, from a thread that has
    finished what it waits for: its awaiter may have been cancelled meanwhile)."""
    if not waiter.done():
        waiter.set_result(None)


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
