"""Prometheus metrics of one portal instance, served at /metrics behind a bearer token.

Each app has its own `CollectorRegistry` (tests build many apps in one process). Labels carry
only bounded, non-personal values: HTTP method, route template, status, job name, store
operation. Never an id, a path with values, a user or a query string.

    jourpost_http_requests_total{method,route,status}        requests answered
    jourpost_http_request_duration_seconds{method,route}     time to answer (histogram)
    jourpost_outbox_pending                                  unsent notification e-mails
    jourpost_outbox_oldest_pending_age_seconds               age of the oldest unsent one
    jourpost_job_runs_total{job}                             periodic job rounds run here
    jourpost_job_failures_total{job}                         ... of which failed
    jourpost_job_skipped_total{job}                          rounds left to another instance
    jourpost_job_last_success_timestamp_seconds{job}         when the job last succeeded here
    jourpost_signing_attempts_total                          signature completions tried
    jourpost_signing_successes_total                         ... that stored a signed decision
    jourpost_signing_failures_total                          ... that failed
    jourpost_object_store_errors_total{operation}            object-store calls that failed

The outbox gauges are read from the database at scrape time, bounded by OUTBOX_QUERY_TIMEOUT;
when the query fails they are NaN (and the failure is logged by type).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import SkipValidation
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.db.base import utcnow
from portal.notify.models import OutboxMail
from portal.settings import Settings
from storage import ObjectStore
from storage.errors import IntegrityError, ObjectNotFound, RetentionError
from storage.protocol import (
    FileObjectStore,
    ObjectReader,
    ReaderObjectStore,
    file_store,
    reader_store,
)

log = logging.getLogger("jourpost.metrics")

OUTBOX_QUERY_TIMEOUT = 2.0
"""Seconds the outbox query may take during a scrape."""

T = TypeVar("T")


class Metrics:
    """The registry and metric families of one instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "jourpost_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "jourpost_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "jourpost_outbox_pending", "Notification e-mails not yet sent.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "jourpost_outbox_oldest_pending_age_seconds",
            "Age of the oldest notification e-mail not yet sent (0 when none).",
            registry=r,
        )
        self.job_runs = Counter(
            "jourpost_job_runs", "Periodic job rounds run by this instance.", ["job"], registry=r
        )
        self.job_failures = Counter(
            "jourpost_job_failures", "Periodic job rounds that failed.", ["job"], registry=r
        )
        self.job_skipped = Counter(
            "jourpost_job_skipped",
            "Rounds skipped: another instance held the job's lock.",
            ["job"],
            registry=r,
        )
        self.job_last_success = Gauge(
            "jourpost_job_last_success_timestamp_seconds",
            "Unix time of the job's last successful round in this instance.",
            ["job"],
            registry=r,
        )
        self.signing_attempts = Counter(
            "jourpost_signing_attempts", "Signature completions tried.", registry=r
        )
        self.signing_successes = Counter(
            "jourpost_signing_successes", "Signature completions that succeeded.", registry=r
        )
        self.signing_failures = Counter(
            "jourpost_signing_failures", "Signature completions that failed.", registry=r
        )
        self.store_errors = Counter(
            "jourpost_object_store_errors",
            "Object-store calls that failed, by operation.",
            ["operation"],
            registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    async def track_signing(self, attempt: Awaitable[T]) -> T:
        """Await a signature completion, counting the attempt and its outcome."""
        self.signing_attempts.inc()
        try:
            result = await attempt
        except BaseException:
            self.signing_failures.inc()
            raise
        self.signing_successes.inc()
        return result

    async def refresh_outbox(self, maker: async_sessionmaker[AsyncSession]) -> None:
        """Set the outbox gauges from the database (NaN when it can't be read in time)."""
        try:
            pending, oldest = await asyncio.wait_for(_outbox_state(maker), OUTBOX_QUERY_TIMEOUT)
        except Exception as exc:  # a scrape must still answer while the database is down
            log.warning("outbox metrics unavailable: %s", type(exc).__name__)
            self.outbox_pending.set(math.nan)
            self.outbox_oldest_age.set(math.nan)
            return
        self.outbox_pending.set(pending)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        self.outbox_oldest_age.set(max(age, 0.0))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


async def _outbox_state(maker: async_sessionmaker[AsyncSession]) -> tuple[int, datetime | None]:
    async with maker() as db:
        row = (
            await db.execute(
                select(func.count(OutboxMail.id), func.min(OutboxMail.created_at)).where(
                    OutboxMail.sent_at.is_(None)
                )
            )
        ).one()
    return int(row[0]), row[1]


class InstrumentedStore:
    """An object store (storage.ObjectStore) that counts failed calls by operation.

    "Not found" and retention refusals are answers, not failures, and are not counted.
    Other attributes (e.g. S3Store.ensure_bucket) pass through to the wrapped store.
    """

    def __init__(self, inner: ObjectStore, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def __repr__(self) -> str:
        return f"InstrumentedStore({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (ObjectNotFound, RetentionError):
            raise
        except Exception:
            self.metrics.store_errors.labels(operation).inc()
            raise

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, retain_until: datetime | None = None
    ) -> None:
        """Store `chunks` under `key` (see storage.ObjectStore.put)."""
        await self._call("put", lambda: self.inner.put(key, chunks, retain_until=retain_until))

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """Yield the object's bytes (see storage.ObjectStore.get)."""
        try:
            async with contextlib.aclosing(self.inner.get(key)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except (ObjectNotFound, RetentionError, GeneratorExit):
            raise
        except Exception:
            self.metrics.store_errors.labels("get").inc()
            raise

    async def delete(self, key: str) -> None:
        """Remove the object (see storage.ObjectStore.delete)."""
        await self._call("delete", lambda: self.inner.delete(key))

    async def exists(self, key: str) -> bool:
        """Whether `key` is stored."""
        result: bool = await self._call("exists", lambda: self.inner.exists(key))
        return result

    async def modified(self, key: str) -> datetime:
        """When the object was last written."""
        result: datetime = await self._call("modified", lambda: self.inner.modified(key))
        return result

    async def set_legal_hold(self, key: str, on: bool) -> None:
        """Put or lift a legal hold."""
        await self._call("set_legal_hold", lambda: self.inner.set_legal_hold(key, on))

    async def lock_state(self, key: str) -> tuple[datetime | None, bool]:
        """(retain_until, legal_hold) of the object."""
        result: tuple[datetime | None, bool] = await self._call(
            "lock_state", lambda: self.inner.lock_state(key)
        )
        return result

    async def ping(self) -> None:
        """Raise unless the store can be used."""
        await self._call("ping", lambda: self.inner.ping())

    async def list_keys(self, prefix: str = "") -> AsyncGenerator[str, None]:
        """Yield every key starting with `prefix`."""
        try:
            async with contextlib.aclosing(self.inner.list_keys(prefix)) as keys:
                async for key in keys:
                    yield key
        except GeneratorExit:
            raise
        except Exception:
            self.metrics.store_errors.labels("list_keys").inc()
            raise


class InstrumentedReaderStore(InstrumentedStore):
    """`InstrumentedStore` over a store that opens readers (the S3 backend).

    It offers `open_reader` itself, for the reason `InstrumentedFileStore` offers the file
    methods. A failed `open_reader` counts as a failed get, and so does a read of the opened
    object that fails later (over S3 that is a broken or silent connection, which `get`
    counted too).
    """

    inner: ReaderObjectStore

    async def open_reader(self, key: str) -> ObjectReader:
        """The object, open for reading (see storage.ReaderObjectStore.open_reader)."""
        reader: ObjectReader = await self._call("get", lambda: self.inner.open_reader(key))
        return _CountedReader(reader, self.metrics)


class _CountedReader:
    """An `ObjectReader` whose failed reads are counted as failed gets."""

    def __init__(self, inner: ObjectReader, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.size = inner.size

    def read_exactly(self, buffer: bytearray, length: int) -> memoryview:
        try:
            return self.inner.read_exactly(buffer, length)
        except IntegrityError:  # the content is wrong (a file cut under the reader), not the store
            raise
        except Exception:
            self.metrics.store_errors.labels("get").inc()
            raise

    def at_end(self) -> bool:
        return self.inner.at_end()

    def close(self) -> None:
        self.inner.close()


class InstrumentedFileStore(InstrumentedReaderStore):
    """`InstrumentedStore` over a store that hands out files (the filesystem backend).

    It offers the file methods itself, so `EncryptedObjectStore` keeps the file fast path
    (`storage.protocol.file_store` looks them up on the class: forwarding them through
    `__getattr__` would silently turn it off). A failed `put_file` counts as a failed put,
    a failed `open_file` or `open_reader` as a failed get, and so does a read of an opened
    reader that fails later (a local disk's EIO).
    """

    inner: FileObjectStore

    async def put_file(
        self,
        key: str,
        fill: Callable[[BinaryIO], Awaitable[None]],
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Store what `fill` writes (see storage.FileObjectStore.put_file)."""
        await self._call("put", lambda: self.inner.put_file(key, fill, retain_until=retain_until))

    async def open_file(self, key: str) -> io.BufferedReader:
        """The object's file (see storage.FileObjectStore.open_file)."""
        result: io.BufferedReader = await self._call("get", lambda: self.inner.open_file(key))
        return result


def instrumented(store: ObjectStore, metrics: Metrics) -> InstrumentedStore:
    """`store` wrapped to count its failures, keeping its file methods or its readers if it
    has them."""
    files = file_store(store)
    if files is not None:
        return InstrumentedFileStore(files, metrics)
    readers = reader_store(store)
    if readers is not None:
        return InstrumentedReaderStore(readers, metrics)
    return InstrumentedStore(store, metrics)


def _bearer_matches(header: str | None, token: str) -> bool:
    """Constant-time comparison of an Authorization header with `Bearer <token>`."""
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode(), expected)


def _unauthorized() -> Response[Any]:
    """401 as a problem detail, with the challenge a scraper expects."""
    return Response(
        {
            "type": "about:blank",
            "title": "Åtkomst nekad",
            "status": 401,
            "detail": "Mätvärdena kräver en giltig bearer-token.",
        },
        status_code=401,
        media_type="application/problem+json",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


class MetricsController(Controller):
    """GET /metrics: the Prometheus exposition, for a scraper holding the metrics token."""

    path = "/metrics"
    include_in_schema = False

    @get("/")
    async def metrics(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[SkipValidation[Settings]],
        sessions: NamedDependency[SkipValidation[async_sessionmaker[AsyncSession]]],
        metrics: NamedDependency[SkipValidation[Metrics]],
    ) -> Response[Any]:
        """404 when no token is configured, 401 without the right bearer token; no session."""
        token = settings.metrics_token
        if not token:
            raise NotFoundException()
        if not _bearer_matches(request.headers.get("authorization"), token):
            return _unauthorized()
        await metrics.refresh_outbox(sessions)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
