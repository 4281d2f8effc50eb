"""The client's address behind the reverse proxy (JOURPOST_TRUSTED_PROXIES, portal.web.forwarded),
over real HTTP against a running portal, seen through the login-start limit (30 a minute per
client address, counted in the database).

The test client connects from 127.0.0.1: it is "the proxy" when 127.0.0.1 is trusted and an
ordinary (possibly spoofing) client when it is not. Addresses are from the documentation ranges.
IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are matched and keyed as IPv4 (portal.clientip):
unit tests on the forms, the middleware and the limit's key, and a portal listening on :: with
dual stack, reached over IPv4 (its peers are ::ffff:127.0.0.x). The last test puts a real nginx
with the shipped proxy snippet (infra/deploy/nginx) in front, clients connecting to it from
different loopback addresses.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.account.service import LOGIN_START_LIMIT, LoginStartLimiter
from portal.clientip import canonical_address, canonical_network
from portal.settings import SettingsError, load_settings
from portal.web.forwarded import behind_proxies
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
def _portal(
    database_url: str, tmp_path: Path, trusted: tuple[str, ...], *, dual_stack: bool = False
) -> Iterator[str]:
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

    with serve(factory, dual_stack=dual_stack) as url:
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


@pytest.mark.parametrize(
    "entry",
    ["*", "10.0.0.5/8", "proxy.example.se", "10.0.0.0/33", "::ffff:10.0.0.5/120", "::ffff:1.2.3"],
)
def test_trusted_proxies_must_be_addresses_or_networks(entry: str) -> None:
    """A mistake must not start a portal that trusts nothing or everything unknowingly."""
    with pytest.raises(SettingsError, match="JOURPOST_TRUSTED_PROXIES"):
        load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": f"127.0.0.1,{entry}"})


def test_trusted_proxies_are_read_as_a_list() -> None:
    s = load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": "127.0.0.1, ::1,10.1.0.0/16"})
    assert s.trusted_proxies == ("127.0.0.1", "::1", "10.1.0.0/16")
    assert load_settings(BASE_ENV).trusted_proxies == ()


def test_ipv4_mapped_trusted_proxies_are_read_as_ipv4() -> None:
    """A mapped entry (as an admin may copy it from a dual-stack listener's log) is the IPv4
    address or network it maps; other entries keep their meaning, IPv6 written canonically."""
    raw = "::ffff:10.0.0.5, ::FFFF:7f00:1, ::ffff:10.1.0.0/112, ::ffff:0:0/96, 0:0::1, fd00::/8"
    s = load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": raw})
    assert s.trusted_proxies == (
        "10.0.0.5", "127.0.0.1", "10.1.0.0/16", "0.0.0.0/0", "::1", "fd00::/8",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("::FFFF:c633:6401", "198.51.100.1"),
        (" 198.51.100.1 ", "198.51.100.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("::198.51.100.1", "::c633:6401"),  # IPv4-compatible (deprecated) is not mapped
        ("64:ff9b::198.51.100.1", "64:ff9b::c633:6401"),  # NAT64 is an IPv6 client
    ],
)
def test_an_ipv4_mapped_address_is_its_ipv4_address(text: str, canonical: str) -> None:
    assert str(canonical_address(text)) == canonical


@pytest.mark.parametrize("text", ["", "unknown", "proxy.example.se", "198.51.100.1:443"])
def test_what_is_not_an_address_has_no_canonical_form(text: str) -> None:
    assert canonical_address(text) is None


@pytest.mark.parametrize(
    ("entry", "network"),
    [
        ("::ffff:10.0.0.5", "10.0.0.5/32"),
        ("::ffff:10.0.0.0/120", "10.0.0.0/24"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("::/0", "::/0"),  # contains the mapped range but stays IPv6: matches no IPv4 client
        ("2001:db8::/32", "2001:db8::/32"),
    ],
)
def test_an_ipv4_mapped_network_is_its_ipv4_network(entry: str, network: str) -> None:
    assert str(canonical_network(entry)) == network


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("::ffff:198.51.100.2", "198.51.100.2"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff:c633:6401", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ],
)
def test_the_login_limit_keys_an_ipv4_mapped_client_as_its_ipv4_address(
    address: str, key: str
) -> None:
    """As IPv6 every mapped address would fall into the one /64 ::/64 (with ::1): one client
    exhausting it would refuse every IPv4 client of a dual-stack listener."""
    assert LoginStartLimiter.key(address) == key


def _client_seen(
    trusted: tuple[str, ...], peer: str, forwarded_for: str | None
) -> tuple[str, int] | None:
    """The client the app sees behind `behind_proxies(trusted)` for one request from `peer`
    with this X-Forwarded-For (None: none)."""
    seen: list[tuple[str, int] | None] = []

    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        seen.append(scope["client"])

    headers = [] if forwarded_for is None else [(b"x-forwarded-for", forwarded_for.encode())]
    scope = {"type": "http", "client": (peer, 40000), "headers": headers, "scheme": "http"}

    async def nothing() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def ignore(message: object) -> None:
        return None

    asyncio.run(behind_proxies(app, trusted)(scope, nothing, ignore))
    (client,) = seen
    return client


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        # The mapped peer of a dual-stack socket is the trusted IPv4 proxy.
        (("127.0.0.1",), "::ffff:127.0.0.1", A, A),
        (("10.0.0.0/8",), "::ffff:10.1.2.3", A, A),
        # A mapped entry trusts the IPv4 peer and the mapped one.
        (("::ffff:127.0.0.1",), "127.0.0.1", A, A),
        (("::ffff:10.0.0.0/104",), "::ffff:10.1.2.3", A, A),
        # A mapped trusted hop is skipped like its IPv4 form: the client is left of it.
        (("127.0.0.1", "203.0.113.0/24"), "::ffff:127.0.0.1", f"{A}, ::ffff:{EDGE}", A),
        (("127.0.0.1", "203.0.113.0/24"), "127.0.0.1", f"{A}, [::ffff:{EDGE}]:443", A),
        # A mapped client is chosen as uvicorn takes it (the limit keys it as IPv4).
        (("127.0.0.1",), "::ffff:127.0.0.1", f"::ffff:{A}", f"::ffff:{A}"),
        # Untrusted peers stay untrusted in either form.
        (("127.0.0.1",), "::ffff:127.0.0.2", A, "::ffff:127.0.0.2"),
        (("127.0.0.1",), "::1", A, "::1"),
        (("::1",), "::ffff:127.0.0.1", A, "::ffff:127.0.0.1"),
        (("::/0",), "::ffff:127.0.0.1", A, "::ffff:127.0.0.1"),
        (("::/0",), "2001:db8::1", A, A),
        # Without a header the peer is the client.
        (("127.0.0.1",), "::ffff:127.0.0.1", None, "::ffff:127.0.0.1"),
    ],
)
def test_ipv4_mapped_peers_and_hops_match_as_ipv4(
    trusted: tuple[str, ...], peer: str, forwarded_for: str | None, client: str
) -> None:
    seen = _client_seen(trusted, peer, forwarded_for)
    assert seen is not None and seen[0] == client


def test_a_dual_stack_listener_believes_its_ipv4_proxy(database_url: str, tmp_path: Path) -> None:
    """The portal listening on :: (dual stack), 127.0.0.1 trusted, the proxy connecting over
    IPv4 (its peer address is ::ffff:127.0.0.1): X-Forwarded-For is believed, so client A
    exhausting its starts refuses A, not B nor the proxy; a mapped forwarded address counts as
    its IPv4 client, and two mapped clients do not share a bucket."""
    with _portal(database_url, tmp_path, ("127.0.0.1",), dual_stack=True) as url:
        _exhaust(url, f"::ffff:{A}")
        assert _start(url, A) == 429
        assert _start(url, f"::ffff:{A}") == 429
        assert _start(url, B) in (302, 303)
        assert _start(url, f"::ffff:{B}") in (302, 303)
        assert _start(url, f"::ffff:{C}") in (302, 303)
        assert _start(url, None) in (302, 303)  # the proxy itself


def test_a_dual_stack_listener_counts_ipv4_clients_apart(database_url: str, tmp_path: Path) -> None:
    """No proxy: two IPv4 clients of a dual-stack listener (peers ::ffff:127.0.0.2 and
    ::ffff:127.0.0.3) have a limit each, not one shared by every IPv4 client; a client
    connecting over IPv6 (::1) has its own as well."""
    with (
        _portal(database_url, tmp_path, (), dual_stack=True) as url,
        _from("127.0.0.2") as a,
        _from("127.0.0.3") as b,
    ):
        html = {"accept": "text/html"}
        for _ in range(LOGIN_START_LIMIT):
            assert a.get(f"{url}/auth/login", headers=html).status_code in (302, 303)
        assert a.get(f"{url}/auth/login", headers=html).status_code == 429
        assert b.get(f"{url}/auth/login", headers=html).status_code in (302, 303)
        v6 = url.replace("127.0.0.1", "[::1]")
        assert httpx.get(f"{v6}/auth/login", headers=html).status_code in (302, 303)


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
