"""What the signing-concurrency tests share (decisions and police requests): a store and a TSA
that hang until the test lets them go, a store that refuses, and bounded database reads.

The portal with ONE pooled connection they run against is the `one_connection` fixture
(tests/portal/conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from portal.db.engine import make_engine, make_sessionmaker
from storage import StorageError
from tests.portal.conftest import RunningPortal

WAIT = 60.0
"""Seconds any step may take before the test gives up (far above the normal fraction of a
second; a step that waits on a lock held by the blocked completion never gets there)."""

_T = TypeVar("_T")


class HangsAfterStoring:
    """The portal's object store, but `put` waits after storing until `go` is set (or, with
    `together`, until that many puts have stored: completions racing into the same moment)."""

    def __init__(self, real: Any, *, together: int = 1) -> None:
        self._real = real
        self.go = threading.Event()
        self.entered = threading.Event()
        self.barrier = threading.Barrier(together, timeout=WAIT)
        self.keys: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    async def put(self, key: str, chunks: object, **kw: object) -> object:
        stored = await self._real.put(key, chunks, **kw)
        self.keys.append(key)
        await asyncio.to_thread(self.barrier.wait)
        self.entered.set()
        if not await asyncio.to_thread(self.go.wait, WAIT):
            raise RuntimeError("the test never released the store")
        return stored


class Refuses:
    """The portal's object store, but `put` fails as S3 does when it is down (with `after`:
    it stores the file first, as when the connection drops after the upload went through)."""

    def __init__(self, real: Any, *, after: bool = False) -> None:
        self._real = real
        self._after = after
        self.keys: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    async def put(self, key: str, chunks: Any, **kw: object) -> object:
        if self._after:
            await self._real.put(key, chunks, **kw)
            self.keys.append(key)
        raise StorageError("the object store is down")


class HangingTsa:
    """A timestamp authority in front of the real one whose answers wait until `go` is set:
    a TSA that has taken the request and not yet answered. `url` is its address."""

    def __init__(self, real_url: str) -> None:
        self.real_url = real_url
        self.go = threading.Event()
        self.entered = threading.Event()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                tsa.entered.set()
                if not tsa.go.wait(WAIT):
                    self.send_error(504)
                    return
                answer = httpx.post(
                    tsa.real_url,
                    content=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=WAIT,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"

    @contextmanager
    def serving(self) -> Iterator[HangingTsa]:
        """Serve in a thread; on exit let every waiting request go and stop."""
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.go.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join(WAIT)


def run_db(portal: RunningPortal, work: Callable[[Any], Coroutine[Any, Any, _T]]) -> _T:
    """Run `work(session)` in a transaction on an engine of the test's own, bounded by WAIT."""

    async def run() -> _T:
        engine = make_engine(portal.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                return await asyncio.wait_for(work(db), WAIT)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def still_blocked(pending: Future[Any]) -> None:
    """The completion under test has not ended yet (so what was just checked ran during it)."""
    assert not pending.done(), "the completion ended before the check: it did not block"
