"""The segment format on its own, with one data key, so each binding is tested in isolation:
with a shared key only the associated data tells objects, positions and ends apart."""

import os

import pytest

from storage.errors import IntegrityError
from storage.segments import HEADER, MAGIC, SEGMENT_SIZE, TAG_SIZE, decrypt, encrypt
from tests.storage.helpers import MiB, chunks, collect, random_bytes, read_until_error

KEY = os.urandom(32)
SEALED = SEGMENT_SIZE + TAG_SIZE
DATA = random_bytes(3 * MiB + 1)


async def seal(object_id: str, data: bytes = DATA) -> bytes:
    return await collect(encrypt(KEY, object_id, chunks(data)))


def split(ciphertext: bytes) -> list[bytes]:
    body = ciphertext[len(HEADER) :]
    return [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


async def open_(object_id: str, ciphertext: bytes, piece: int = 65536) -> tuple[bytes, object]:
    return await read_until_error(decrypt(KEY, object_id, chunks(ciphertext, piece)))


@pytest.mark.parametrize("piece", [1, 7, SEALED, SEALED + 1, 10 * MiB])
async def test_any_chunking_decrypts(piece: int) -> None:
    data = DATA[: 2 * MiB + 3] if piece > 1 else DATA[:5000]
    ciphertext = await seal("o", data)
    assert await collect(decrypt(KEY, "o", chunks(ciphertext, piece))) == data


async def test_other_object_id_with_the_same_key() -> None:
    received, error = await open_("other", await seal("o"))
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_segment_moved_to_another_position() -> None:
    s = split(await seal("o"))
    received, error = await open_("o", HEADER + s[0] + s[2] + s[1] + s[3])
    assert isinstance(error, IntegrityError)
    assert received == DATA[:SEGMENT_SIZE]


async def test_segment_from_another_object_same_position() -> None:
    mine, theirs = split(await seal("o")), split(await seal("p"))
    received, error = await open_("o", HEADER + mine[0] + theirs[1] + mine[2] + mine[3])
    assert isinstance(error, IntegrityError)
    assert received == DATA[:SEGMENT_SIZE]


async def test_full_last_segment_cut_off_at_a_boundary() -> None:
    exact = DATA[: 2 * MiB]  # two full segments, the second marked last
    s = split(await seal("o", exact))
    received, error = await open_("o", HEADER + s[0])
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_non_final_segment_moved_to_the_end() -> None:
    s = split(await seal("o"))
    received, error = await open_("o", HEADER + s[0] + s[1] + s[2])
    assert isinstance(error, IntegrityError)
    assert received == DATA[: 2 * SEGMENT_SIZE]


async def test_header_version_and_magic_checked() -> None:
    ciphertext = await seal("o", b"x")
    for bad in [b"XPOSTENC\x01", MAGIC + b"\x02"]:
        received, error = await open_("o", bad + ciphertext[len(HEADER) :])
        assert isinstance(error, IntegrityError)
        assert received == b""
