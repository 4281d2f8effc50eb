"""The filesystem fast path (`encrypt_to_file` / `decrypt_file`) against the streamed format.

`EncryptedObjectStore` seals straight into the filesystem store's temporary file and reads
sealed segments whole from the object's file. It must write exactly the bytes `encrypt` yields
(format version 1, pinned in test_format_compat.py), read everything `encrypt` ever wrote, and
fail on a file that changes size while it is being read.
"""

import asyncio
import hashlib
import io
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterable
from pathlib import Path
from typing import IO, Any, cast

import pytest

from storage import EncryptedObjectStore, FilesystemStore, Keyring, ObjectStore, StoredObject
from storage.errors import IntegrityError
from storage.pipeline import HashLane
from storage.protocol import file_store
from storage.segments import (
    FILE_BATCH,
    READ_AHEAD,
    SEGMENT_SIZE,
    decrypt,
    decrypt_file,
    encrypt,
    encrypt_readable_to_file,
    encrypt_to_file,
)
from tests.storage.helpers import (
    MiB,
    StreamedOnly,
    chunks,
    collect,
    random_bytes,
    read_until_error,
)
from tests.storage.test_format_compat import FIXTURES, KEY, MULTI, MULTI_CIPHERTEXT_SHA256

OID = "attachments/file-path"


async def write_file(path: Path, data: bytes, piece: int, oid: str = OID) -> str:
    """Encrypt `data` into `path` through the fast path; return the plaintext SHA-256 fed."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        await encrypt_to_file(KEY, oid, chunks(data, piece), file, digest=digest)
    return digest.hexdigest()


async def read_file(path: Path, oid: str = OID) -> tuple[bytes, str]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        plaintext = await collect(decrypt_file(KEY, oid, file, digest=digest))
    return plaintext, digest.hexdigest()


async def test_writes_the_pinned_version_1_bytes(tmp_path: Path) -> None:
    oid = "attachments/old-format"
    for piece in (65536, MiB, 3 * MiB):
        await write_file(tmp_path / "multi", MULTI, piece, oid)
        ciphertext = (tmp_path / "multi").read_bytes()
        assert hashlib.sha256(ciphertext).hexdigest() == MULTI_CIPHERTEXT_SHA256
    plaintext, sha = await read_file(tmp_path / "multi", oid)
    assert plaintext == MULTI and sha == hashlib.sha256(MULTI).hexdigest()


async def test_reads_and_reproduces_the_version_1_fixture(tmp_path: Path) -> None:
    oid, plaintext = (
        "attachments/old-format-small",
        b"Skrivet av formatet version 1 (november 2026).\n",
    )
    assert (await read_file(FIXTURES / "v1-small.bin", oid))[0] == plaintext
    await write_file(tmp_path / "small", plaintext, 7, oid)
    assert (tmp_path / "small").read_bytes() == (FIXTURES / "v1-small.bin").read_bytes()


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 2 * MiB, 3 * MiB + 12345]
)
async def test_same_bytes_as_the_stream_both_ways(tmp_path: Path, size: int) -> None:
    data = random_bytes(size)
    sha = await write_file(tmp_path / "obj", data, 100_000)
    assert sha == hashlib.sha256(data).hexdigest()
    ciphertext = (tmp_path / "obj").read_bytes()
    assert ciphertext == await collect(encrypt(KEY, OID, chunks(data, MiB)))
    assert await read_file(tmp_path / "obj") == (data, sha)
    assert await collect(decrypt(KEY, OID, chunks(ciphertext, 77_777))) == data


@pytest.mark.parametrize("change", ["grow", "shrink"])
async def test_file_changing_size_while_read(tmp_path: Path, change: str) -> None:
    data = random_bytes(3 * MiB + 5)
    await write_file(tmp_path / "obj", data, MiB)
    with (tmp_path / "obj").open("rb") as file:
        stream = decrypt_file(KEY, OID, file)
        first = await anext(stream)  # the size is taken from the open file on the first step
        with (tmp_path / "obj").open("r+b") as other:
            if change == "grow":
                other.seek(0, io.SEEK_END)
                other.write(b"appended")
            else:
                other.truncate(len(first) + 2 * MiB)
        received, error = await read_until_error(stream)
    assert isinstance(error, IntegrityError)
    assert first + received in (data[: 2 * SEGMENT_SIZE], data)  # never more than verified


async def test_store_objects_read_by_the_stream_and_back(tmp_path: Path) -> None:
    """An object the store wrote through the fast path decrypts as a stream, and one written
    as a stream (the way every object was written before) reads through the fast path."""
    keyring = Keyring.from_base64({"k": Keyring.generate_key()}, "k")
    store = FilesystemStore(tmp_path)
    encrypted = EncryptedObjectStore(store, keyring)
    data = random_bytes(2 * MiB + 99)
    stored = await encrypted.put("fast", chunks(data, 65536))
    key = keyring.unwrap(stored.kek_id, "fast", stored.wrapped_key)
    assert await collect(decrypt(key, "fast", store.get("fast"))) == data
    await store.put("streamed", encrypt(key, "streamed", chunks(data, MiB)))
    streamed = StoredObject("streamed", stored.size, stored.sha256, *keyring.wrap("streamed", key))
    assert await collect(encrypted.get(streamed)) == data


async def test_hash_lane_keeps_the_order_and_one_update_in_flight() -> None:
    seen: list[bytes] = []
    running = 0
    most = 0
    lock = threading.Lock()

    class SlowDigest:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            threading.Event().wait(0.01 if len(seen) % 2 == 0 else 0)
            seen.append(bytes(data))
            with lock:
                running -= 1

    lane = HashLane(SlowDigest())
    parts = [bytes([i]) * 3000 for i in range(20)]
    for part in parts:
        await lane.update(part)
        await asyncio.sleep(0)
    await lane.drain()
    assert seen == parts
    assert most == 1


async def test_hash_lane_raises_what_the_digest_raised() -> None:
    class Broken:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            raise ValueError("broken digest")

    lane = HashLane(Broken())
    await lane.update(b"x" * 5000)
    with pytest.raises(ValueError, match="broken digest"):
        await lane.drain()


async def test_a_forwarding_wrapper_keeps_its_own_put_and_get(tmp_path: Path) -> None:
    """A wrapper forwarding attributes (`__getattr__`, as fault-injecting stores do) is not
    taken for a file store: its own `put` and `get` stay in the path."""
    inner = FilesystemStore(tmp_path)
    calls: list[str] = []

    class Wrapper:
        def __init__(self) -> None:
            self.inner = inner

        async def put(self, key: str, chunks: AsyncIterable[bytes], **kw: Any) -> None:
            calls.append("put")
            await inner.put(key, chunks, **kw)

        def get(self, key: str) -> AsyncGenerator[bytes, None]:
            calls.append("get")
            return inner.get(key)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    assert file_store(inner) is inner
    assert file_store(cast(ObjectStore, Wrapper())) is None
    encrypted = EncryptedObjectStore(
        cast(ObjectStore, Wrapper()), Keyring.from_base64({"k": Keyring.generate_key()}, "k")
    )
    data = random_bytes(MiB + 1)
    stored = await encrypted.put("w", chunks(data))
    assert await collect(encrypted.get(stored)) == data
    assert calls == ["put", "get"]


# -- storing from a file (an upload's spooled file) ----------------------------------------


async def write_from_file(path: Path, source: IO[bytes], oid: str = OID) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as file:
        await encrypt_readable_to_file(KEY, oid, source, file, digest=digest)
    return digest.hexdigest()


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        SEGMENT_SIZE - 1,
        SEGMENT_SIZE,
        SEGMENT_SIZE + 1,
        FILE_BATCH * SEGMENT_SIZE,
        FILE_BATCH * SEGMENT_SIZE + 1,
        (2 * FILE_BATCH + 1) * SEGMENT_SIZE + 12345,
    ],
)
async def test_from_a_file_the_same_bytes_as_the_stream(tmp_path: Path, size: int) -> None:
    """Read from where the file stands (here after a 5-byte prefix) to its end, in batches of
    FILE_BATCH segments: the bytes of `encrypt`, the plaintext's SHA-256."""
    data = random_bytes(size)
    (tmp_path / "src").write_bytes(b"skip!" + data)
    with (tmp_path / "src").open("rb") as source:
        source.seek(5)
        sha = await write_from_file(tmp_path / "obj", source)
    assert sha == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "obj").read_bytes() == await collect(encrypt(KEY, OID, chunks(data, MiB)))
    assert await read_file(tmp_path / "obj") == (data, sha)


async def test_from_a_spooled_file_still_in_memory(tmp_path: Path) -> None:
    """Litestar's uploads are SpooledTemporaryFiles: one still in memory is read as it is
    (asking for its file number would write it to disk)."""
    data = random_bytes(300_000)
    with tempfile.SpooledTemporaryFile(max_size=MiB) as spooled:
        spooled.write(data)
        spooled.seek(0)
        await write_from_file(tmp_path / "obj", cast(IO[bytes], spooled))
        assert not spooled._rolled  # type: ignore[attr-defined]
    assert (await read_file(tmp_path / "obj"))[0] == data


@pytest.mark.parametrize("change", ["grow", "shrink"])
async def test_a_source_changing_size_fails_and_nothing_is_stored(
    tmp_path: Path, change: str
) -> None:
    """The size at the start gives the segments. A source that grows or shrinks meanwhile
    fails the put: the key stays absent and no temporary file is left."""
    data = random_bytes(3 * FILE_BATCH * SEGMENT_SIZE)
    path = tmp_path / "upload"
    path.write_bytes(data)

    class Changing(io.FileIO):
        reads = 0

        def readinto(self, buffer: Any) -> int:
            Changing.reads += 1
            if Changing.reads == 2:  # after the first batch was read
                with path.open("r+b") as other:
                    if change == "grow":
                        other.seek(0, io.SEEK_END)
                        other.write(b"more")
                    else:
                        other.truncate(FILE_BATCH * SEGMENT_SIZE + 10)
            return super().readinto(buffer)

    store = FilesystemStore(tmp_path / "store")
    encrypted = EncryptedObjectStore(store, Keyring.from_base64({"k": Keyring.generate_key()}, "k"))
    with Changing(path, "rb") as source, pytest.raises(ValueError, match=r"grew|shrank"):
        await encrypted.put("attachments/changing", cast(IO[bytes], source))
    assert not await store.exists("attachments/changing")
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


async def test_a_file_source_into_a_store_without_files(tmp_path: Path) -> None:
    """Into a store that hands out no files (S3), a file source is read in the storage
    threads and goes through the streamed path: the same object."""
    store = FilesystemStore(tmp_path)
    keyring = Keyring.from_base64({"k": Keyring.generate_key()}, "k")
    streamed = EncryptedObjectStore(cast(ObjectStore, StreamedOnly(store)), keyring)
    data = random_bytes(2 * MiB + 3)
    stored = await streamed.put("s", io.BytesIO(data))
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await collect(EncryptedObjectStore(store, keyring).get(stored)) == data


# -- the hashing lane ------------------------------------------------------------------------


async def test_hash_lane_queues_up_to_its_depth_and_keeps_the_order() -> None:
    """With depth 3 an update returns at once while fewer than 3 wait; the hashing thread
    takes them in order."""
    release = threading.Event()
    seen: list[bytes] = []

    class Gated:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            release.wait(5)
            seen.append(bytes(data))

    lane = HashLane(Gated(), depth=3)
    parts = [bytes([i]) * 100 for i in range(8)]
    for part in parts[:3]:
        await asyncio.wait_for(lane.update(part), 1)  # room in the queue: no wait
    fourth = asyncio.ensure_future(lane.update(parts[3]))
    await asyncio.sleep(0.05)
    assert not fourth.done() and seen == []  # the lane is full until the thread moves on
    release.set()
    await fourth
    for part in parts[4:]:
        await lane.update(part)
    await lane.drain()
    assert seen == parts


async def test_hash_lane_failure_is_raised_once_queued_work_is_dropped() -> None:
    calls = 0

    class BreaksSecond:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise ValueError("broken digest")

    lane = HashLane(BreaksSecond(), depth=3)
    with pytest.raises(ValueError, match="broken digest"):
        for _ in range(20):
            await lane.update(b"x" * 10)
            await asyncio.sleep(0.01)
    with pytest.raises(ValueError, match="broken digest"):
        await lane.drain()
    assert calls == 2  # nothing hashed after the failure


async def test_hash_lane_waiter_cancelled_while_the_thread_finishes() -> None:
    """A stream cancelled while it waits for the lane leaves the lane usable for nothing
    else, but the hashing thread must not fail resolving the abandoned wait."""
    release = threading.Event()

    class Gated:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            release.wait(5)

    lane = HashLane(Gated())
    await lane.update(b"a")
    waiting = asyncio.ensure_future(lane.drain())
    await asyncio.sleep(0.02)
    waiting.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.02)  # the thread's call_soon_threadsafe ran on a cancelled future
    await lane.update(b"b")
    await lane.drain()


async def test_hash_lanes_take_turns_on_the_hashing_threads() -> None:
    """Two long streams keeping their lanes full must not hold both hashing threads until they
    end: a third stream's update is hashed after a turn of theirs, not after all of them."""
    done: list[str] = []

    class Slow:
        def __init__(self, name: str) -> None:
            self.name = name

        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            threading.Event().wait(0.005)
            done.append(self.name)

    long_a, long_b = HashLane(Slow("a"), depth=60), HashLane(Slow("b"), depth=60)
    for _ in range(60):
        await long_a.update(b"x")
        await long_b.update(b"x")
    await asyncio.sleep(0.01)  # both lanes are on the two hashing threads now
    short = HashLane(Slow("c"))
    await short.update(b"x")
    await short.drain()
    assert done.count("a") < 60 and done.count("b") < 60, "c waited for a and b to end"
    await asyncio.gather(long_a.drain(), long_b.drain())
    assert done.count("a") == done.count("b") == 60


def test_hash_lane_put_from_a_thread_waits_for_room_and_wait_raises_failures() -> None:
    """`put` and `wait`, as a download's own thread calls them: `put` blocks while `depth`
    updates are queued, and a digest's failure is raised by the next `put` or `wait`."""
    release = threading.Event()
    seen: list[bytes] = []

    class Gated:
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            release.wait(5)
            if data == b"bad":
                raise ValueError("broken digest")
            seen.append(bytes(data))

    lane = HashLane(Gated(), depth=2)
    lane.put(b"1")
    lane.put(b"2")
    third = threading.Thread(target=lane.put, args=(b"3",))
    third.start()
    third.join(0.05)
    assert third.is_alive() and seen == []  # two queued: the third waits for room
    release.set()
    third.join(5)
    lane.wait()
    assert seen == [b"1", b"2", b"3"]
    lane.put(b"bad")
    with pytest.raises(ValueError, match="broken digest"):
        lane.wait()
    with pytest.raises(ValueError, match="broken digest"):
        lane.put(b"4")
    assert seen == [b"1", b"2", b"3"]


# -- the download's own thread ---------------------------------------------------------------


async def test_a_download_reads_ahead_only_read_ahead_segments(tmp_path: Path) -> None:
    """A slow consumer holds the download's thread `READ_AHEAD` segments ahead of it; closed
    early, the thread stops reading."""
    store = FilesystemStore(tmp_path)
    encrypted = EncryptedObjectStore(store, Keyring.from_base64({"k": Keyring.generate_key()}, "k"))
    stored = await encrypted.put("big", chunks(random_bytes(8 * MiB), MiB))
    reads = 0
    open_reader = store.open_reader

    async def counting_reader(key: str) -> Any:
        reader = await open_reader(key)
        read_exactly = reader.read_exactly

        def counted(buffer: bytearray, length: int) -> memoryview:
            nonlocal reads
            reads += 1
            return read_exactly(buffer, length)

        reader.read_exactly = counted  # type: ignore[method-assign]
        return reader

    store.open_reader = counting_reader  # type: ignore[method-assign]
    stream = encrypted.get(stored)
    await anext(stream)
    await asyncio.sleep(0.2)  # time enough to read all 8 segments, were it not held back
    assert reads == 1 + 1 + READ_AHEAD  # the header, the segment taken, those ready
    await stream.aclose()
    await asyncio.sleep(0.1)
    assert reads == 1 + 1 + READ_AHEAD  # nothing read after the close
