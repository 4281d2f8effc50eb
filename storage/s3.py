"""S3 object store through the `minio` client (production; tested against SeaweedFS).

minio is synchronous: every call runs in a worker thread of the store's own pool (so a hanging
S3 server can't occupy the event loop's default threads that the rest of the portal uses).

Failures are bounded: every HTTP request gets a connect and a read timeout (the read timeout is
the longest the server may stay silent, per socket read) and at most `max_attempts` attempts
(urllib3 retries connection errors, read timeouts on idempotent methods — GET, HEAD, PUT,
DELETE — and 500/502/503/504 answers, with a short backoff). A frozen or unreachable server
therefore fails one call within about `max_attempts × (connect + read timeout)` plus backoff,
raising `BackendUnavailable`.

Atomicity: `put` streams the chunks into a multipart upload (or one PUT when they fit in a
part), which S3 makes visible only when it is completed, after the last chunk; a source that
fails midway, a cancelled `put` or a failing part makes minio abort the multipart upload, so
nothing is stored. A portal killed mid-upload (SIGKILL, OOM, power) can't abort it: the
incomplete multipart upload stays, invisible to `list_keys`, holding no object but its parts'
space. `incomplete_uploads` lists them (S3 ListMultipartUploads) and `abort_upload` discards
one; `portal.sweep.sweep_uploads` (a periodic job and `jourpost storage sweep-uploads`) aborts
those older than a day. A lifecycle rule (AbortIncompleteMultipartUpload) is not relied on:
SeaweedFS 4.48 accepts and returns it, but acting on it was not shown (its lifecycle work runs
in separate admin/worker processes; docs/storage.md).

Retention (bucket created with `object_lock=True`): `retain_until` becomes an Object Lock
COMPLIANCE retain-until date, enforced by the server, which refuses to delete the locked version
before that date or under legal hold, even for the bucket's owner. Object lock implies
versioning, so this backend also keeps the S3 quirks from leaking out:
- `delete` removes every version by id (a plain DELETE would only add a delete marker and the
  "deleted" document would stay in the bucket); the server's refusal becomes `RetentionError`.
- `put` over an existing key first checks its lock (S3 would accept a new version on top of a
  locked one) and afterwards deletes the older versions, so an overwrite really replaces.
Without object lock the bucket is assumed unversioned and `retain_until` is refused.
"""

import asyncio
import concurrent.futures
import functools
import http.client
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Object
from minio.error import MinioException, S3Error
from minio.retention import Retention
from urllib3 import BaseHTTPResponse

from storage.errors import (
    BackendUnavailable,
    ObjectNotFound,
    RetentionError,
    StorageError,
)
from storage.keys import validate_key, validate_prefix
from storage.protocol import IncompleteUpload
from storage.retention import normalize_retain_until, now

READ_CHUNK = 1 << 20
"""Bytes per read from a GET response."""
PART_SIZE = 5 << 20
"""Multipart part size (S3's minimum)."""
UPLOADS = 2
"""Parts uploaded at once per `put` (minio's default is 3; on two cores 2 was as fast and holds a
part less): minio holds these, the part it is filling and a copy of it in memory, about
(UPLOADS + 2) × PART_SIZE = 20 MiB per upload."""
LIST_BATCH = 1000
"""Keys fetched per thread hop by `list_keys`."""
CONNECTIONS = 16
"""Pooled HTTP connections to S3, and worker threads running minio calls, per store."""
RETRY_BACKOFF = 0.2
"""urllib3 backoff factor between attempts (0 s, then 0.4 s, 0.8 s, ...)."""

_T = TypeVar("_T")
_MISSING = {"NoSuchKey", "NoSuchVersion"}


class S3Store:
    """`ObjectStore` over one S3 bucket."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        object_lock: bool = False,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.object_lock = object_lock
        self._threads = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="s3")
        # The health probe's own thread: hung uploads filling the pool must not make the probe
        # wait behind them (it would report the store down while it answers).
        self._probe_thread = ThreadPoolExecutor(1, thread_name_prefix="s3-probe")

    @classmethod
    def connect(
        cls,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = True,
        region: str | None = None,
        object_lock: bool = False,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> "S3Store":
        """Build the minio client with bounded timeouts and at most `max_attempts` per request."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=retry_policy(max_attempts),
            maxsize=CONNECTIONS,
        )
        client = Minio(
            endpoint, access_key, secret_key, secure=secure, region=region, http_client=http
        )
        return cls(client, bucket, object_lock=object_lock)

    def __repr__(self) -> str:
        # Never the client: its repr may carry credentials in future minio versions.
        return f"S3Store(bucket={self.bucket!r}, object_lock={self.object_lock})"

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing (with object lock if wanted); verify lock otherwise."""
        if not await self._run(self.client.bucket_exists, self.bucket):
            try:
                await self._run(self.client.make_bucket, self.bucket, object_lock=self.object_lock)
                return
            except StorageError as exc:
                # Another portal instance starting at the same moment may have won the race.
                if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        if self.object_lock:
            try:
                await self._run(self.client.get_object_lock_config, self.bucket)
            except StorageError as exc:
                # Object lock can only be chosen at creation; silently storing without it
                # would make every retention date a no-op.
                raise StorageError(f"bucket {self.bucket!r} has no object lock") from exc

    # -- ObjectStore ---------------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Stream into one request, or a multipart upload of 5 MiB parts, `UPLOADS` at once.

        Nothing is spooled: minio reads the chunks through `_ChunkReader` on its thread as it
        fills each part. The upload becomes visible only when minio completes it, after the
        last chunk; if the source fails, the upload is cancelled or a part fails, minio aborts
        the multipart upload and the key keeps what it held.
        """
        validate_key(key)
        retain_until = normalize_retain_until(retain_until)
        if retain_until is not None and not self.object_lock:
            raise StorageError("retain_until needs a bucket with object lock")
        await self._check_mutable(key)
        retention = Retention(COMPLIANCE, retain_until) if retain_until else None
        # Checked again after the last chunk, before minio completes the upload: the
        # streaming may have taken minutes.
        reader = _ChunkReader(asyncio.get_running_loop(), chunks, lambda: self._check_mutable(key))
        upload = asyncio.ensure_future(
            self._run(
                self.client.put_object,
                self.bucket,
                key,
                reader,
                -1,
                part_size=PART_SIZE,
                num_parallel_uploads=UPLOADS,
                retention=retention,
            )
        )
        try:
            try:
                result = await asyncio.shield(upload)
            except asyncio.CancelledError:
                # Make minio's read fail so it aborts the multipart upload; wait for it, so
                # nothing completes after we return.
                await reader.abort()
                await asyncio.wait([upload])
                if not upload.cancelled():
                    upload.exception()  # retrieved: the cancellation is what we report
                raise
            except _SourceFailed:
                raise reader.failure or StorageError("upload source failed") from None
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
        if self.object_lock:
            await self._delete_versions(key, keep=result.version_id, missing_ok=True)

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """Stream the GET response in chunks of up to 1 MiB."""
        validate_key(key)
        response = await self._run(self.client.get_object, self.bucket, key, key=key)
        try:
            while chunk := await self._run(response.read, READ_CHUNK):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def open_reader(self, key: str) -> "S3Reader":
        """The object's GET response as an `ObjectReader` (storage.protocol), its size the
        response's Content-Length; `ObjectNotFound` if absent. The caller closes it."""
        validate_key(key)
        response = await self._run(self.client.get_object, self.bucket, key, key=key)
        try:
            return S3Reader(response)
        except BaseException:
            response.close()
            response.release_conn()
            raise

    async def delete(self, key: str) -> None:
        """Delete every version; `RetentionError` if the server (or our check) refuses."""
        validate_key(key)
        if not self.object_lock:
            await self._run(self.client.stat_object, self.bucket, key, key=key)
            await self._run(self.client.remove_object, self.bucket, key, key=key)
            return
        await self._check_mutable(key)
        await self._delete_versions(key, keep=None, missing_ok=False)

    async def exists(self, key: str) -> bool:
        """HEAD the object."""
        validate_key(key)
        try:
            await self._run(self.client.stat_object, self.bucket, key, key=key)
        except ObjectNotFound:
            return False
        return True

    async def modified(self, key: str) -> datetime:
        """Last-Modified of the current version."""
        validate_key(key)
        stat: Object = await self._run(self.client.stat_object, self.bucket, key, key=key)
        if stat.last_modified is None:  # pragma: no cover - S3 always sends it
            raise StorageError(f"no Last-Modified for {key!r}")
        return stat.last_modified.astimezone(UTC)

    async def set_legal_hold(self, key: str, on: bool) -> None:
        """Set the S3 legal hold of the current version (needs object lock)."""
        validate_key(key)
        if not self.object_lock:
            raise StorageError("legal hold needs a bucket with object lock")
        hold = self.client.enable_object_legal_hold if on else self.client.disable_object_legal_hold
        await self._run(self.client.stat_object, self.bucket, key, key=key)
        await self._run(hold, self.bucket, key, key=key)

    async def ping(self) -> None:
        """A signed request that needs the server, the credentials and the bucket."""
        try:
            found = await self._run(
                self.client.bucket_exists, self.bucket, executor=self._probe_thread
            )
        except StorageError as exc:
            raise BackendUnavailable(f"S3 not usable: {exc}") from exc
        if not found:
            raise BackendUnavailable(f"bucket {self.bucket!r} does not exist")

    async def list_keys(self, prefix: str = "") -> AsyncGenerator[str, None]:
        """List the bucket page by page (the listing never sits in memory whole)."""
        validate_prefix(prefix)
        objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        while batch := await self._run(_take, objects, LIST_BATCH):
            for obj in batch:
                if obj.object_name is not None and not obj.is_dir:
                    yield obj.object_name

    async def incomplete_uploads(self) -> AsyncGenerator[IncompleteUpload, None]:
        """The bucket's multipart uploads not completed or aborted, `LIST_BATCH` per request."""
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            page = await self._run(
                self.client._list_multipart_uploads,
                self.bucket,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                max_uploads=LIST_BATCH,
            )
            for upload in page.uploads:
                if upload.object_name and upload.upload_id and upload.initiated_time:
                    yield IncompleteUpload(
                        upload.object_name, upload.initiated_time, upload.upload_id
                    )
            if not page.is_truncated:
                return
            key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        """Abort the multipart upload (its parts go); gone already is fine."""
        try:
            await self._run(
                self.client._abort_multipart_upload, self.bucket, upload.key, upload.upload_id
            )
        except StorageError as exc:
            if _code(exc) != "NoSuchUpload":
                raise

    # -- helpers -------------------------------------------------------------------------

    async def _run(
        self,
        fn: Callable[..., _T],
        *args: Any,
        key: str | None = None,
        executor: ThreadPoolExecutor | None = None,
        **kwargs: Any,
    ) -> _T:
        """Run a blocking minio call in a thread (the store's pool unless `executor` is given);
        translate its errors to ours."""
        loop = asyncio.get_running_loop()
        pool = executor or self._threads
        try:
            return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))
        except S3Error as exc:
            if exc.code in _MISSING and key is not None:
                raise ObjectNotFound(key) from exc
            if exc.code == "NoSuchBucket":
                raise BackendUnavailable(f"bucket {self.bucket!r} does not exist") from exc
            raise StorageError(f"S3 refused: {exc.code}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"S3 not reachable: {type(exc).__name__}") from exc

    async def lock_state(self, key: str) -> tuple[datetime | None, bool]:
        """(retain_until, legal_hold) of the current version; (None, False) without a lock."""
        if not self.object_lock:
            return None, False
        try:
            stat: Object = await self._run(self.client.stat_object, self.bucket, key, key=key)
        except ObjectNotFound:
            return None, False
        headers = stat.metadata or {}
        until = headers.get("x-amz-object-lock-retain-until-date")
        held = headers.get("x-amz-object-lock-legal-hold") == "ON"
        return (datetime.fromisoformat(until) if until else None), held

    async def _check_mutable(self, key: str) -> None:
        """Refuse (RetentionError) if the current version is locked; no-op without lock."""
        if not self.object_lock:
            return
        try:
            stat: Object = await self._run(self.client.stat_object, self.bucket, key, key=key)
        except ObjectNotFound:
            return
        headers = stat.metadata or {}
        if headers.get("x-amz-object-lock-legal-hold") == "ON":
            raise RetentionError(f"{key!r} is under legal hold")
        until = headers.get("x-amz-object-lock-retain-until-date")
        if until and datetime.fromisoformat(until) > now():
            raise RetentionError(f"{key!r} is retained until {until}")

    async def _delete_versions(self, key: str, *, keep: str | None, missing_ok: bool) -> None:
        listing = self.client.list_objects(
            self.bucket, prefix=key, recursive=True, include_version=True
        )
        found = [obj for obj in await self._run(_take, listing, None) if obj.object_name == key]
        if not missing_ok and all(obj.is_delete_marker for obj in found):
            raise ObjectNotFound(key)
        versions = [obj.version_id for obj in found if obj.version_id != keep]
        for version_id in versions:
            try:
                await self._run(
                    self.client.remove_object, self.bucket, key, version_id=version_id, key=key
                )
            except ObjectNotFound:
                continue
            except StorageError as exc:
                if _code(exc) == "AccessDenied":
                    raise RetentionError(f"{key!r} is locked (the server refused)") from exc
                raise


class S3Reader:
    """A GET response as an `ObjectReader` (storage.protocol).

    `read_exactly` reads straight into the caller's buffer from the response's underlying
    `http.client` stream: through urllib3's `read` each read is copied into a new `bytes`
    (and its `readinto` copies once more), and a sealed segment spanning two such reads had
    to be joined as well. S3 sends an object's bytes as they are stored, with a
    Content-Length and no content coding (urllib3 asks for `Accept-Encoding: identity`), so
    urllib3's decoding has nothing to do here. A response that ends before its Content-Length,
    a read timeout or a broken connection raises `BackendUnavailable`, as `get` does.
    """

    def __init__(self, response: BaseHTTPResponse) -> None:
        length = response.headers.get("Content-Length")
        raw = getattr(response, "_fp", None)
        if length is None or not length.isdigit():
            raise BackendUnavailable("S3 answered a GET without a Content-Length")
        if raw is None or not callable(getattr(raw, "readinto", None)):
            raise TypeError("urllib3's response no longer exposes its http.client stream")
        self.size = int(length)
        self._left = self.size
        self._response = response
        self._raw = raw

    def read_exactly(self, buffer: bytearray, length: int) -> memoryview:
        """The next `length` bytes of the body, read into the start of `buffer`."""
        if length > self._left:
            raise ValueError("read past the response's Content-Length")
        view = memoryview(buffer)[:length]
        done = 0
        try:
            while done < length:
                read = self._raw.readinto(view[done:])
                if not read:
                    raise BackendUnavailable("S3 response ended before its Content-Length")
                done += read
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise BackendUnavailable(f"S3 not reachable: {type(exc).__name__}") from exc
        self._left -= length
        return view

    def at_end(self) -> bool:
        """Whether the whole body was read (the response carries no more than that)."""
        return self._left == 0

    def close(self) -> None:
        """Close the response and hand its connection back (as `get` does)."""
        self._response.close()
        self._response.release_conn()


def retry_policy(max_attempts: int) -> urllib3.Retry:
    """At most `max_attempts` attempts per request (the first included), whatever went wrong.

    `total` caps every kind of retry together; `raise_on_status` turns an exhausted 5xx retry
    into an error (minio would otherwise see the last 503 and report it as an S3 answer).
    """
    return urllib3.Retry(
        total=max_attempts - 1,
        backoff_factor=RETRY_BACKOFF,
        status_forcelist=[500, 502, 503, 504],
        raise_on_status=True,
    )


class _SourceFailed(Exception):
    """Raised into minio's thread when the chunk source failed or the upload was cancelled."""


class _ChunkReader:
    """A file-like `read` over an async chunk stream, for minio's `put_object` on its thread.

    Each `read` fetches chunks on the event loop (`run_coroutine_threadsafe`) until it has the
    bytes asked for, and returns them as one `bytes` (minio joins what `read` returns with
    `+=`: returning whole parts keeps that to one copy). After the last chunk `at_end` runs on
    the loop; its exception fails the upload like a source error.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        chunks: AsyncIterable[bytes],
        at_end: Callable[[], Awaitable[None]],
    ) -> None:
        self._loop = loop
        self._chunks = aiter(chunks)
        self._at_end = at_end
        self._pieces: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._aborted = False
        self._step: asyncio.Task[Any] | None = None
        self.failure: BaseException | None = None
        """What the source (or `at_end`) raised, to be raised to the caller of `put`."""

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or self._size < size):
            chunk = self._call(self._next)
            if chunk is None:
                self._call(self._at_end)
                self._eof = True
            elif chunk:
                self._pieces.append(bytes(chunk) if not isinstance(chunk, bytes) else chunk)
                self._size += len(chunk)
        return self._take(self._size if size < 0 else min(size, self._size))

    async def abort(self) -> None:
        """Fail the current and every later `read` (from the loop); wait for the current one."""
        self._aborted = True
        if self._step is not None and not self._step.done():
            self._step.cancel()
            await asyncio.wait([self._step])

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T:
        async def step() -> _T:
            self._step = asyncio.current_task()
            if self._aborted:
                raise asyncio.CancelledError
            return await fn()

        try:
            return asyncio.run_coroutine_threadsafe(step(), self._loop).result()
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            raise _SourceFailed("upload cancelled") from None
        except Exception as exc:
            self.failure = exc
            raise _SourceFailed("upload source failed") from exc

    def _take(self, count: int) -> bytes:
        self._size -= count
        if self._pieces and len(self._pieces[0]) == count:
            return self._pieces.popleft()
        parts: list[bytes | memoryview] = []
        while count:
            piece = self._pieces.popleft()
            if len(piece) > count:
                view = memoryview(piece)
                parts.append(view[:count])
                self._pieces.appendleft(bytes(view[count:]))
                break
            parts.append(piece)
            count -= len(piece)
        return b"".join(parts)


def _code(exc: StorageError) -> str | None:
    """The S3 error code behind one of our errors, if any."""
    cause = exc.__cause__
    return cause.code if isinstance(cause, S3Error) else None


def _take(objects: Iterator[Object], count: int | None) -> list[Object]:
    batch: list[Object] = []
    for obj in objects:
        batch.append(obj)
        if len(batch) == count:
            break
    return batch
