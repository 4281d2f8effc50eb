"""Serve a portal app with uvicorn on a free loopback port, in a thread, for real HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.servers.net import free_port


@contextmanager
def serve(
    app_factory: Callable[[int], Any],
    *,
    timeout: float = 20.0,
    port: int | None = None,
    dual_stack: bool = False,
) -> Iterator[str]:
    """Build the app for a (free) port, serve it, yield its base URL, stop it afterwards.

    `dual_stack`: listen on `::` with IPV6_V6ONLY off, so IPv4 clients (the base URL is still
    http://127.0.0.1:port) arrive as IPv4-mapped addresses (::ffff:127.0.0.1), as on a socket
    gunicorn or systemd hands over. uvicorn binding `::` itself would be IPv6-only (asyncio
    sets IPV6_V6ONLY), so the socket is bound here and given to the server."""
    sockets: list[socket.socket] | None = None
    if dual_stack:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port or 0))
        sock.listen(128)
        sockets = [sock]
        port = int(sock.getsockname()[1])
    port = port or free_port()
    app = app_factory(port)
    # proxy_headers off as `jourpost serve` runs it (portal.cli): uvicorn's default would believe
    # X-Forwarded-For from 127.0.0.1, i.e. from every test client (portal.web.forwarded).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on",
        proxy_headers=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": sockets}, name=f"portal-{port}", daemon=True
    )
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
        for sock in sockets or ():
            sock.close()
