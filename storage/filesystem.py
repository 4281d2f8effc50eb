"""Filesystem object store: the embedded default (`jourpost demo`, single-host installs).

Layout under the root directory:

    objects/<key>   the object's bytes
    meta/<key>      JSON sidecar {"retain_until": ISO-8601 | null, "legal_hold": bool},
                    present only while the object has a retention date or a legal hold

Threats handled here:
- Path traversal: keys pass `validate_key` and the resolved path must stay inside the root,
  so a symlink planted inside the root can't lead a write or read outside it either.
- Torn writes: content goes to a temporary file in the target directory, is fsynced, renamed
  over the target (atomic on POSIX) and the directory fsynced, so after a crash or a failing
  source the key holds the old or the new content, never a prefix. A process killed mid-write
  leaves its temporary file (`.tmp-*`, never listed as a key): `incomplete_uploads` lists them
  and `abort_upload` deletes one (`portal.sweep.sweep_uploads`).
- Early deletion: delete and overwrite check the sidecar first and refuse while retained or
  held; an unreadable sidecar refuses too (fail closed). This is an application-level guard,
  not WORM media: whoever has shell access to the root can still delete files.

Retention checks and commits are serialised by one lock per store instance, so the backend is
for one process (the embedded portal); several portal instances need the S3 backend.
"""

import asyncio
import io
import json
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from storage.errors import (
    BackendUnavailable,
    IntegrityError,
    InvalidKey,
    ObjectNotFound,
    RetentionError,
)
from storage.keys import validate_key, validate_prefix
from storage.protocol import IncompleteUpload
from storage.retention import normalize_retain_until, now

READ_CHUNK = 1 << 20
"""Bytes read per chunk by `get`, and buffered before each write by `put`."""

_TEMP_PREFIX = ".tmp-"  # keys can't start with "." (see storage.keys), so no clash


class FilesystemStore:
    """`ObjectStore` over a local directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._meta.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------

    def _path(self, base: Path, key: str) -> Path:
        path = base.joinpath(*validate_key(key).split("/"))
        # resolve() follows symlinks: a link inside the root pointing outside is caught here.
        if not path.resolve().is_relative_to(base):
            raise InvalidKey(f"object key resolves outside the store: {key!r}")
        return path

    # -- ObjectStore ---------------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Write atomically; refuse if the existing object is retained or held."""

        async def fill(file: BinaryIO) -> None:
            buffer = bytearray()
            async for chunk in chunks:
                if len(chunk) >= READ_CHUNK:
                    # Large chunks (sealed segments) go out as they are, without a copy.
                    await asyncio.to_thread(_write, file, buffer, chunk)
                    buffer = bytearray()
                    continue
                buffer += chunk
                if len(buffer) >= READ_CHUNK:
                    await asyncio.to_thread(file.write, buffer)
                    buffer = bytearray()
            await asyncio.to_thread(file.write, buffer)

        await self.put_file(key, fill, retain_until=retain_until)

    async def put_file(
        self,
        key: str,
        fill: Callable[[BinaryIO], Awaitable[None]],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """`put` for a writer that wants the file: `await fill(file)` writes the whole content.

        `fill` gets the open temporary file (buffered) and must not block the event loop: large
        writes go through a thread. The same atomicity as `put`: if `fill` raises or is
        cancelled, the key keeps its old content.
        """
        target = self._path(self._objects, key)
        retain_until = normalize_retain_until(retain_until)
        # Fail before streaming a large upload into a key we would refuse anyway.
        await asyncio.to_thread(self._check_mutable, key)
        file, tmp = await asyncio.to_thread(_open_temp, target.parent)
        try:
            await fill(file)
            await asyncio.to_thread(_finish, file, b"")
            async with self._lock:
                await _run_to_completion(self._commit, key, tmp, target, retain_until)
        except BaseException:
            # Also on cancellation: never leave a partial temporary file behind.
            file.close()
            tmp.unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """Yield the object in chunks of up to 1 MiB."""
        file = await self.open_file(key)
        try:
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                yield chunk
        finally:
            file.close()

    async def open_file(self, key: str) -> io.BufferedReader:
        """The object's file, open for reading (the caller closes it); `ObjectNotFound`.

        Opened once: a concurrent overwrite renames a new inode in, this read stays whole.
        """
        path = self._path(self._objects, key)
        try:
            return await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    async def open_reader(self, key: str) -> "FileReader":
        """The object's file as an `ObjectReader` (storage.protocol), its size that of the inode
        opened; `ObjectNotFound` if absent. The caller closes it."""
        file = await self.open_file(key)
        try:
            size = (await asyncio.to_thread(os.fstat, file.fileno())).st_size
        except BaseException:
            file.close()
            raise
        return FileReader(file, size)

    async def delete(self, key: str) -> None:
        """Remove the object and its sidecar, unless retained or held."""
        path = self._path(self._objects, key)
        async with self._lock:
            await _run_to_completion(self._delete, key, path)

    async def exists(self, key: str) -> bool:
        """Whether the object file exists."""
        return await asyncio.to_thread(self._path(self._objects, key).is_file)

    async def modified(self, key: str) -> datetime:
        """The object file's modification time."""
        path = self._path(self._objects, key)
        try:
            stamp = (await asyncio.to_thread(path.stat)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        return datetime.fromtimestamp(stamp, UTC)

    async def set_legal_hold(self, key: str, on: bool) -> None:
        """Record the hold in the sidecar (kept or removed as needed)."""
        path = self._path(self._objects, key)
        async with self._lock:
            await _run_to_completion(self._set_legal_hold, key, path, on)

    async def lock_state(self, key: str) -> tuple[datetime | None, bool]:
        """(retain_until, legal_hold) from the sidecar; (None, False) without one."""
        return self._read_meta(key)

    async def ping(self) -> None:
        """Create and remove a probe file: proves the root is there and writable."""
        try:
            await asyncio.to_thread(_probe, self._objects)
        except OSError as exc:
            raise BackendUnavailable(f"storage root not writable: {exc.strerror}") from exc

    async def list_keys(self, prefix: str = "") -> AsyncGenerator[str, None]:
        """Walk the objects tree one directory per thread hop (memory bounded per directory)."""
        validate_prefix(prefix)
        walker = os.walk(self._objects)
        while (names := await asyncio.to_thread(_next_keys, walker, self._objects)) is not None:
            for name in names:
                if name.startswith(prefix):
                    yield name

    async def incomplete_uploads(self) -> AsyncGenerator[IncompleteUpload, None]:
        """Temporary files of `put`s (and sidecar writes) still running or left by a process
        killed mid-write: the `finally` that removes them never ran. Keys can't start with a
        dot, so no object is ever mistaken for one."""
        for found in await asyncio.to_thread(self._temporary_files):
            yield found

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        """Delete the temporary file (only a temporary file inside the root)."""
        path = self.root.joinpath(*upload.key.split("/"))
        if not path.name.startswith(_TEMP_PREFIX) or not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"not a temporary file of this store: {upload.key!r}")
        await asyncio.to_thread(path.unlink, missing_ok=True)

    # -- blocking helpers (run in a thread) ----------------------------------------------

    def _temporary_files(self) -> list[IncompleteUpload]:
        found = []
        for base in (self._objects, self._meta):
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    if not name.startswith(_TEMP_PREFIX):
                        continue
                    path = Path(dirpath) / name
                    try:
                        stamp = path.stat().st_mtime
                    except FileNotFoundError:
                        continue  # renamed into place or removed meanwhile
                    key = path.relative_to(self.root).as_posix()
                    found.append(IncompleteUpload(key, datetime.fromtimestamp(stamp, UTC)))
        return found

    def _read_meta(self, key: str) -> tuple[datetime | None, bool]:
        path = self._path(self._meta, key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, False
        try:
            meta = json.loads(raw)
            until = meta["retain_until"]
            return (datetime.fromisoformat(until) if until else None), bool(meta["legal_hold"])
        except (ValueError, KeyError, TypeError) as exc:
            # Fail closed: a damaged sidecar must not make a retained object deletable.
            raise IntegrityError(f"unreadable retention metadata for {key!r}") from exc

    def _check_mutable(self, key: str) -> None:
        retain_until, legal_hold = self._read_meta(key)
        if legal_hold:
            raise RetentionError(f"{key!r} is under legal hold")
        if retain_until is not None and retain_until > now():
            raise RetentionError(f"{key!r} is retained until {retain_until.isoformat()}")

    def _write_meta(self, key: str, retain_until: datetime | None, legal_hold: bool) -> None:
        path = self._path(self._meta, key)
        if retain_until is None and not legal_hold:
            if path.exists():
                path.unlink()
                _fsync_dir(path.parent)
            return
        meta = {
            "retain_until": retain_until.isoformat() if retain_until else None,
            "legal_hold": legal_hold,
        }
        file, tmp = _open_temp(path.parent)
        try:
            _finish(file, json.dumps(meta).encode())
            os.replace(tmp, path)
        except BaseException:
            file.close()
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def _commit(self, key: str, tmp: Path, target: Path, retain_until: datetime | None) -> None:
        self._check_mutable(key)  # again, under the lock: the state may have changed
        if target.is_dir():
            raise InvalidKey(f"object key is a prefix of other keys: {key!r}")
        # Sidecar first: a crash in between leaves the old object retained longer, never a
        # retained object without its sidecar.
        if retain_until is not None:
            self._write_meta(key, retain_until, legal_hold=False)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if retain_until is None:
            self._write_meta(key, None, legal_hold=False)  # drop an expired sidecar

    def _delete(self, key: str, path: Path) -> None:
        self._check_mutable(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        _fsync_dir(path.parent)
        self._write_meta(key, None, legal_hold=False)

    def _set_legal_hold(self, key: str, path: Path, on: bool) -> None:
        if not path.is_file():
            raise ObjectNotFound(key)
        retain_until, _ = self._read_meta(key)
        if retain_until is not None and retain_until <= now():
            retain_until = None
        self._write_meta(key, retain_until, legal_hold=on)


async def _run_to_completion(fn: Callable[..., None], *args: Any) -> None:
    """Run `fn` in a thread; if we are cancelled meanwhile, wait for it before re-raising.

    A thread can't be stopped: without this the lock would be released while a commit is
    still renaming files, and the next retention check could read a half-updated state.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _open_temp(directory: Path) -> tuple[BinaryIO, Path]:
    try:
        _makedirs(directory)
    except (FileExistsError, NotADirectoryError):
        raise InvalidKey("object key conflicts with an existing key") from None
    fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    return os.fdopen(fd, "wb"), Path(name)


def _probe(directory: Path) -> None:
    # No _makedirs here: a vanished root must fail the probe, not be silently recreated.
    fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    os.close(fd)
    os.unlink(name)


def _write(file: BinaryIO, *parts: bytes | bytearray) -> None:
    for part in parts:
        file.write(part)


def _finish(file: BinaryIO, tail: bytes | bytearray) -> None:
    with file:
        file.write(tail)
        file.flush()
        os.fsync(file.fileno())


def _makedirs(directory: Path) -> None:
    # Fsync each new directory's parent so the new entries survive a crash too.
    if directory.is_dir():
        return
    _makedirs(directory.parent)
    directory.mkdir(exist_ok=True)
    _fsync_dir(directory.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _next_keys(walker: Iterator[tuple[str, list[str], list[str]]], base: Path) -> list[str] | None:
    try:
        dirpath, dirnames, filenames = next(walker)
    except StopIteration:
        return None
    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    rel = Path(dirpath).relative_to(base).as_posix()
    prefix = "" if rel == "." else rel + "/"
    return sorted(prefix + f for f in filenames if not f.startswith("."))


class FileReader:
    """An open file as an `ObjectReader` (storage.protocol).

    `size` is taken when the file is opened. A file that turns out shorter while it is read
    raises `IntegrityError` (a ciphertext cut under the reader), and `at_end` tells whether it
    grew.
    """

    def __init__(self, file: io.BufferedReader, size: int) -> None:
        self.file = file
        self.size = size

    def read_exactly(self, buffer: bytearray, length: int) -> memoryview:
        """The next `length` bytes, read into the start of `buffer`."""
        view = memoryview(buffer)[:length]
        done = 0
        while done < length:
            read = self.file.readinto(view[done:])
            if not read:
                raise IntegrityError("ciphertext truncated while being read")
            done += read
        return view

    def at_end(self) -> bool:
        """Whether nothing follows what was read."""
        return not self.file.read(1)

    def close(self) -> None:
        """Close the file."""
        self.file.close()
