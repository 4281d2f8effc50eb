"""Security headers on every response.

CSP forbids inline script and foreign origins (no CDN, no third-party requests); framing is
refused; authenticated pages must never be cached by a shared or browser cache, since a
jour worker's screen in a shared police-building office must not be recoverable with Back.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[bytes, bytes]


def build_csp(form_targets: str) -> str:
    """The Content-Security-Policy; `form_targets` adds the identity provider's origin."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'{form_targets}; frame-ancestors 'none'"
    )


_NO_STORE: Header = (b"cache-control", b"no-store")


class SecurityHeaders:
    """The security headers of every HTTP response, encoded once.

    Applied by the outermost middleware (portal.web.accesslog), not by a route middleware:
    Litestar's router answers unknown paths (404) and wrong methods (405) before any route
    middleware runs, and so do exception handlers outside a route; the outermost `send` is the
    one every response goes through, mounted apps (the development identity provider)
    included. A header the response already has under one of these names is replaced.
    """

    __slots__ = ("_always", "_names", "_names_static")

    def __init__(self, *, csp: str, hsts: bool) -> None:
        always: list[Header] = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            always.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self._always = tuple(always)
        self._names_static = frozenset(name for name, _ in always)
        self._names = self._names_static | {_NO_STORE[0]}

    def apply(self, headers: Iterable[Header], *, path: str, status: int) -> list[Header]:
        """`headers` with the security headers set; `Cache-Control: no-store` on everything but
        static files answered successfully."""
        static = status < 400 and path.startswith("/static/")
        names = self._names_static if static else self._names
        kept = [h for h in headers if h[0].lower() not in names]
        kept.extend(self._always)
        if not static:
            kept.append(_NO_STORE)
        return kept
