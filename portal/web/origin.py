"""Unsafe requests must come from the portal's own origin: a second layer under the CSRF token.

The double-submit token alone falls if an attacker can plant the `csrftoken` cookie (a sibling
subdomain, a network attacker on plain http before HSTS) and then post a matching field from
another site. Browsers say where a request comes from in `Sec-Fetch-Site` and `Origin` (on
every POST, PUT, PATCH, DELETE); a page on another site can forge neither.

    Sec-Fetch-Site present  → must be same-origin (or none: typed by the user)
    Origin present          → must be exactly the public URL's origin; "null" only together
                              with Sec-Fetch-Site (a browser posting to its own origin under
                              our Referrer-Policy: no-referrer sends "null")
    neither (not a browser) → must carry the X-CSRFToken header, which the CSRF check verifies

The mounted development identity provider and trust services are outside the portal's session
and are excluded, as they are from the CSRF check.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.types import ASGIApp, Receive, Scope, Send

ORIGIN_REFUSED = "Origin refused"
"""Detail of a refusal of another origin; portal.web.errors shows it as a Swedish text."""
NO_CSRF_HEADER = "CSRF token missing: no Origin, no Sec-Fetch-Site, no CSRF header"
"""Detail of a refusal of a request that names no origin ("the form has expired")."""
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower case, default ports dropped."""
    parts = urlsplit(url.strip().lower())
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def refusal(headers: Headers, public_origin: str, csrf_header: str) -> str | None:
    """Why an unsafe request with these headers is refused, or None (see the module docstring)."""
    origin = headers.get("origin")
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in _SAME_SITE_FETCH:
        return ORIGIN_REFUSED
    if origin == "null":
        # Browsers send "null" for their own same-origin posts under Referrer-Policy:
        # no-referrer (ours); then only Sec-Fetch-Site can tell, and it said same-origin.
        return None if fetch_site is not None else ORIGIN_REFUSED
    if origin is not None:
        return None if origin_of(origin) == public_origin else ORIGIN_REFUSED
    if fetch_site is not None:
        return None
    return None if headers.get(csrf_header) else NO_CSRF_HEADER


def same_origin_only(
    app: ASGIApp, *, public_url: str, exclude: tuple[str, ...], csrf_header: str
) -> ASGIApp:
    """Wrap `app`: refuse (403) unsafe requests from another origin."""
    public_origin = origin_of(public_url)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        # Safe methods first: a GET costs one comparison here.
        if scope["type"] == ScopeType.HTTP and scope["method"] not in _SAFE:
            # A mounted app sees its own path ("/par"); the full one is in raw_path (as
            # Litestar's CSRF middleware does it).
            mounted = getattr(scope.get("route_handler"), "is_mount", False)
            path = scope["raw_path"].decode("latin-1") if mounted else scope["path"]
            if not path.startswith(exclude) and (
                why := refusal(Headers.from_scope(scope), public_origin, csrf_header)
            ):
                raise PermissionDeniedException(why)
        await app(scope, receive, send)

    return middleware
