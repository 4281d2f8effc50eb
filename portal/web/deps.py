"""Dependencies injected into handlers: one transaction per request, the principal, and the
long-lived objects of the running portal (portal.runtime.PortalState) a handler needs.

A handler declares what it uses by name and type, e.g.
`async def show(self, db: Db, user: CurrentUser, vault: Vault, files: Files)`; app.py registers
every provider below under that name (`dependencies()`). Nothing else reads `app.state`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation
from litestar.routes import HTTPRoute
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from auth.oidc import RelyingParty as _RelyingParty
from auth.sessions import cookie_name
from portal import pii
from portal import settings as _settings
from portal.account.service import StepUp
from portal.audit import service as audit
from portal.audit.service import ANONYMOUS
from portal.chair_signing import SigningSetup
from portal.errors import AuditNote, DomainError, NoAccess, NotAuthenticated
from portal.metrics import Metrics as _Metrics
from portal.principal import Principal, resolve_principal
from portal.runtime import PortalState
from storage import EncryptedObjectStore

# Explicit name-based injection (Litestar 3 drops inferred dependencies): the parameter's name
# is the dependency's name. Handlers write `db: Db`, `user: CurrentUser` (the logged-in user,
# required) or `principal: OptionalPrincipal` (pages anyone may see), and for the portal's
# long-lived objects `settings: Settings`, `vault: Vault`, `files: Files` (the encrypted object
# store), `sessions: Sessions` (for work in a transaction of its own), `signing: Signing`,
# `relying_party: RelyingParty`, `metrics: Metrics`, `step_ups: StepUps`, `runtime: Runtime`
# (the whole container, for the readiness probe).
Db = NamedDependency[AsyncSession]
CurrentUser = NamedDependency[Principal]
OptionalPrincipal = NamedDependency[Principal | None]
# The portal's own long-lived objects are passed as they are (SkipValidation: nothing to
# convert, and msgspec would otherwise inspect dataclasses such as Settings on every request).
Settings = NamedDependency[SkipValidation[_settings.Settings]]
Vault = NamedDependency[SkipValidation[pii.Vault]]
Files = NamedDependency[SkipValidation[EncryptedObjectStore]]
Sessions = NamedDependency[SkipValidation[async_sessionmaker[AsyncSession]]]
Signing = NamedDependency[SkipValidation[SigningSetup | None]]
RelyingParty = NamedDependency[SkipValidation[_RelyingParty]]
Metrics = NamedDependency[SkipValidation[_Metrics]]
StepUps = NamedDependency[SkipValidation[Mapping[str, StepUp]]]
Runtime = NamedDependency[SkipValidation[PortalState]]


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
    # Not `async with session, session.begin()`: the session begins its transaction itself at
    # the first statement, and the explicit begin is one more greenlet hop per request.
    session = ps.sessionmaker()
    try:
        try:
            yield session
            # A handler that ran no statement (the handler's start page) has nothing to commit:
            # the ORM's commit machinery alone is ~0.05 ms per request (issue 16).
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                await session.commit()
        finally:
            await session.close()  # rolls back whatever was not committed
    except DomainError as exc:
        if exc.audit is not None:
            await record_refusal(ps, request.scope.get("state", {}).get("principal"), exc.audit)
        raise


class NoOrmWrites(Session):
    """The ORM session behind `provide_autocommit_db`: it refuses to flush. In autocommit each
    statement of a flush would commit on its own, so a failure part-way would leave a partial
    write; a handler that writes through the ORM must use `provide_db`."""

    REFUSAL = (
        "provide_autocommit_db: ORM writes need provide_db (each statement would commit alone)"
    )


@event.listens_for(NoOrmWrites, "before_flush")
def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    raise RuntimeError(NoOrmWrites.REFUSAL)


async def provide_autocommit_db(
    request: Request[object, object, State], state: State
) -> AsyncIterator[AsyncSession]:
    """`provide_db` without a transaction block, on PostgreSQL, for a handler whose only write
    is one statement after its reads: the personnummer lookup (reads, then the audit append).

    Every statement commits itself (autocommit): no BEGIN and no COMMIT round trip. Nothing is
    lost by it: under READ COMMITTED each statement of a transaction takes its own snapshot
    anyway; the audit append (`portal.audit.service.record`, one statement on PostgreSQL) is
    committed — durable, synchronous commit — when the server answers it, so the entry is
    stored before the handler can return anything, and if it fails the handler raises and
    nothing is returned nor stored. The principal's session touch (`last_seen_at`) commits on
    its own, even if the request then fails: it records that the user was active, which is
    true. SQLite (tests, the one-process demo) appends in several statements: a transaction
    there, as `provide_db`. Registered per handler (`dependencies={"db": ...}`), never app-wide:
    the personnummer lookup and the start page (the night dashboard: its lists in one read, then
    their audit entries in one append; a chair's card: one read).
    """
    ps = portal_state(state)
    try:
        if ps.engine.dialect.name == "postgresql" and ps.principal_engine is not None:
            # Bound to the engine in autocommit mode: a connection is taken from the pool only
            # if the handler executes something (the start page of a handler does not).
            async with ps.sessionmaker(
                bind=ps.principal_engine, sync_session_class=NoOrmWrites
            ) as session:
                yield session
                # Every statement has committed itself. ORM objects left pending would each be
                # written and committed on its own: refused (NoOrmWrites refuses a flush too).
                if session.new or session.dirty or session.deleted:
                    raise RuntimeError(NoOrmWrites.REFUSAL)
        else:
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
    request: Request[object, object, State], state: State
) -> Principal | None:
    """The logged-in user, or None.

    Read on a pooled connection of its own (autocommit on PostgreSQL), returned to the pool
    before the handler runs, not in the request's transaction: the read is one statement (READ
    COMMITTED gives it the same view either way), and a page that reads nothing else — the
    handler's start page — then costs one round trip instead of three (BEGIN, the read,
    COMMIT).
    """
    ps = portal_state(state)
    token = request.cookies.get(cookie_name(ps.settings.https))
    if not token:
        principal = None
    else:
        async with (ps.principal_engine or ps.engine).connect() as conn:
            principal = await resolve_principal(conn, token, ps.policy, ps.vault)
    request.scope["state"]["principal"] = principal
    return principal


async def provide_user(principal: OptionalPrincipal) -> Principal:
    """The logged-in user; unauthenticated requests are sent to login (pages) or get 401 (API)."""
    if principal is None:
        raise NotAuthenticated()
    if not principal.memberships:
        raise NoAccess(audit=AuditNote("access.no_role", "denied"))
    return principal


def provide_relying_party(state: State) -> _RelyingParty:
    """The OIDC relying party (built in the lifespan, so read per request)."""
    rp = portal_state(state).relying_party
    assert rp is not None
    return rp


def _of(attribute: str) -> Provide:
    """A provider of one attribute of the runtime container."""

    def provide(state: State) -> object:
        return getattr(portal_state(state), attribute)

    return Provide(provide, sync_to_thread=False)


def dependencies() -> dict[str, Provide]:
    """Every dependency a handler may declare, by name (registered on the app in app.py)."""
    return {
        "db": Provide(provide_db),
        "principal": Provide(provide_principal),
        "user": Provide(provide_user),
        "settings": _of("settings"),
        "vault": _of("vault"),
        "files": _of("object_store"),
        "sessions": _of("sessionmaker"),
        "signing": _of("signing"),
        "relying_party": Provide(provide_relying_party, sync_to_thread=False),
        "metrics": _of("metrics"),
        "step_ups": _of("step_ups"),
        "runtime": Provide(portal_state, sync_to_thread=False),
    }


def resolve_one_at_a_time(app: Litestar) -> None:
    """Resolve every route's dependencies one after the other instead of concurrently.

    Litestar groups a handler's dependencies in batches (those whose own dependencies are
    resolved) and resolves a batch of more than one in an anyio task group: a task per
    dependency. Ours are the request's session (no I/O until it is used), the principal (after
    it) and attributes of the runtime container: nothing waits on I/O concurrently, and the
    task group with three or four tasks was a tenth of a start page's CPU (issue 16). Each
    batch is split into batches of one, in the same order of batches, so a dependency still
    comes after everything it depends on. Routes registered later keep Litestar's batches.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _handler, kwargs_model in route.route_handler_map.values():
            kwargs_model.dependency_batches = [
                {dependency}
                for batch in kwargs_model.dependency_batches
                for dependency in sorted(batch, key=lambda d: d.key)
            ]
