"""The client's address behind trusted reverse proxies (`JOURPOST_TRUSTED_PROXIES`).

uvicorn runs with `proxy_headers` off (portal.cli): its proxy handling would be configured in
the server, not in the app, so a portal run any other way (the tests' server, another ASGI
server) would behave differently. Instead the app wraps itself here, with uvicorn's own
`ProxyHeadersMiddleware` (read for uvicorn 0.54): only when the TCP peer is a trusted proxy
are X-Forwarded-For and X-Forwarded-Proto believed; the client is then the right-most address
of X-Forwarded-For that is not itself a trusted proxy (each proxy appends the address it saw,
so what the client wrote is on the left and never chosen while an untrusted address stands to
its right). When every address in the header is trusted the request came from a trusted host
and uvicorn takes the left-most. Addresses and networks (CIDR), IPv4 and IPv6, are matched as
addresses, not as text. With no trusted proxy nothing is wrapped: the client is the peer.

IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket sees of an IPv4 peer)
are matched as their IPv4 address, the peer's and each X-Forwarded-For hop's alike
(portal.clientip): uvicorn compares them as IPv6, so `127.0.0.1` would not match the peer
`::ffff:127.0.0.1` and every client would be the proxy again. The one hook is uvicorn's
`_TrustedHosts._compute_trust` (private; uvicorn is pinned in infra/constraints.txt and
tests/portal/test_trusted_proxies.py fails if the hook stops being called). The address put in
the scope is the header's text as uvicorn takes it; whoever keys by it canonicalises it too.

What reads the address: the login-start limit (portal.account). The access log and the audit
log record no client address. URLs and cookie flags come from `JOURPOST_PUBLIC_URL`, so the
forwarded scheme changes nothing the portal sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware, _TrustedHosts

from portal.clientip import canonical_address, canonical_entry

if TYPE_CHECKING:
    from litestar.types import ASGIApp


class _CanonicalTrustedHosts(_TrustedHosts):
    """uvicorn's trusted hosts, an address compared in its canonical form (IPv4-mapped as
    IPv4); entries are given canonical."""

    def _compute_trust(self, host: str) -> bool:
        ip = canonical_address(host)
        return super()._compute_trust(host if ip is None else str(ip))


def behind_proxies(app: ASGIApp, trusted: tuple[str, ...]) -> ASGIApp:
    """`app` taking the client's address and scheme from the forwarded headers of `trusted`
    proxies (addresses or networks, validated by the settings); `app` itself when none."""
    if not trusted:
        return app
    hosts = [canonical_entry(entry) for entry in trusted]
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=hosts)  # type: ignore[arg-type]
    middleware.trusted_hosts = _CanonicalTrustedHosts(hosts)
    return cast("ASGIApp", middleware)
