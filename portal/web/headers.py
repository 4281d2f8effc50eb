"""Security headers on every response.

CSP forbids inline script and foreign origins (no CDN, no third-party requests); framing is
refused; authenticated pages must never be cached by a shared or browser cache, since a
jour worker's screen in a shared police-building office must not be recoverable with Back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope


def build_csp(form_targets: str) -> str:
    """The Content-Security-Policy; `form_targets` adds the identity provider's origin."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'{form_targets}; frame-ancestors 'none'"
    )


def security_headers(*, csp: str, hsts: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook that adds the security headers to each HTTP response.

    It is an application-level hook, not a route middleware: Litestar's router answers unknown
    paths (404) and wrong methods (405) before any route middleware runs, and so do exception
    handlers outside a route; `before_send` wraps the one `send` every response goes through,
    mounted apps (the development identity provider) included.
    """

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["Content-Security-Policy"] = csp
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if hsts:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        static = str(scope.get("path", "")).startswith("/static/") and message["status"] < 400
        if not static:
            headers["Cache-Control"] = "no-store"

    return add_headers
