"""Uploads left behind by a writer killed mid-`put` are listed and, once old, aborted.

A real subprocess streams an object into the store (a real SeaweedFS, and the filesystem),
from chunks or encrypted from a file as the portal stores an upload, and is SIGKILLed partway:
after S3 has a 5 MiB part of its multipart upload, after the filesystem has a temporary file,
so no `finally` runs. The upload is then listed by `incomplete_uploads`, no key shows it, and
`portal.sweep.sweep_uploads` with its clock moved a day on aborts it while a fresh upload
still in progress (a second writer, alive) is kept.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.sweep import UPLOAD_MAX_AGE, sweep_uploads
from storage import FilesystemStore, IncompleteUpload, ObjectStore, S3Store

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0
"""Seconds a step may take before the test gives up."""

_WRITER = """
import asyncio, base64, io, sys, time
from storage import EncryptedObjectStore, FilesystemStore, Keyring, S3Store

MiB = 1 << 20

class Stalling(io.RawIOBase):
    # An upload's file (12 MiB) whose reads stop for good after 6 MiB (a disk gone slow).
    pos = 0
    def readable(self): return True
    def seekable(self): return True
    def tell(self): return self.pos
    def seek(self, offset, whence=0):
        self.pos = {0: 0, 1: self.pos, 2: 12 * MiB}[whence] + offset
        return self.pos
    def readinto(self, buffer):
        if self.pos >= 6 * MiB:
            print("PARTWAY", flush=True)
            time.sleep(3600)  # killed here, mid-upload
        n = min(len(buffer), 6 * MiB - self.pos)
        buffer[:n] = b"x" * n
        self.pos += n
        return n

async def main() -> None:
    kind, where, key, source = sys.argv[1:5]
    if kind == "filesystem":
        store = FilesystemStore(where)
    else:
        endpoint, access, secret, bucket = where.split("|")
        store = S3Store.connect(endpoint, access, secret, bucket, secure=False, object_lock=True)

    async def chunks():
        for _ in range(6):  # 6 MiB: more than one 5 MiB part
            yield b"x" * MiB
        print("PARTWAY", flush=True)
        await asyncio.sleep(3600)  # killed here, mid-upload
        yield b""

    if source == "chunks":
        await store.put(key, chunks())
    else:  # as the portal stores an upload: encrypted, from its file
        keyring = Keyring.from_base64({"k": base64.b64encode(bytes(32)).decode()}, "k")
        await EncryptedObjectStore(store, keyring).put(key, Stalling())

asyncio.run(main())
"""


def _where(store: ObjectStore, request: pytest.FixtureRequest) -> tuple[str, str]:
    if isinstance(store, FilesystemStore):
        return "filesystem", str(store.root)
    assert isinstance(store, S3Store)
    s3 = request.getfixturevalue("seaweed")
    return "s3", f"{s3.endpoint}|{s3.access_key}|{s3.secret_key}|{store.bucket}"


@contextmanager
def _writer(
    store: ObjectStore, request: pytest.FixtureRequest, key: str, source: str = "chunks"
) -> Iterator[subprocess.Popen[str]]:
    """A process putting `key` (from chunks, or encrypted from a file), stopped partway (it
    printed PARTWAY); killed on exit."""
    kind, where = _where(store, request)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, kind, where, key, source],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "PARTWAY", "the writer never got partway"
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT)


async def _listed(store: ObjectStore) -> list[IncompleteUpload]:
    return [upload async for upload in store.incomplete_uploads()]


async def _until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


async def _until_listed(store: ObjectStore, key_part: str) -> IncompleteUpload:
    """The one incomplete upload whose key contains `key_part` (S3: the object key; the
    filesystem: the temporary file beside it), once listed."""
    deadline = time.monotonic() + WAIT
    while True:
        found = [u for u in await _listed(store) if key_part in u.key]
        if found:
            (upload,) = found
            return upload
        if time.monotonic() > deadline:
            raise AssertionError(f"no incomplete upload of {key_part} listed")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("source", ["chunks", "file"])
async def test_a_killed_upload_is_listed_and_aborted_once_old(
    store: ObjectStore, request: pytest.FixtureRequest, source: str
) -> None:
    """From chunks into the bare store, or encrypted from a file as the portal stores an
    upload (into the filesystem: four segments read, sealed and written per thread call)."""
    with _writer(store, request, "killed/file", source) as killed:
        old = await _until_listed(store, "killed/")  # listed while the writer lives
        os.kill(killed.pid, signal.SIGKILL)
    assert [k async for k in store.list_keys()] == []  # no object, only the leftover
    assert await _listed(store) == [old]

    # A second writer starts strictly later (S3 times have whole seconds) and stays alive.
    later = old.initiated + timedelta(seconds=1.5)
    await _until(lambda: datetime.now(UTC) >= later, "the clock did not move")
    with _writer(store, request, "fresh/file", source):
        fresh = await _until_listed(store, "fresh/")
        assert fresh.initiated > old.initiated

        # Nothing is old enough now; a day on (just short of the fresh one's day) the killed
        # one is, the fresh one is not.
        now = await sweep_uploads(store, now=datetime.now(UTC))
        assert (now.aborted, now.kept) == ((), 2)
        day_on = fresh.initiated + UPLOAD_MAX_AGE - timedelta(microseconds=1)
        dry = await sweep_uploads(store, now=day_on, dry_run=True)
        assert (dry.aborted, dry.kept) == ((old,), 1)
        assert len(await _listed(store)) == 2
        swept = await sweep_uploads(store, now=day_on)
        assert (swept.aborted, swept.kept) == ((old,), 1)
        assert await _listed(store) == [fresh]
    # The fresh writer was killed too on leaving; a later sweep takes it.
    assert (await sweep_uploads(store, now=fresh.initiated + UPLOAD_MAX_AGE)).aborted == (fresh,)
    assert await _listed(store) == []
    assert [k async for k in store.list_keys()] == []


async def test_aborting_refuses_anything_but_a_temporary_file(tmp_path: Path) -> None:
    from storage import InvalidKey
    from tests.storage.helpers import chunks

    store = FilesystemStore(tmp_path / "store")
    await store.put("attachments/kept", chunks(b"data"))
    for key in ("objects/attachments/kept", "../outside/.tmp-x", "objects/../../.tmp-x"):
        with pytest.raises(InvalidKey):
            await store.abort_upload(IncompleteUpload(key, datetime.now(UTC)))
    assert await store.exists("attachments/kept")
