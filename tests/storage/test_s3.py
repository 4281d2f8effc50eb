"""S3-only behaviour, against a real SeaweedFS (never a mock: the lock is the server's job)."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.error import S3Error

from storage import BackendUnavailable, RetentionError, S3Store, StorageError
from storage.s3 import PART_SIZE
from tests.servers.seaweedfs import SeaweedFS
from tests.storage.helpers import MiB, chunks, collect, random_bytes, s3_store


async def test_server_enforces_compliance_lock(seaweed: SeaweedFS, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    await store.put("decision.pdf", chunks(b"signed"), retain_until=until)

    client = seaweed.client()
    retention = client.get_object_retention(store.bucket, "decision.pdf")
    assert retention is not None
    assert retention.mode == "COMPLIANCE"
    assert retention.retain_until_date == until
    # Bypass our own check: the server itself must refuse to delete the locked version.
    (version,) = client.list_objects(store.bucket, include_version=True)
    with pytest.raises(S3Error):
        client.remove_object(store.bucket, "decision.pdf", version_id=version.version_id)
    with pytest.raises(RetentionError):
        await store.delete("decision.pdf")
    assert await collect(store.get("decision.pdf")) == b"signed"


async def test_server_enforces_legal_hold(seaweed: SeaweedFS, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    await store.put("k", chunks(b"x"))
    await store.set_legal_hold("k", True)
    client = seaweed.client()
    assert client.is_object_legal_hold_enabled(store.bucket, "k")
    (version,) = client.list_objects(store.bucket, include_version=True)
    with pytest.raises(S3Error):
        client.remove_object(store.bucket, "k", version_id=version.version_id)


async def test_bucket_without_lock(seaweed: SeaweedFS, tmp_path: Path) -> None:
    plain = s3_store(seaweed, tmp_path, object_lock=False)
    await plain.ensure_bucket()
    with pytest.raises(StorageError, match="object lock"):
        await plain.put("k", chunks(b"x"), retain_until=datetime.now(UTC) + timedelta(1))
    with pytest.raises(StorageError, match="object lock"):
        await plain.set_legal_hold("k", True)
    await plain.put("k", chunks(b"x"))
    await plain.delete("k")
    assert not await plain.exists("k")
    # Asking for object lock on an existing bucket without it must fail, not be ignored.
    locked = S3Store(plain.client, plain.bucket, object_lock=True)
    with pytest.raises(StorageError, match="no object lock"):
        await locked.ensure_bucket()


async def test_ping_failures(seaweed: SeaweedFS, tmp_path: Path) -> None:
    missing = s3_store(seaweed, tmp_path)
    with pytest.raises(BackendUnavailable):
        await missing.ping()
    await missing.ensure_bucket()
    await missing.ping()

    wrong_secret = S3Store.connect(
        seaweed.endpoint, seaweed.access_key, "wrong", missing.bucket, secure=False
    )
    with pytest.raises(BackendUnavailable):
        await wrong_secret.ping()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = S3Store.connect(
        f"127.0.0.1:{closed_port}", "a", "b", missing.bucket, secure=False, read_timeout=5.0
    )
    with pytest.raises(BackendUnavailable):
        await unreachable.ping()


async def test_ensure_bucket_is_idempotent(seaweed: SeaweedFS, tmp_path: Path) -> None:
    first = s3_store(seaweed, tmp_path)
    await first.ensure_bucket()
    await first.ping()  # the bucket is there
    await first.put("kept", chunks(b"x"), retain_until=datetime.now(UTC) + timedelta(days=1))
    await first.ensure_bucket()  # again: neither fails nor empties the bucket
    assert [k async for k in first.list_keys()] == ["kept"]
    # Two instances starting together: both see no bucket, one creates it first. The race is
    # forced by making the loser's bucket_exists answer "no" (the creation is real).
    loser = S3Store(seaweed.client(), first.bucket, object_lock=True)
    loser.client.bucket_exists = lambda bucket_name: False  # type: ignore[method-assign]
    await loser.ensure_bucket()  # the "already owned" answer counts as success
    assert await collect(loser.get("kept")) == b"x"  # the same bucket, with object lock
    with pytest.raises(RetentionError):
        await loser.delete("kept")


# -- streamed multipart uploads (no spool since issue 16) -----------------------------------


async def incomplete_uploads(store: S3Store) -> list[object]:
    result = await asyncio.to_thread(store.client._list_multipart_uploads, store.bucket)
    return list(result.uploads)


async def parts_then(total: int, then: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    """`total` bytes in 1 MiB chunks (several multipart parts), then whatever `then` does."""
    for i in range(total // MiB):
        yield random_bytes(MiB, seed=i)
    await then()


async def test_source_failing_after_uploaded_parts(seaweed: SeaweedFS, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    await store.put("k", chunks(b"old"))

    async def fail() -> None:
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put("k", parts_then(3 * PART_SIZE, fail))
    assert await collect(store.get("k")) == b"old"
    assert await incomplete_uploads(store) == []


async def test_cancelled_during_multipart_upload(seaweed: SeaweedFS, tmp_path: Path) -> None:
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    stalled = asyncio.Event()

    async def stall() -> None:
        stalled.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(store.put("k", parts_then(3 * PART_SIZE, stall)))
    await asyncio.wait_for(stalled.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await store.exists("k")
    assert await incomplete_uploads(store) == []


async def test_legal_hold_set_while_streaming(seaweed: SeaweedFS, tmp_path: Path) -> None:
    """The lock is checked again after the last chunk, before the upload is completed."""
    store = s3_store(seaweed, tmp_path)
    await store.ensure_bucket()
    await store.put("k", chunks(b"old"))

    async def hold() -> None:
        await store.set_legal_hold("k", True)

    with pytest.raises(RetentionError):
        await store.put("k", parts_then(2 * PART_SIZE, hold))
    assert await collect(store.get("k")) == b"old"
    assert await incomplete_uploads(store) == []
    versions = store.client.list_objects(store.bucket, include_version=True)
    assert len(list(versions)) == 1
