"""Serve the development trust services (TSA/OCSP/CRL) with uvicorn on a free loopback port.

Runs uvicorn in a background thread of the test process (no subprocess to kill); `stop()` asks
it to exit and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn

from signing.pki import DevPki
from signing.trust_services import RequestObserver, create_trust_services_app


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningTrustServices:
    """A trust-services server running in a thread."""

    url: str
    """Base URL, e.g. http://127.0.0.1:41234 (TSA at /tsa, OCSP at /ocsp)."""
    server: uvicorn.Server
    thread: threading.Thread
    handled: list[tuple[str, float]] = field(default_factory=list)
    """(endpoint, seconds) for every request handled, in order."""

    @property
    def tsa_url(self) -> str:
        return f"{self.url}/tsa"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_trust_services(pki: DevPki, *, timeout: float = 15.0) -> RunningTrustServices:
    """Serve `pki`'s trust services at its `trust_services_url` (http://127.0.0.1:PORT).

    Choose the port with `free_port()` before creating the PKI: the certificates name it.
    """
    handled: list[tuple[str, float]] = []
    observer: RequestObserver = lambda endpoint, seconds: handled.append((endpoint, seconds))  # noqa: E731
    url = pki.trust_services_url
    port = int(url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        create_trust_services_app(pki, observer=observer),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"trust-services:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/crl/signing-ca.crl", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"trust services did not start on {url}")
        time.sleep(0.05)
    handled.clear()
    return RunningTrustServices(url=url, server=server, thread=thread, handled=handled)
