"""EncryptedObjectStore end to end on both backends: real AES-GCM, real stores, no mocks."""

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    EncryptedObjectStore,
    IntegrityError,
    Keyring,
    ObjectNotFound,
    ObjectStore,
    RetentionError,
    StoredObject,
    UnknownKek,
)
from storage.segments import HEADER, SEGMENT_SIZE, TAG_SIZE
from tests.storage.helpers import (
    MiB,
    chunks,
    collect,
    failing,
    random_bytes,
    raw,
    read_until_error,
    replace_raw,
)

SEALED = SEGMENT_SIZE + TAG_SIZE


def sealed_segments(ciphertext: bytes) -> list[bytes]:
    body = ciphertext[len(HEADER) :]
    return [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


async def put(encrypted: EncryptedObjectStore, object_id: str, data: bytes) -> StoredObject:
    return await encrypted.put(object_id, chunks(data, 300_000))


@pytest.mark.parametrize(
    "size", [0, 1, 1000, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 12345], ids=str
)
async def test_round_trip(encrypted: EncryptedObjectStore, size: int) -> None:
    data = random_bytes(size, seed=size)
    stored = await put(encrypted, "files/doc", data)
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.kek_id == "k1"
    assert await collect(encrypted.get(stored)) == data

    ciphertext = await raw(encrypted.store, "files/doc")
    segments = max(1, -(-size // SEGMENT_SIZE))
    assert ciphertext.startswith(HEADER)
    assert len(ciphertext) == len(HEADER) + size + segments * TAG_SIZE
    if size >= 1000:
        assert data[:64] not in ciphertext


async def test_plaintext_never_reaches_the_store(encrypted: EncryptedObjectStore) -> None:
    data = b"personnummer 201103059893 " * 5000
    await put(encrypted, "k", data)
    assert b"201103059893" not in await raw(encrypted.store, "k")


async def test_same_plaintext_encrypts_differently(encrypted: EncryptedObjectStore) -> None:
    first = await put(encrypted, "a", b"same")
    second = await put(encrypted, "b", b"same")
    assert first.wrapped_key != second.wrapped_key
    assert await raw(encrypted.store, "a") != await raw(encrypted.store, "b")


# -- tampering: each must raise IntegrityError and yield only verified segments ----------------

THREE_SEGMENTS = 3 * MiB - 100


@pytest.mark.parametrize("segment", [0, 1, 2])
async def test_flipped_byte(encrypted: EncryptedObjectStore, segment: int) -> None:
    data = random_bytes(THREE_SEGMENTS)
    stored = await put(encrypted, "k", data)
    ciphertext = bytearray(await raw(encrypted.store, "k"))
    ciphertext[len(HEADER) + segment * SEALED + 500] ^= 0x01
    await replace_raw(encrypted.store, "k", bytes(ciphertext))
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == data[: segment * SEGMENT_SIZE]


async def test_truncated_last_segment_dropped(encrypted: EncryptedObjectStore) -> None:
    data = random_bytes(THREE_SEGMENTS)
    stored = await put(encrypted, "k", data)
    ciphertext = await raw(encrypted.store, "k")
    await replace_raw(encrypted.store, "k", HEADER + b"".join(sealed_segments(ciphertext)[:2]))
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == data[:SEGMENT_SIZE]  # segment 1 is not released: it claims not last


@pytest.mark.parametrize("cut", [len(HEADER), 4, 0, len(HEADER) + 10])
async def test_truncated_anywhere(encrypted: EncryptedObjectStore, cut: int) -> None:
    stored = await put(encrypted, "k", b"short")
    ciphertext = await raw(encrypted.store, "k")
    await replace_raw(encrypted.store, "k", ciphertext[:cut])
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_appended_bytes(encrypted: EncryptedObjectStore) -> None:
    stored = await put(encrypted, "k", random_bytes(MiB + 10))
    ciphertext = await raw(encrypted.store, "k")
    await replace_raw(encrypted.store, "k", ciphertext + ciphertext[-TAG_SIZE:])
    _, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)


async def test_reordered_segments(encrypted: EncryptedObjectStore) -> None:
    data = random_bytes(THREE_SEGMENTS)
    stored = await put(encrypted, "k", data)
    first, second, third = sealed_segments(await raw(encrypted.store, "k"))
    await replace_raw(encrypted.store, "k", HEADER + second + first + third)
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_segment_from_another_object(encrypted: EncryptedObjectStore) -> None:
    data = random_bytes(THREE_SEGMENTS, seed=1)
    stored = await put(encrypted, "a", data)
    await put(encrypted, "b", random_bytes(THREE_SEGMENTS, seed=2))
    mine = sealed_segments(await raw(encrypted.store, "a"))
    theirs = sealed_segments(await raw(encrypted.store, "b"))
    await replace_raw(encrypted.store, "a", HEADER + mine[0] + theirs[1] + mine[2])
    received, error = await read_until_error(encrypted.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == data[:SEGMENT_SIZE]


async def test_ciphertext_moved_to_another_object(encrypted: EncryptedObjectStore) -> None:
    stored_a = await put(encrypted, "a", b"for unit A")
    await put(encrypted, "b", b"for unit B")
    # The store's content for "a" replaced by "b"'s ciphertext: a's data key can't open it.
    await replace_raw(encrypted.store, "a", await raw(encrypted.store, "b"))
    received, error = await read_until_error(encrypted.get(stored_a))
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_row_relabelled_with_another_object_id(encrypted: EncryptedObjectStore) -> None:
    stored = await put(encrypted, "a", b"content")
    await replace_raw(encrypted.store, "b", await raw(encrypted.store, "a"))
    # Same ciphertext and wrapped key, other object id: the wrapped key is bound to "a".
    received, error = await read_until_error(encrypted.get(replace(stored, object_id="b")))
    assert isinstance(error, IntegrityError)
    assert received == b""


async def test_wrapped_key_from_another_row(encrypted: EncryptedObjectStore) -> None:
    stored_a = await put(encrypted, "a", b"A")
    stored_b = await put(encrypted, "b", b"B")
    forged = replace(stored_a, wrapped_key=stored_b.wrapped_key)
    _, error = await read_until_error(encrypted.get(forged))
    assert isinstance(error, IntegrityError)


@pytest.mark.parametrize("field", ["size", "sha256"])
async def test_row_size_or_hash_mismatch(encrypted: EncryptedObjectStore, field: str) -> None:
    data = random_bytes(MiB + 3)
    stored = await put(encrypted, "k", data)
    forged = (
        replace(stored, size=stored.size - 1)
        if field == "size"
        else replace(stored, sha256=hashlib.sha256(b"other").hexdigest())
    )
    received, error = await read_until_error(encrypted.get(forged))
    assert isinstance(error, IntegrityError)
    assert len(received) <= forged.size  # never more bytes than the row promises


async def test_wrong_kek(encrypted: EncryptedObjectStore, store: ObjectStore) -> None:
    stored = await put(encrypted, "k", b"secret")
    impostor = EncryptedObjectStore(
        store, Keyring.from_base64({"k1": Keyring.generate_key()}, "k1")
    )
    received, error = await read_until_error(impostor.get(stored))
    assert isinstance(error, IntegrityError)
    assert received == b""
    stranger = EncryptedObjectStore(
        store, Keyring.from_base64({"k9": Keyring.generate_key()}, "k9")
    )
    _, error = await read_until_error(stranger.get(stored))
    assert isinstance(error, UnknownKek)


async def test_missing_object(encrypted: EncryptedObjectStore) -> None:
    stored = await put(encrypted, "k", b"x")
    await encrypted.store.delete("k")
    with pytest.raises(ObjectNotFound):
        await collect(encrypted.get(stored))


async def test_source_failure_leaves_nothing(encrypted: EncryptedObjectStore) -> None:
    with pytest.raises(ConnectionResetError):
        await encrypted.put("k", failing(random_bytes(3 * MiB), 2 * MiB + 7))
    assert not await encrypted.store.exists("k")


async def test_retention_passes_through(encrypted: EncryptedObjectStore) -> None:
    until = datetime.now(UTC) + timedelta(days=1)
    stored = await encrypted.put("k", chunks(b"decision"), retain_until=until)
    with pytest.raises(RetentionError):
        await encrypted.store.delete("k")
    with pytest.raises(RetentionError):
        await encrypted.put("k", chunks(b"forged"))
    assert await collect(encrypted.get(stored)) == b"decision"


# -- key rotation --------------------------------------------------------------------------


async def test_rotation_over_every_object(store: ObjectStore) -> None:
    old_key, new_key = Keyring.generate_key(), Keyring.generate_key()
    before = EncryptedObjectStore(store, Keyring.from_base64({"2025": old_key}, "2025"))
    contents = {f"obj/{i}": random_bytes(i * 400_000, seed=i) for i in range(5)}
    rows = [await put(before, object_id, data) for object_id, data in contents.items()]
    ciphertexts = {object_id: await raw(store, object_id) for object_id in contents}

    during = Keyring.from_base64({"2025": old_key, "2026": new_key}, "2026")
    rotated = [before.rewrap(row, during) for row in rows]
    assert {row.kek_id for row in rotated} == {"2026"}
    assert all(new.wrapped_key != old.wrapped_key for new, old in zip(rotated, rows, strict=True))
    assert [(r.object_id, r.size, r.sha256) for r in rotated] == [
        (r.object_id, r.size, r.sha256) for r in rows
    ]

    after = EncryptedObjectStore(store, Keyring.from_base64({"2026": new_key}, "2026"))
    for row in rotated:
        assert await collect(after.get(row)) == contents[row.object_id]
        assert await raw(store, row.object_id) == ciphertexts[row.object_id]  # not re-encrypted
    for row in rows:  # rows that missed the rotation can't be read once the old KEK is gone
        _, error = await read_until_error(after.get(row))
        assert isinstance(error, UnknownKek)
