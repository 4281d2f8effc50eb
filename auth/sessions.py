"""Server-side session tokens and timeouts.

Threat: a stolen database must not yield usable sessions, so only the SHA-256 of the token is
stored; the token itself lives only in the user's HttpOnly cookie. A new token is issued at login
(no session fixation). Idle and absolute timeouts bound what a left-open browser in a police
building or a lost phone can do.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta


def new_token() -> tuple[str, str]:
    """A fresh session token (for the cookie) and its hash (the database key)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """The database key of a session token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def cookie_name(https: bool) -> str:
    """`__Host-` prefixed (Secure, path /, no domain) whenever the portal is served over https."""
    return "__Host-jp_session" if https else "jp_session"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long an authenticated session lives."""

    idle: timedelta
    """Ends after this long without a request."""
    absolute: timedelta
    """Ends this long after login whatever the activity."""

    def expiry_reason(
        self, *, authenticated_at: datetime, last_seen_at: datetime, now: datetime
    ) -> str | None:
        """Why the session has expired ("idle" or "absolute"), or None while it is valid."""
        if now - authenticated_at >= self.absolute:
            return "absolute"
        if now - last_seen_at >= self.idle:
            return "idle"
        return None
