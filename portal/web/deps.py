"""Dependencies injected into handlers: one transaction per request, and the principal."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from auth.sessions import cookie_name
from portal.audit import service as audit
from portal.audit.service import ANONYMOUS
from portal.errors import AuditNote, DomainError, NoAccess, NotAuthenticated
from portal.principal import Principal, resolve_principal
from portal.runtime import PortalState

# Explicit name-based injection (Litestar 3 drops inferred dependencies). Handlers write
# `db: Db`, `user: CurrentUser` or `principal: OptionalPrincipal`.
Db = NamedDependency[AsyncSession]
CurrentUser = NamedDependency[Principal]
OptionalPrincipal = NamedDependency[Principal | None]


def portal_state(state: State) -> PortalState:
    """The application's long-lived objects."""
    ps = state.portal
    assert isinstance(ps, PortalState)
    return ps


async def provide_db(
    request: Request[object, object, State], state: State
) -> AsyncIterator[AsyncSession]:
    """One session and one transaction per request: committed on success, rolled back on error.

    A refused request that must be audited (DomainError with an AuditNote) is recorded in a
    transaction of its own after the request's transaction rolled back, so the trace survives.
    """
    ps = portal_state(state)
    try:
        async with ps.sessionmaker() as session, session.begin():
            yield session
    except DomainError as exc:
        if exc.audit is not None:
            await record_refusal(ps, request.scope.get("state", {}).get("principal"), exc.audit)
        raise


async def record_refusal(ps: PortalState, principal: Principal | None, note: AuditNote) -> None:
    """Write an audit entry for a refused request in its own transaction."""
    actor = principal.actor() if principal else ANONYMOUS
    async with ps.sessionmaker() as session, session.begin():
        await audit.record(
            session,
            note.action,
            actor=actor,
            outcome=note.outcome,
            owner_org_id=note.owner_org_id,
            object_type=note.object_type,
            object_id=note.object_id,
            details=note.details,
        )


async def provide_principal(
    request: Request[object, object, State], db: Db, state: State
) -> Principal | None:
    """The logged-in user, or None."""
    ps = portal_state(state)
    token = request.cookies.get(cookie_name(ps.settings.https))
    principal = await resolve_principal(db, token, ps.policy, ps.vault)
    request.scope["state"]["principal"] = principal
    return principal


async def provide_user(principal: OptionalPrincipal) -> Principal:
    """The logged-in user; unauthenticated requests are sent to login (pages) or get 401 (API)."""
    if principal is None:
        raise NotAuthenticated()
    if not principal.memberships:
        raise NoAccess(audit=AuditNote("access.no_role", "denied"))
    return principal
