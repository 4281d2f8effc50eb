"""Security headers on every response.

CSP forbids inline script and foreign origins (no CDN, no third-party requests); framing is
refused; authenticated pages must never be cached by a shared or browser cache, since a
jour worker's screen in a shared police-building office must not be recoverable with Back.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def build_csp(form_targets: str) -> str:
    """The Content-Security-Policy; `form_targets` adds the identity provider's origin."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'{form_targets}; frame-ancestors 'none'"
    )


def security_headers(app: ASGIApp, *, csp: str, hsts: bool) -> ASGIApp:
    """Wrap `app` so each HTTP response carries the security headers."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        cacheable = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Content-Security-Policy"] = csp
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
