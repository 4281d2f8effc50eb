"""The access log (logger `jourpost.access`) and the request metrics: one line per request.

A line holds the method, the route template (`/decisions/{decision_id:uuid}`, never the raw
path or the query string: both can carry a personnummer or a name), the status, the duration
and a request id. No client address, no user. The request id is generated here (a client's
X-Request-ID is not trusted: it could carry anything) and returned in the X-Request-ID header;
every log line written while the request is served carries it (portal.logs).

Installed around Litestar's own handler (`app.asgi_handler`), so router-made 404/405 answers
are logged too, with the route `<unmatched>`. The same wrapper sets the security headers
(portal.web.headers) on every response: one layer and one header rewrite per request instead of
two (issue 16: the start page's per-request cost).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from portal.logs import request_id

if TYPE_CHECKING:
    from portal.metrics import Metrics
    from portal.web.headers import SecurityHeaders

log = logging.getLogger("jourpost.access")

HEADER = b"x-request-id"
UNMATCHED_ROUTE = "<unmatched>"
"""The route of requests no route matched (scanners, typos): never their path."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def new_request_id() -> str:
    """A fresh random request id (16 hex digits)."""
    return secrets.token_hex(8)


def route_of(scope: Scope) -> str:
    """The matched route's template, `<mount>/*` for a mounted app (the dev IdP, static files),
    or UNMATCHED_ROUTE."""
    template = scope.get("path_template")
    if isinstance(template, str) and template:
        return template
    handler = scope.get("route_handler")
    if handler is not None and getattr(handler, "is_mount", False) and handler.paths:
        return f"{sorted(handler.paths)[0].rstrip('/')}/*"
    return UNMATCHED_ROUTE


def access_log(
    app: ASGIApp, metrics: Metrics | None = None, security: SecurityHeaders | None = None
) -> ASGIApp:
    """Wrap `app`: log each HTTP request, count it in `metrics`, add the X-Request-ID header
    and the `security` headers."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = new_request_id()
        token = request_id.set(rid)
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                if security is not None:
                    headers = security.apply(headers, path=scope["path"], status=status)
                else:
                    headers = list(headers)
                headers.append((HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            _record(scope, status, seconds, metrics)
            request_id.reset(token)

    return middleware


def _record(scope: Scope, status: int, seconds: float, metrics: Metrics | None) -> None:
    method = str(scope.get("method", "")).upper()
    method = method if method in METHODS else "OTHER"
    route = route_of(scope)
    fields = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
    }
    log.info("%s %s %d %.1f ms", method, route, status, seconds * 1000, extra={"fields": fields})
    if metrics is not None:
        metrics.observe_request(method, route, status, seconds)
