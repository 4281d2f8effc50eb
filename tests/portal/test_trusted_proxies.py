"""The client's address behind the reverse proxy (JOURPOST_TRUSTED_PROXIES, portal.web.forwarded),
over real HTTP against a running portal, seen through the login-start limit (30 a minute per
client address, counted in the database).

The test client connects from 127.0.0.1: it is "the proxy" when 127.0.0.1 is trusted and an
ordinary (possibly spoofing) client when it is not. Addresses are from the documentation ranges.
The last test puts a real nginx with the shipped proxy snippet (infra/deploy/nginx) in front,
clients connecting to it from different loopback addresses.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from portal.account.service import LOGIN_START_LIMIT
from portal.settings import SettingsError, load_settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database
from tests.portal.test_settings import BASE_ENV
from tests.servers.net import free_port
from tests.servers.portal import serve

ROOT = Path(__file__).resolve().parents[2]

A, B, C = "198.51.100.1", "198.51.100.2", "198.51.100.9"
"""Clients behind the proxy."""
EDGE = "203.0.113.5"
"""A second, trusted proxy hop (a load balancer in front of nginx) in the multi-hop test."""


@contextmanager
def _portal(database_url: str, tmp_path: Path, trusted: tuple[str, ...]) -> Iterator[str]:
    from portal.app import create_app

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path,
            database_url,
            public_url=f"http://127.0.0.1:{port}",
            trusted_proxies=trusted,
            run_periodic_jobs=False,
        )
        asyncio.run(prepare_database(settings))
        return create_app(settings)

    with serve(factory) as url:
        yield url


def _start(url: str, forwarded_for: str | None) -> int:
    """One login start, with this X-Forwarded-For (None: none); the status code."""
    headers = {"accept": "text/html"}
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for
    return httpx.get(f"{url}/auth/login", headers=headers).status_code


def _exhaust(url: str, forwarded_for: str) -> None:
    for _ in range(LOGIN_START_LIMIT):
        assert _start(url, forwarded_for) in (302, 303)


@pytest.mark.parametrize("trusted", [(), ("192.0.2.1",)], ids=["none", "another-address"])
def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(
    database_url: str, tmp_path: Path, trusted: tuple[str, ...]
) -> None:
    """Spoofing X-Forwarded-For gains nothing: every start counts against the peer itself."""
    with _portal(database_url, tmp_path, trusted) as url:
        _exhaust(url, A)
        assert _start(url, B) == 429
        assert _start(url, None) == 429


def test_behind_the_trusted_proxy_the_limit_is_per_forwarded_client(
    database_url: str, tmp_path: Path
) -> None:
    """Client A exhausting its 30 starts refuses A, not client B nor the proxy's own address."""
    with _portal(database_url, tmp_path, ("127.0.0.1",)) as url:
        _exhaust(url, A)
        assert _start(url, A) == 429
        assert _start(url, B) in (302, 303)
        assert _start(url, None) in (302, 303)  # no header: the peer (the proxy) itself


def test_a_multi_hop_header_takes_the_right_most_untrusted_address(
    database_url: str, tmp_path: Path
) -> None:
    """Two trusted hops (a network and an address): the client is the right-most address that
    is not a trusted proxy; what the client put on the left of the header is never chosen."""
    with _portal(database_url, tmp_path, ("127.0.0.1", "203.0.113.0/24")) as url:
        _exhaust(url, f"{A}, {EDGE}")
        # A forges a fresh address on the left: still A (and refused).
        assert _start(url, f"{C}, {A}, {EDGE}") == 429
        assert _start(url, f"{B}, {C}, {A}, {EDGE}") == 429
        # C forging A on the left is C (allowed), not A.
        assert _start(url, f"{A}, {C}, {EDGE}") in (302, 303)
        # A's address as the only untrusted one however it arrives (the edge hop omitted).
        assert _start(url, A) == 429


@pytest.mark.parametrize("entry", ["*", "10.0.0.5/8", "proxy.example.se", "10.0.0.0/33"])
def test_trusted_proxies_must_be_addresses_or_networks(entry: str) -> None:
    """A mistake must not start a portal that trusts nothing or everything unknowingly."""
    with pytest.raises(SettingsError, match="JOURPOST_TRUSTED_PROXIES"):
        load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": f"127.0.0.1,{entry}"})


def test_trusted_proxies_are_read_as_a_list() -> None:
    s = load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": "127.0.0.1, ::1,10.1.0.0/16"})
    assert s.trusted_proxies == ("127.0.0.1", "::1", "10.1.0.0/16")
    assert load_settings(BASE_ENV).trusted_proxies == ()


@contextmanager
def _nginx(upstream: str, prefix: Path) -> Iterator[str]:
    """A real nginx on a free loopback port passing to `upstream` (host:port) with the shipped
    proxy settings (infra/deploy/nginx/jourpost-proxy.conf); its base URL."""
    port = free_port()
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True)
    temp = "".join(
        f"  {kind}_temp_path {prefix}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}"
        f"  upstream jourpost {{ server {upstream}; keepalive 4; }}\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n"
        f"      include {ROOT}/infra/deploy/nginx/jourpost-proxy.conf;\n"
        "      proxy_pass http://jourpost;\n    }\n  }\n}\n"
    )
    nginx = subprocess.Popen(
        ["nginx", "-e", "stderr", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        nginx.terminate()
        nginx.wait(20)


def _from(local_address: str) -> httpx.Client:
    """A client whose connections come from this loopback address."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=local_address))


def test_through_the_shipped_nginx_proxy_the_limit_is_per_client(
    database_url: str, tmp_path: Path
) -> None:
    """nginx sets X-Forwarded-For to the peer it saw (a client's own header dropped): client A
    (127.0.0.2) exhausting its 30 starts, even when claiming to be someone else, refuses A,
    not client B (127.0.0.3)."""
    (tmp_path / "portal").mkdir()
    with (
        _portal(database_url, tmp_path / "portal", ("127.0.0.1",)) as url,
        _nginx(url.removeprefix("http://"), tmp_path / "nginx") as proxied,
        _from("127.0.0.2") as a,
        _from("127.0.0.3") as b,
    ):
        html = {"accept": "text/html"}
        for i in range(LOGIN_START_LIMIT):
            spoof = {"x-forwarded-for": f"198.51.100.{i + 1}"}  # a new address every time
            assert a.get(f"{proxied}/auth/login", headers=html | spoof).status_code in (302, 303)
        assert a.get(f"{proxied}/auth/login", headers=html).status_code == 429
        assert b.get(f"{proxied}/auth/login", headers=html).status_code in (302, 303)
        as_a = b.get(f"{proxied}/auth/login", headers=html | {"x-forwarded-for": "127.0.0.2"})
        assert as_a.status_code in (302, 303)  # B claiming to be A is still B
