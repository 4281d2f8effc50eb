"""The ObjectStore contract, run on the filesystem backend and on SeaweedFS alike."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    RetentionError,
    S3Store,
)
from tests.storage.helpers import MiB, chunks, collect, failing, random_bytes

TRAVERSAL_KEYS = [
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a//b",
    "a/./b",
    ".hidden",
    "a/",
    "",
    "a\\..\\b",
    "a\x00b",
    "a\nb",
    "a\x1bb",
    "ä",
    "x" * 600,
]


def in_a_day() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


async def test_round_trip_exists_delete(store: ObjectStore) -> None:
    data = random_bytes(3 * MiB + 5)
    assert not await store.exists("docs/a")
    await store.put("docs/a", chunks(data, 100_000))
    assert await store.exists("docs/a")
    assert await collect(store.get("docs/a")) == data
    await store.delete("docs/a")
    assert not await store.exists("docs/a")
    with pytest.raises(ObjectNotFound):
        await collect(store.get("docs/a"))


async def test_empty_object(store: ObjectStore) -> None:
    await store.put("empty", chunks(b""))
    assert await store.exists("empty")
    assert await collect(store.get("empty")) == b""


async def test_missing_object(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await collect(store.get("nope"))
    with pytest.raises(ObjectNotFound):
        await store.delete("nope")
    with pytest.raises(ObjectNotFound):
        await store.set_legal_hold("nope", True)


async def test_overwrite_replaces(store: ObjectStore) -> None:
    await store.put("k", chunks(b"first version"))
    await store.put("k", chunks(b"second"))
    assert await collect(store.get("k")) == b"second"
    if isinstance(store, S3Store):  # the replaced content must not linger as an old version
        assert len(list(store.client.list_objects(store.bucket, include_version=True))) == 1
    await store.delete("k")
    # Gone for good: on S3 no older version may resurface after the delete.
    assert not await store.exists("k")
    if isinstance(store, S3Store):
        versions = list(store.client.list_objects(store.bucket, include_version=True))
        assert versions == []


async def test_list_keys(store: ObjectStore) -> None:
    for key in ["a/1", "a/2", "a/sub/3", "b/1", "ab"]:
        await store.put(key, chunks(key.encode()))
    assert sorted([k async for k in store.list_keys()]) == ["a/1", "a/2", "a/sub/3", "ab", "b/1"]
    assert sorted([k async for k in store.list_keys("a/")]) == ["a/1", "a/2", "a/sub/3"]
    assert [k async for k in store.list_keys("c/")] == []


@pytest.mark.parametrize("fail_after", [0, 10, 3 * MiB])
async def test_put_is_atomic_when_source_fails(store: ObjectStore, fail_after: int) -> None:
    data = random_bytes(4 * MiB)
    with pytest.raises(ConnectionResetError):
        await store.put("new", failing(data, fail_after))
    assert not await store.exists("new")
    assert [k async for k in store.list_keys()] == []

    await store.put("old", chunks(b"previous content"))
    with pytest.raises(ConnectionResetError):
        await store.put("old", failing(data, fail_after))
    assert await collect(store.get("old")) == b"previous content"
    assert [k async for k in store.list_keys()] == ["old"]


async def test_put_is_atomic_when_cancelled(store: ObjectStore) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"partial"
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(store.put("k", stalls()))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await store.exists("k")


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
async def test_bad_keys_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, chunks(b"x"))
    with pytest.raises(InvalidKey):
        await collect(store.get(key))
    with pytest.raises(InvalidKey):
        await store.delete(key)
    with pytest.raises(InvalidKey):
        await store.exists(key)
    assert [k async for k in store.list_keys()] == []


async def test_ping(store: ObjectStore) -> None:
    """A usable store answers the probe, which leaves nothing behind and changes nothing."""
    await store.put("before", chunks(b"kept"))
    await store.ping()
    assert [k async for k in store.list_keys()] == ["before"]
    assert await collect(store.get("before")) == b"kept"


async def test_retention_refuses_delete_and_overwrite(store: ObjectStore) -> None:
    await store.put("kept", chunks(b"signed decision"), retain_until=in_a_day())
    with pytest.raises(RetentionError):
        await store.delete("kept")
    with pytest.raises(RetentionError):
        await store.put("kept", chunks(b"forged"))
    with pytest.raises(RetentionError):
        await store.put("kept", chunks(b"forged"), retain_until=in_a_day() + timedelta(days=1))
    assert await collect(store.get("kept")) == b"signed decision"


async def test_retention_expires(store: ObjectStore) -> None:
    await store.put("short", chunks(b"x"), retain_until=datetime.now(UTC) + timedelta(seconds=2))
    with pytest.raises(RetentionError):
        await store.delete("short")
    await asyncio.sleep(3.5)
    await store.put("short", chunks(b"y"))  # overwrite allowed after the date
    await store.delete("short")
    assert not await store.exists("short")


async def test_retention_date_validated(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.put("k", chunks(b"x"), retain_until=datetime(2099, 1, 1))
    with pytest.raises(ValueError, match="future"):
        await store.put("k", chunks(b"x"), retain_until=datetime.now(UTC) - timedelta(1))
    assert not await store.exists("k")


async def test_legal_hold(store: ObjectStore) -> None:
    await store.put("held", chunks(b"evidence"))
    await store.set_legal_hold("held", True)
    with pytest.raises(RetentionError):
        await store.delete("held")
    with pytest.raises(RetentionError):
        await store.put("held", chunks(b"other"))
    await store.set_legal_hold("held", False)
    await store.put("held", chunks(b"other"))
    await store.delete("held")
    assert not await store.exists("held")


async def test_lock_state_reports_retention_and_hold(store: ObjectStore) -> None:
    assert await store.lock_state("absent") == (None, False)
    await store.put("free", chunks(b"x"))
    assert await store.lock_state("free") == (None, False)
    until = datetime.now(UTC) + timedelta(days=3)
    await store.put("kept", chunks(b"x"), retain_until=until)
    retained, held = await store.lock_state("kept")
    assert retained is not None and abs((retained - until).total_seconds()) < 1 and not held
    await store.set_legal_hold("kept", True)
    assert (await store.lock_state("kept"))[1] is True
    await store.set_legal_hold("kept", False)
    assert (await store.lock_state("kept"))[1] is False


async def test_legal_hold_outlives_retention(store: ObjectStore) -> None:
    await store.put("k", chunks(b"x"), retain_until=datetime.now(UTC) + timedelta(seconds=2))
    await store.set_legal_hold("k", True)
    await asyncio.sleep(3.5)
    with pytest.raises(RetentionError):
        await store.delete("k")
    await store.set_legal_hold("k", False)
    await store.delete("k")


async def test_concurrent_puts_and_gets(store: ObjectStore) -> None:
    contents = {f"c/{i}": random_bytes(MiB + 1000 * i, seed=i) for i in range(8)}
    await asyncio.gather(*(store.put(key, chunks(data)) for key, data in contents.items()))
    read = await asyncio.gather(*(collect(store.get(key)) for key in contents))
    assert dict(zip(contents, read, strict=True)) == contents


async def test_modified_is_when_the_object_was_written(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)  # S3 Last-Modified has 1 s resolution
    await store.put("stamped", chunks(b"x"))
    when = await store.modified("stamped")
    assert when.tzinfo is not None
    assert before <= when <= datetime.now(UTC) + timedelta(seconds=2)
    with pytest.raises(ObjectNotFound):
        await store.modified("absent")
