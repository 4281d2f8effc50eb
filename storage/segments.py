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

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Protocol, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import IntegrityError
from storage.pipeline import in_worker

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
Buffer: TypeAlias = bytes | bytearray | memoryview


class Digest(Protocol):
    """What `encrypt` and `decrypt` feed the plaintext to (a hashlib object, a counter)."""

    def update(self, data: Buffer, /) -> None:
        """Take the next plaintext bytes."""


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


def _seal(
    aead: AESGCM, oid: bytes, index: int, last: bool, segment: Buffer, digest: Digest | None
) -> bytes:
    # Runs in a worker thread: hashlib releases the GIL on large buffers.
    if digest is not None:
        digest.update(segment)
    return aead.encrypt(_nonce(index, last), segment, _aad(oid, index, last))


async def encrypt(
    data_key: bytes,
    object_id: str,
    plaintext: AsyncIterable[Buffer],
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield the header, then one sealed segment per MiB of plaintext.

    Each segment is hashed into `digest` (if given) and sealed in a worker thread, one hop per
    segment (`storage.pipeline.in_worker`): the event loop stays free and the work can overlap
    the other stages' I/O.
    """
    aead, oid = AESGCM(data_key), object_id.encode()
    yield HEADER
    pending, index = _Pending(), 0
    async for chunk in plaintext:
        pending.add(chunk)
        # Strictly more than a segment: the final segment must be known to be final.
        while pending.size > SEGMENT_SIZE:
            segment = pending.take(SEGMENT_SIZE)
            yield await in_worker(_seal, aead, oid, index, False, segment, digest)
            index += 1
    segment = pending.take(pending.size)
    yield await in_worker(_seal, aead, oid, index, True, segment, digest)


async def decrypt(
    data_key: bytes,
    object_id: str,
    ciphertext: AsyncIterable[Buffer],
    *,
    digest: Digest | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield each segment's plaintext once verified; raise `IntegrityError` on any tampering.

    Opening (and hashing the plaintext into `digest`, if given) runs in a worker thread.
    """
    aead, oid = AESGCM(data_key), object_id.encode()
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
            yield await in_worker(_open, aead, oid, index, False, sealed, digest)
            index += 1
    if not header_seen:
        _check_header(bytes(pending.take(pending.size)))
    sealed = pending.take(pending.size)
    yield await in_worker(_open, aead, oid, index, True, sealed, digest)


def _check_header(header: bytes) -> None:
    if header[: len(MAGIC)] != MAGIC or len(header) < len(HEADER):
        raise IntegrityError("not a Jourpost ciphertext (bad magic)")
    if header[len(MAGIC)] != VERSION:
        raise IntegrityError(f"unsupported ciphertext version {header[len(MAGIC)]}")


def _open(
    aead: AESGCM, oid: bytes, index: int, last: bool, sealed: Buffer, digest: Digest | None
) -> bytes:
    try:
        plaintext = aead.decrypt(_nonce(index, last), sealed, _aad(oid, index, last))
    except InvalidTag:
        raise IntegrityError(f"segment {index} failed authentication") from None
    if digest is not None:
        digest.update(plaintext)
    return plaintext
