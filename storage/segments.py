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

from collections.abc import AsyncGenerator, AsyncIterable
from typing import TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import IntegrityError

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


async def encrypt(
    data_key: bytes, object_id: str, plaintext: AsyncIterable[bytes]
) -> AsyncGenerator[bytes, None]:
    """Yield the header, then one sealed segment per MiB of plaintext."""
    aead, oid = AESGCM(data_key), object_id.encode()
    yield HEADER
    buffer, index = bytearray(), 0
    async for chunk in plaintext:
        buffer += chunk
        # Strictly more than a segment: the final segment must be known to be final.
        while len(buffer) > SEGMENT_SIZE:
            # Views, not copies: at ~1 GB/s every extra copy of a segment shows.
            with memoryview(buffer) as view, view[:SEGMENT_SIZE] as segment:
                sealed = aead.encrypt(_nonce(index, False), segment, _aad(oid, index, False))
            del buffer[:SEGMENT_SIZE]
            yield sealed
            index += 1
    yield aead.encrypt(_nonce(index, True), buffer, _aad(oid, index, True))


async def decrypt(
    data_key: bytes, object_id: str, ciphertext: AsyncIterable[bytes]
) -> AsyncGenerator[bytes, None]:
    """Yield each segment's plaintext once verified; raise `IntegrityError` on any tampering."""
    aead, oid = AESGCM(data_key), object_id.encode()
    buffer, index, header_seen = bytearray(), 0, False
    async for chunk in ciphertext:
        buffer += chunk
        if not header_seen:
            if len(buffer) < len(HEADER):
                continue
            _check_header(bytes(buffer[: len(HEADER)]))
            del buffer[: len(HEADER)]
            header_seen = True
        while len(buffer) > _SEALED_SIZE:
            with memoryview(buffer) as view, view[:_SEALED_SIZE] as sealed:
                plaintext = _open(aead, oid, index, False, sealed)
            del buffer[:_SEALED_SIZE]
            yield plaintext
            index += 1
    if not header_seen:
        _check_header(bytes(buffer))
    yield _open(aead, oid, index, True, buffer)


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
