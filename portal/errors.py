"""Domain errors raised by services, and the one place that maps them to HTTP.

    DomainError
    ├── NotAuthenticated   401 (pages: redirect to login)
    ├── Forbidden          403
    ├── NotFound           404 (also wrong-tenant access: indistinguishable from missing)
    ├── Conflict           409
    └── InvalidInput       422 (with per-field messages)
        └── BadCursor      400 (a list's paging cursor that does not decode)

Services raise these and never HTTP exceptions. The API answers RFC 9457 problem details; pages
answer a Swedish error page. A denial that must be audited (wrong tenant, no role) carries an
`AuditNote`; the handler writes it in its own transaction after the request's transaction has
rolled back, so the record of the attempt survives the failed request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditNote:
    """What to write to the audit log about a refused request."""

    action: str
    """The attempted action, e.g. "advisory.read"."""
    outcome: str
    """denied | not_found."""
    owner_org_id: uuid.UUID | None = None
    """The organisation whose record was asked for, when it exists."""
    object_type: str | None = None
    """Type of the record asked for."""
    object_id: str | None = None
    """Identifier of the record asked for."""
    details: dict[str, Any] = field(default_factory=dict)
    """Extra facts (never personal data)."""


class DomainError(Exception):
    """Base of all errors a service may raise; `message` is Swedish and safe to show."""

    status = 400
    title = "Felaktig begäran"

    def __init__(
        self,
        message: str | None = None,
        *,
        audit: AuditNote | None = None,
        next_step: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.audit = audit
        self.next_step = next_step
        """(path, Swedish label) of what the person can do now, shown as a button on pages."""


class NotAuthenticated(DomainError):
    """No valid session."""

    status = 401
    title = "Du behöver logga in"


class Forbidden(DomainError):
    """Logged in, but this role may not do this."""

    status = 403
    title = "Du saknar behörighet"


class NoAccess(Forbidden):
    """Authenticated, but not a Jourpost user with a live role."""

    title = "Du har ingen behörighet i Jourpost"

    def __init__(
        self,
        message: str | None = None,
        *,
        audit: AuditNote | None = None,
        next_step: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(
            message
            or "Du är inloggad men har inget uppdrag i Jourpost. "
            "Kontakta administratören i din kommun eller på socialjouren.",
            audit=audit,
            next_step=next_step,
        )


class NotFound(DomainError):
    """No such record — or one the user may not know exists."""

    status = 404
    title = "Hittades inte"


class Conflict(DomainError):
    """The record changed or is in a state that does not allow this."""

    status = 409
    title = "Konflikt"


class TooManyRequests(DomainError):
    """The user is doing this faster than the service allows (e.g. person lookups)."""

    status = 429
    title = "För många försök"


class InvalidInput(DomainError):
    """The input is invalid; `errors` maps field names to Swedish messages."""

    status = 422
    title = "Uppgifterna behöver rättas"

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: dict[str, str] | None = None,
        audit: AuditNote | None = None,
    ) -> None:
        super().__init__(message, audit=audit)
        self.errors = errors or {}


class BadCursor(InvalidInput):
    """A paging cursor that is not one of ours (edited or cut off): the client's mistake."""

    status = 400
    title = "Felaktig sidmarkering"

    def __init__(self, field: str = "before") -> None:
        super().__init__(
            "Sidmarkeringen går inte att läsa. Börja om från listans första sida.",
            errors={field: "Ogiltig sidmarkering."},
        )
