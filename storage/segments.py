"""The ciphertext format: a header, then AES-256-GCM segments (the STREAM construction).

    header   "JPOSTENC" | version 0x01                                  (9 bytes)
    segment  AES-256-GCM(plaintext[i*1 MiB : (i+1)*1 MiB]) | 16-byte tag, for i = 0..n-1

Every object has at least one segment; only the last may be shorter than 1 MiB (an empty object
is one empty segment, 16 bytes). Segment i is sealed with
    nonce = i (11 bytes, big-endian) | last flag (1 byte)
    associated data = header | len(object id) | object id | i (8 bytes) | last flag
under a data key used for this one object. Threats and what stops them:
- a flipped byte, a segment from another object or position, reordering: the tag fails;
- truncation at a segment boundary: the new final segment was sealed with last=0, so it fails
  when opened as the last one; appended bytes make the old last segment fail as non-last;
- a ciphertext moved to another object id: the associated data differs.
A segment's plaintext is released only after its tag verified, so a consumer never sees
unauthenticated bytes; it may see the verified segments before a later one fails, and must
then discard the whole download (the error is raised before the stream ends).
"""

import asyncio
import contextlib
import io
import os
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Iterator
from contextlib import aclosing
from typing import IO, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import IntegrityError
from storage.filesystem import FileReader
from storage.pipeline import (
    HASH_DEPTH,
    Buffer,
    Digest,
    HashLane,
    in_worker,
    resolve,
    start_download,
    submit,
)
from storage.protocol import ObjectReader

MAGIC = b"JPOSTENC"
"""First bytes of every Jourpost ciphertext."""
VERSION = 1
"""Format version written by this code."""
HEADER = MAGIC + bytes([VERSION])
"""The whole header of a version-1 ciphertext."""
SEGMENT_SIZE = 1 << 20
"""Plaintext bytes per segment (1 MiB): bounds memory on both sides."""
TAG_SIZE = 16
"""AES-GCM tag bytes appended to every segment."""
DATA_KEY_SIZE = 32
"""Bytes in a per-object data key (AES-256)."""

_SEALED_SIZE = SEGMENT_SIZE + TAG_SIZE
FILE_BATCH = 4
"""Segments per worker-thread call when a file is stored from a file (`encrypt_readable_to_file`):
each call and each hashing update is a thread hand-off and a wake-up of the event loop, which
on this project's VMs costs more than sealing a segment. Two buffers of this many segments
(8 MiB) are the price: peak RSS stays far below 64 MiB."""

__all__ = [
    "Buffer",
    "Digest",
    "decrypt",
    "decrypt_file",
    "decrypt_reader",
    "encrypt",
    "encrypt_readable_to_file",
    "encrypt_to_file",
]


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _aad(object_id: bytes, index: int, last: bool) -> bytes:
    return (
        HEADER
        + len(object_id).to_bytes(2, "big")
        + object_id
        + index.to_bytes(8, "big")
        + (b"\x01" if last else b"\x00")
    )


class _Pending:
    """Received bytes not yet cut into segments, kept as the pieces they came in.

    A segment that lies within one received piece is a view of it (no copy: pieces of 1 MiB
    or more, as files are read, are sealed in place); one spanning pieces is joined.
    Mutable buffers are copied on arrival, so a producer may reuse its buffer after yielding.
    """

    def __init__(self) -> None:
        self.pieces: deque[bytes | memoryview] = deque()
        self.size = 0

    def add(self, chunk: Buffer) -> None:
        if chunk:
            self.pieces.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
            self.size += len(chunk)

    def take(self, count: int) -> Buffer:
        """Remove and return the first `count` bytes (at most `size`)."""
        self.size -= count
        if count == 0:
            return b""
        first = self.pieces[0]
        if len(first) >= count:
            view = memoryview(first)
            if len(first) == count:
                self.pieces.popleft()
            else:
                self.pieces[0] = view[count:]
            return view[:count]
        parts: list[bytes | memoryview] = []
        need = count
        while need:
            piece = self.pieces.popleft()
            if len(piece) > need:
                view = memoryview(piece)
                parts.append(view[:need])
                self.pieces.appendleft(view[need:])
                break
            parts.append(piece)
            need -= len(piece)
        return b"".join(parts)  # one allocation, one copy


def _seal(aead: AESGCM, oid: bytes, index: int, last: bool, segment: Buffer) -> bytes:
    return aead.encrypt(_nonce(index, last), segment, _aad(oid, index, last))


async def encrypt(
    data_key: bytes,
    object_id: str,
    plaintext: AsyncIterable[Buffer],
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield the header, then one sealed segment per MiB of plaintext.

    Each segment is sealed in a worker thread (`storage.pipeline.submit`) while it is hashed
    into `digest` (if given) in the hashing lane: the event loop stays free and the work can
    overlap the other stages' I/O.
    """
    aead, oid, lane = AESGCM(data_key), object_id.encode(), HashLane(digest, HASH_DEPTH)
    yield HEADER
    pending, index = _Pending(), 0
    async for chunk in plaintext:
        pending.add(chunk)
        # Strictly more than a segment: the final segment must be known to be final.
        while pending.size > SEGMENT_SIZE:
            segment = pending.take(SEGMENT_SIZE)
            sealed = submit(_seal, aead, oid, index, False, segment)
            await lane.update(segment)
            yield await sealed
            index += 1
    segment = pending.take(pending.size)
    sealed = submit(_seal, aead, oid, index, True, segment)
    await lane.update(segment)
    await lane.drain()
    yield await sealed


async def decrypt(
    data_key: bytes,
    object_id: str,
    ciphertext: AsyncIterable[Buffer],
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield each segment's plaintext once verified; raise `IntegrityError` on any tampering.

    Opening runs in a worker thread, the hashing of the plaintext into `digest` (if given) in
    the hashing lane, beside the opening of the next segment: the digest is complete once this
    generator is exhausted.
    """
    aead, oid, lane = AESGCM(data_key), object_id.encode(), HashLane(digest, HASH_DEPTH)
    pending, index, header_seen = _Pending(), 0, False
    async for chunk in ciphertext:
        pending.add(chunk)
        if not header_seen:
            if pending.size < len(HEADER):
                continue
            _check_header(bytes(pending.take(len(HEADER))))
            header_seen = True
        while pending.size > _SEALED_SIZE:
            sealed = pending.take(_SEALED_SIZE)
            segment = await in_worker(_open, aead, oid, index, False, sealed)
            await lane.update(segment)
            yield segment
            index += 1
    if not header_seen:
        _check_header(bytes(pending.take(pending.size)))
    sealed = pending.take(pending.size)
    segment = await in_worker(_open, aead, oid, index, True, sealed)
    await lane.update(segment)
    await lane.drain()
    yield segment


async def encrypt_to_file(
    data_key: bytes,
    object_id: str,
    plaintext: AsyncIterable[Buffer],
    file: BinaryIO,
    *,
    digest: Digest | None = None,
) -> None:
    """Write what `encrypt` yields (the same bytes) to `file`.

    The fast path for a store that hands out a file (`FilesystemStore.put_file`): each segment
    is sealed straight into one reused buffer (`AESGCM.encrypt_into`) and written from it in
    the same worker-thread call, while the hashing lane hashes it. One thread hop per segment,
    no ciphertext object per segment. (A buffered file writes a segment-sized buffer straight
    through, without copying it; and its lock makes a `close` from a cancelled caller wait
    for a write still running in the thread.)
    """
    aead, oid, lane = AESGCM(data_key), object_id.encode(), HashLane(digest, HASH_DEPTH)
    out = bytearray(_SEALED_SIZE)
    file.write(HEADER)  # buffered: goes out with the first segment
    pending, index = _Pending(), 0
    async for chunk in plaintext:
        pending.add(chunk)
        while pending.size > SEGMENT_SIZE:  # as in `encrypt`
            segment = pending.take(SEGMENT_SIZE)
            written = submit(_seal_to, file, aead, oid, index, False, segment, out)
            await lane.update(segment)
            await written  # `out` is free again
            index += 1
    segment = pending.take(pending.size)
    written = submit(_seal_to, file, aead, oid, index, True, segment, out)
    await lane.update(segment)
    await lane.drain()
    await written


def _seal_to(
    file: BinaryIO,
    aead: AESGCM,
    oid: bytes,
    index: int,
    last: bool,
    segment: Buffer,
    out: bytearray,
) -> None:
    sealed = memoryview(out)[: len(segment) + TAG_SIZE]
    aead.encrypt_into(_nonce(index, last), segment, _aad(oid, index, last), sealed)
    file.write(sealed)


async def encrypt_readable_to_file(
    data_key: bytes,
    object_id: str,
    source: IO[bytes],
    file: BinaryIO,
    *,
    digest: Digest | None = None,
) -> None:
    """Write what `encrypt` yields for the rest of `source` (from its position) to `file`.

    The fast path for a file to a file (an upload's spooled file into `FilesystemStore`):
    `FILE_BATCH` segments at a time are read into one of two reused buffers, sealed and written
    in one worker-thread call, and hashed in the hashing lane while the next ones are read. No
    chunk objects and no thread hop of its own for the read. The size of `source` at the start
    gives the segments; a source that changes size meanwhile fails (`ValueError`), and the
    store keeps nothing of it.
    """
    aead, oid, lane = AESGCM(data_key), object_id.encode(), HashLane(digest)
    size = await in_worker(_remaining, source)
    count = max(1, -(-size // SEGMENT_SIZE))
    batch = min(FILE_BATCH, count)
    # Two buffers: one hashed (a lane of depth 1) while the next is read into the other.
    buffers = [bytearray(min(size, batch * SEGMENT_SIZE)) for _ in range(2)]
    out = bytearray(min(size, SEGMENT_SIZE) + TAG_SIZE)
    file.write(HEADER)  # buffered: goes out with the first segment
    for turn, first in enumerate(range(0, count, batch)):
        n = min(batch, count - first)
        length = min(size - first * SEGMENT_SIZE, n * SEGMENT_SIZE)
        view = memoryview(buffers[turn % 2])[:length]
        await in_worker(_read_seal_many, source, file, aead, oid, first, count, view, out)
        await lane.update(view)
    await lane.drain()
    if await in_worker(source.read, 1):
        raise ValueError("the source grew while it was being stored")


def _remaining(source: IO[bytes]) -> int:
    here = source.tell()
    end = source.seek(0, os.SEEK_END)
    source.seek(here)
    return max(0, end - here)


def _read_seal_many(
    source: IO[bytes],
    file: BinaryIO,
    aead: AESGCM,
    oid: bytes,
    first: int,
    count: int,
    view: memoryview,
    out: bytearray,
) -> None:
    """Fill `view` from `source`, then seal and write it as segments `first`, `first + 1`, ..."""
    done = 0
    while done < len(view):
        read = source.readinto(view[done:])  # type: ignore[attr-defined]  # IO lacks it
        if not read:
            raise ValueError("the source shrank while it was being stored")
        done += read
    index = first
    for start in range(0, max(1, len(view)), SEGMENT_SIZE):  # one (empty) segment at least
        segment = view[start : start + SEGMENT_SIZE]
        _seal_to(file, aead, oid, index, index == count - 1, segment, out)
        index += 1


async def decrypt_file(
    data_key: bytes,
    object_id: str,
    file: io.BufferedReader,
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """What `decrypt` yields, read from an open ciphertext file (`FilesystemStore.open_file`).

    `decrypt_reader` over the file, its size that of the inode opened: a file shorter or longer
    than that at the start fails as a truncated or extended ciphertext does. The caller closes
    the file.
    """
    size = (await in_worker(os.fstat, file.fileno())).st_size
    reader = FileReader(file, size)
    async with aclosing(decrypt_reader(data_key, object_id, reader, digest=digest)) as plaintext:
        async for segment in plaintext:
            yield segment


async def decrypt_reader(
    data_key: bytes,
    object_id: str,
    reader: ObjectReader,
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """What `decrypt` yields, read from a ciphertext whose size is known up front.

    A download thread (`storage.pipeline.start_download`) reads and opens the segments one
    after the other and hands them over, up to `READ_AHEAD` ahead of the consumer; it feeds the
    hashing lane itself, waiting for room there as it waits for the consumer. The size gives
    the segment boundaries, so each sealed segment is read whole into one reused buffer
    (`reader.read_exactly`): no joining of read chunks. The event loop only takes the
    segments. Before, every segment was a thread hop of its own, and the next one could start
    only once the loop had seen the last one done, which on this project's VMs left the
    threads waiting for wake-ups (about 15 % of a download). Not on the crypto threads: the
    thread waits for its consumer, and a slow client must not hold a thread other streams
    need. The caller closes the reader, after this generator has ended or been closed (which
    waits for the thread's current read).
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()  # bounded by `room`
    room = threading.Semaphore(READ_AHEAD)
    stop = threading.Event()
    finished: asyncio.Future[None] = loop.create_future()
    aead, oid, lane = AESGCM(data_key), object_id.encode(), HashLane(digest, HASH_DEPTH)

    def hand(item: bytes | BaseException | None) -> None:
        loop.call_soon_threadsafe(items.put_nowait, item)

    def run() -> None:
        try:
            for segment in _open_all(reader, aead, oid, lane, room, stop, loop):
                hand(segment)
            hand(None)
        except BaseException as exc:  # raised by the consumer, after the segments before it
            with contextlib.suppress(RuntimeError):  # the loop closed, its consumer gone
                hand(exc)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve, finished)

    start_download(run)
    try:
        while (item := await items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        stop.set()
        room.release()  # wakes the thread if it waits for room
        await asyncio.wait([finished])  # done with the reader and its buffer


READ_AHEAD = 2
"""Opened segments a download's thread keeps ready for its consumer (`decrypt_reader`)."""


def _open_all(
    reader: ObjectReader,
    aead: AESGCM,
    oid: bytes,
    lane: HashLane,
    room: threading.Semaphore,
    stop: threading.Event,
    loop: asyncio.AbstractEventLoop,
) -> Iterator[bytes]:
    """On the download's thread: the opened segments, each once there is room for it and the
    lane has taken it; the last one once the lane has hashed everything."""
    size = reader.size
    buffer = bytearray(max(len(HEADER), min(_SEALED_SIZE, size)))
    _check_header(bytes(reader.read_exactly(buffer, min(len(HEADER), size))))
    body = size - len(HEADER)
    count, rest = divmod(body, _SEALED_SIZE)
    if rest:
        count += 1  # a shorter last segment
    if count == 0:  # no segment at all: cut after the header
        raise IntegrityError("segment 0 failed authentication")
    for index in range(count):
        # Checked every second: a consumer dropped without being closed, its event loop gone,
        # must not leave this thread waiting for ever (the pool's threads are joined at exit).
        while not room.acquire(timeout=1.0):
            if loop.is_closed():
                return
        if stop.is_set():
            return
        last = index == count - 1
        length = rest if last and rest else _SEALED_SIZE
        segment = _open(aead, oid, index, last, reader.read_exactly(buffer, length))
        lane.put(segment)
        if last:
            lane.wait()
        yield segment
    if not reader.at_end():
        raise IntegrityError("ciphertext extended while being read")


def _check_header(header: bytes) -> None:
    if header[: len(MAGIC)] != MAGIC or len(header) < len(HEADER):
        raise IntegrityError("not a Jourpost ciphertext (bad magic)")
    if header[len(MAGIC)] != VERSION:
        raise IntegrityError(f"unsupported ciphertext version {header[len(MAGIC)]}")


def _open(aead: AESGCM, oid: bytes, index: int, last: bool, sealed: Buffer) -> bytes:
    try:
        return aead.decrypt(_nonce(index, last), sealed, _aad(oid, index, last))
    except InvalidTag:
        raise IntegrityError(f"segment {index} failed authentication") from None
