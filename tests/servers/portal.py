"""Serve a portal app with uvicorn on a free loopback port, in a thread, for real HTTP tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.servers.net import free_port


@contextmanager
def serve(
    app_factory: Callable[[int], Any], *, timeout: float = 20.0, port: int | None = None
) -> Iterator[str]:
    """Build the app for a (free) port, serve it, yield its base URL, stop it afterwards."""
    port = port or free_port()
    app = app_factory(port)
    # proxy_headers off as `jourpost serve` runs it (portal.cli): uvicorn's default would believe
    # X-Forwarded-For from 127.0.0.1, i.e. from every test client (portal.web.forwarded).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on",
        proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"portal-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"portal did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
