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

What reads the address: the login-start limit (portal.account). The access log and the audit
log record no client address. URLs and cookie flags come from `JOURPOST_PUBLIC_URL`, so the
forwarded scheme changes nothing the portal sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    from litestar.types import ASGIApp


def behind_proxies(app: ASGIApp, trusted: tuple[str, ...]) -> ASGIApp:
    """`app` taking the client's address and scheme from the forwarded headers of `trusted`
    proxies (addresses or networks, validated by the settings); `app` itself when none."""
    if not trusted:
        return app
    return cast("ASGIApp", ProxyHeadersMiddleware(app, trusted_hosts=list(trusted)))  # type: ignore[arg-type]
