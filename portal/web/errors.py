"""Map errors to responses: RFC 9457 problem details for the API, a Swedish page for people."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from portal.db.faults import is_outage, outage_kind
from portal.errors import DomainError, InvalidInput, NotAuthenticated
from portal.web.origin import ORIGIN_REFUSED

log = logging.getLogger("jourpost.http")

RETRY_AFTER_SECONDS = 10
"""Retry-After on every 503: a database or object-store outage, the identity provider down."""

# Swedish titles for the HTTP errors Litestar itself raises (routing, validation, CSRF, size).
_HTTP_TITLES = {
    400: "Felaktig begäran",
    401: "Du behöver logga in",
    403: "Åtkomst nekad",
    404: "Sidan finns inte",
    405: "Metoden stöds inte",
    409: "Konflikt",
    413: "Filen är för stor",
    415: "Filtypen stöds inte",
    422: "Uppgifterna behöver rättas",
    429: "För många försök",
    500: "Något gick fel",
    503: "Tjänsten är tillfälligt otillgänglig",
}


def wants_json(request: Request[Any, Any, Any]) -> bool:
    """API paths, and clients that ask for JSON rather than HTML, get problem details."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def problem(
    status: int, title: str, detail: str, instance: str, extra: dict[str, Any] | None = None
) -> Response[dict[str, Any]]:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra or {})
    return Response(
        body,
        status_code=status,
        media_type="application/problem+json",
        headers=_retry_after(status),
    )


def page(
    request: Request[Any, Any, Any], status: int, title: str, detail: str, **extra: Any
) -> Template:
    """The Swedish error page."""
    principal = request.scope.get("state", {}).get("principal")
    return Template(
        template_name="error.html",
        context={
            "status": status,
            "title": title,
            "detail": detail,
            "principal": principal,
            **extra,
        },
        status_code=status,
        media_type=MediaType.HTML,
        headers=_retry_after(status),
    )


def _retry_after(status: int) -> dict[str, str] | None:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """Services' domain errors → 401/403/404/409/422."""
    if isinstance(exc, NotAuthenticated) and not wants_json(request):
        target = request.url.path
        if request.method == "GET" and target.startswith("/") and not target.startswith("//"):
            return Redirect(f"/auth/login?next={quote(target, safe='/')}")
        return Redirect("/auth/login")
    errors = exc.errors if isinstance(exc, InvalidInput) else {}
    if wants_json(request):
        extra = {"errors": [{"field": k, "detail": v} for k, v in errors.items()]} if errors else {}
        return problem(exc.status, exc.title, exc.message, request.url.path, extra)
    return page(request, exc.status, exc.title, exc.message, errors=errors, next_step=exc.next_step)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors (unknown route, bad request body, CSRF failure) in the same shapes."""
    status = exc.status_code
    title = _HTTP_TITLES.get(status, "Fel")
    if status == 413 and not request.content_type[0].startswith("multipart/"):
        title = "Begäran är för stor"  # a JSON or form body, not a file
    if status == 403 and "CSRF" in str(exc.detail):
        detail = "Formuläret har gått ut. Ladda om sidan och försök igen."
    elif status == 403 and exc.detail == ORIGIN_REFUSED:
        detail = "Begäran kom från en annan webbplats. Öppna sidan i Jourpost och försök igen."
    elif status >= 500:
        detail = "Försök igen om en stund."
    else:
        detail = title
    if wants_json(request):
        extra: dict[str, Any] = {}
        if status in (400, 422) and isinstance(exc.extra, list | dict):
            extra["errors"] = exc.extra
            detail = str(exc.detail)
        return problem(status, title, detail, request.url.path, extra)
    return page(request, status, title, detail)


def handle_provider_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The identity provider can't be reached or answers nonsense: 503, not "login refused"."""
    log.warning("identity provider unavailable: %s", type(exc).__name__)
    title, detail = "Inloggningstjänsten svarar inte", "Försök igen om en stund."
    if wants_json(request):
        return problem(503, title, detail, request.url.path)
    return page(request, 503, title, detail)


def handle_database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database can't be reached or didn't answer in time: 503 with Retry-After.

    The request's one transaction rolled back (or never began), so nothing of it is stored;
    only a link that breaks during COMMIT itself leaves the outcome unknown (as with any
    database client), and a retry of such a request meets the usual conflict checks.
    """
    log.warning(
        "database unavailable: %s (%s) on %s %s",
        type(exc).__name__,
        outage_kind(exc),
        request.method,
        request.scope["path"],
    )
    title = "Databasen svarar inte"
    detail = "Tjänsten kan inte nå sin databas just nu. Försök igen om en stund."
    if wants_json(request):
        return problem(503, title, detail, request.url.path)
    return page(request, 503, title, detail)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything else: log the type (never the message: it may hold personal data), answer 500.

    A database outage reaches here too (driver and SQLAlchemy errors have no common base
    worth registering): it is answered 503 instead.
    """
    if is_outage(exc):
        return handle_database_unavailable(request, exc)
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.scope["path"])
    status = HTTP_500_INTERNAL_SERVER_ERROR
    if wants_json(request):
        return problem(status, _HTTP_TITLES[500], "Försök igen om en stund.", request.url.path)
    return page(request, status, _HTTP_TITLES[500], "Försök igen om en stund.")
