"""Filesystem-only behaviour: containment, temporary files, fail-closed sidecars, ping."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import BackendUnavailable, FilesystemStore, IntegrityError, InvalidKey
from tests.storage.helpers import chunks, collect, failing, random_bytes


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_symlink_escape_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    store = FilesystemStore(tmp_path / "store")
    (store.root / "objects" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        await store.put("link/x", chunks(b"x"))
    with pytest.raises(InvalidKey):
        await collect(store.get("link/secret"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


async def test_layout_and_no_temporary_files_left(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    await store.put("a/b", chunks(b"content"))
    with pytest.raises(ConnectionResetError):
        await store.put("a/c", failing(random_bytes(3 << 20), 2 << 20))
    assert files_under(tmp_path) == ["objects/a/b"]
    assert (tmp_path / "objects/a/b").read_bytes() == b"content"


async def test_key_conflicting_with_a_prefix(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    await store.put("a/b", chunks(b"x"))
    with pytest.raises(InvalidKey):
        await store.put("a", chunks(b"y"))
    await store.put("c", chunks(b"y"))
    with pytest.raises(InvalidKey):
        await store.put("c/d", chunks(b"z"))


async def test_damaged_sidecar_fails_closed(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    await store.put("k", chunks(b"x"))
    await store.set_legal_hold("k", True)
    sidecar = tmp_path / "meta" / "k"
    assert json.loads(sidecar.read_bytes())["legal_hold"] is True
    sidecar.write_bytes(b"{not json")
    with pytest.raises(IntegrityError):
        await store.delete("k")
    assert (tmp_path / "objects" / "k").read_bytes() == b"x"


async def test_sidecar_removed_with_the_object(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    await store.put("k", chunks(b"x"))
    await store.set_legal_hold("k", True)
    await store.set_legal_hold("k", False)
    assert not (tmp_path / "meta" / "k").exists()
    await store.delete("k")
    assert not (tmp_path / "objects" / "k").exists()


async def test_ping_fails_when_root_is_gone(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "root")
    await store.ping()
    (tmp_path / "root" / "objects").rename(tmp_path / "moved")
    with pytest.raises(BackendUnavailable):
        await store.ping()


async def test_upload_in_flight_is_invisible(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_source() -> AsyncIterator[bytes]:
        yield random_bytes(2 << 20)
        started.set()
        await release.wait()
        yield b"end"

    upload = asyncio.create_task(store.put("k", slow_source()))
    await asyncio.wait_for(started.wait(), 60)
    (in_flight,) = files_under(tmp_path / "objects")
    assert in_flight.startswith(".tmp-")
    assert not await store.exists("k")
    assert [key async for key in store.list_keys()] == []
    release.set()
    await asyncio.wait_for(upload, 60)
    assert [key async for key in store.list_keys()] == ["k"]
    assert files_under(tmp_path / "objects") == ["k"]
