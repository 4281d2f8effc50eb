"""Login, identity mapping and logout.

The pending authorisation request (state, nonce, PKCE verifier) is kept server-side in a
pre-login session row, never in the browser; it is consumed by the first callback, so a
replayed callback finds nothing. Login always issues a new session token (no fixation).
A person is let in only when an administrator has added them by personnummer and given them a
live role; everyone else gets the Swedish no-access page and the attempt is audited.

Threats handled here as well (issue 11):
- a shared jour workstation: starting a login ends the browser's previous session (pending or
  authenticated), so no orphan stays usable with an old cookie; the ID token is kept, encrypted,
  in the session for the RP-initiated logout that ends the provider's session too;
- anonymous floods of `GET /auth/login`: starts are limited per client address
  (`LoginStartLimiter`, counted in the database for all instances), a browser keeps at most
  one pending row, and `purge_sessions` (run by the periodic jobs) deletes unfinished, ended
  and expired sessions and finished login-start windows.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth.sessions import SessionPolicy, hash_token, new_token
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.clientip import canonical_address
from portal.db.base import utcnow
from portal.db.models import LoginStartCount, User, UserIdentity, WebSession
from portal.errors import AuditNote, Forbidden, NoAccess
from portal.pii import (
    DecryptionError,
    InvalidPersonnummer,
    Vault,
    field_context,
    normalise_personnummer,
)
from portal.principal import Principal, live_organisation_ids

if TYPE_CHECKING:
    from auth.oidc import PendingAuth, RelyingParty, VerifiedIdentity

log = logging.getLogger("jourpost.auth")

PENDING_LIFETIME = timedelta(minutes=10)
"""A login must come back from the identity provider within this; older pending rows are purged."""
LOGIN_START_LIMIT = 30
"""Login starts allowed per client address per window: far above what people at one office
(behind one NAT address) do, far below the 300 in 17 s of the attack in issue 11."""
LOGIN_START_WINDOW = timedelta(seconds=60)
"""The fixed window the start limit counts in."""


class LoginFailed(Forbidden):
    """The identity provider's answer was refused (bad state, token, acr...)."""

    title = "Inloggningen misslyckades"


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginStartLimiter:
    """Counts login starts per client address in fixed windows, in the database, so every
    instance behind the load balancer counts against the same limit.

    Each start costs a database row and a request to the identity provider; an anonymous
    client may not make that cost unbounded. IPv6 addresses are counted per /64 (one host
    usually holds the whole prefix). A window starts with the first start after the previous
    one ended (as the in-memory limiter did). One statement counts a start and returns the
    count (INSERT .. ON CONFLICT DO UPDATE .. RETURNING: the row's lock orders concurrent
    starts of every instance, there is no read-modify-write race). The address is kept only as
    a keyed hash; `purge_sessions` deletes rows whose window has ended.
    """

    def __init__(
        self, limit: int = LOGIN_START_LIMIT, window: timedelta = LOGIN_START_WINDOW
    ) -> None:
        self.limit = limit
        self.window = window

    @staticmethod
    def key(address: str) -> str:
        """What `address` is counted as: an IPv4 address itself (an IPv4-mapped IPv6 address
        `::ffff:a.b.c.d` included: it is that IPv4 client, and as IPv6 every mapped address
        would share the one /64 `::/64`), an IPv6 address its /64, anything else (not an
        address) its text."""
        ip = canonical_address(address)
        if ip is None:
            return address
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    async def retry_after(
        self, db: AsyncSession, vault: Vault, address: str, now: datetime | None = None
    ) -> int | None:
        """Count one start (in `db`'s transaction: commit it at once, so a long or failing
        request doesn't hold the row or undo the count; the address is hashed with `vault`'s
        blind index key); None when allowed, else the seconds until the window ends."""
        now = now or utcnow()
        client = vault.index(f"login-start:{self.key(address)}")
        row = (
            await db.execute(_count_start(db.get_bind().dialect.name, client, now, self.window))
        ).one()
        count: int = row[0]
        started: datetime = row[1]
        if count <= self.limit:
            return None
        return max(1, math.ceil((started - now).total_seconds() + self.window.total_seconds()))


def _count_start(dialect: str, client: str, now: datetime, window: timedelta) -> Any:
    """Count a start of `client` at `now`: a new row, a new window when the last one ended,
    else one more in it. One statement (the row's lock orders concurrent starts); RETURNING
    the count and the window's start."""
    c = LoginStartCount
    ended = c.window_start <= now - window
    more = {
        "starts": case((ended, 1), else_=c.starts + 1),
        "window_start": case((ended, now), else_=c.window_start),
    }
    values = {"client": client, "window_start": now, "starts": 1}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return (
            pg_insert(c)
            .values(values)
            .on_conflict_do_update(index_elements=[c.client], set_=more)
            .returning(c.starts, c.window_start)
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (
        sqlite_insert(c)
        .values(values)
        .on_conflict_do_update(index_elements=[c.client], set_=more)
        .returning(c.starts, c.window_start)
    )


async def _end_previous(db: AsyncSession, token: str | None) -> None:
    """End the browser's previous session: a new login must not leave the old one usable."""
    if not token:
        return
    key = hash_token(token)
    await db.execute(delete(WebSession).where(WebSession.id == key, WebSession.user_id.is_(None)))
    await db.execute(
        update(WebSession)
        .where(WebSession.id == key, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow(), data={})
    )


async def begin_login(
    db: AsyncSession,
    rp: RelyingParty,
    *,
    next_path: str | None,
    previous_token: str | None = None,
    fresh: bool = False,
) -> tuple[str, str]:
    """Create a pre-login session; return (cookie token, identity provider URL).

    `previous_token`: the browser's current session cookie, ended here. `fresh`: the person
    must authenticate at the provider now (after a logout from this browser), whatever single
    sign-on session the provider still has.
    """
    await _end_previous(db, previous_token)
    url, pending = await (rp.begin(prompt="login", max_age=0) if fresh else rp.begin())
    token, key = new_token()
    db.add(WebSession(id=key, data={"pending": pending.to_dict(), "next": safe_next(next_path)}))
    return token, url


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A completed login."""

    token: str
    """The new session's cookie token."""
    next_path: str
    """Where to send the user."""
    user_id: uuid.UUID
    """Who logged in."""


async def _consume_pending(db: AsyncSession, token: str | None) -> tuple[PendingAuth, str]:
    if not token:
        raise LoginFailed(
            "Inloggningen kunde inte slutföras. Börja om från inloggningssidan.",
            audit=AuditNote("login.rejected", "denied", details={"reason": "no_pending_session"}),
        )
    # Consumed with an UPDATE .. WHERE ended_at IS NULL so two callbacks can't both use it.
    now = utcnow()
    claimed = await db.execute(
        update(WebSession)
        .where(
            WebSession.id == hash_token(token),
            WebSession.ended_at.is_(None),
            WebSession.user_id.is_(None),
            WebSession.created_at > now - PENDING_LIFETIME,
        )
        .values(ended_at=now)
        .returning(WebSession.data)
    )
    data = claimed.scalar_one_or_none()
    if not data or "pending" not in data:
        raise LoginFailed(
            "Inloggningen har gått ut eller redan använts. Börja om från inloggningssidan.",
            audit=AuditNote("login.rejected", "denied", details={"reason": "pending_missing"}),
        )
    from auth.oidc import PendingAuth

    return PendingAuth.from_dict(data["pending"]), safe_next(data.get("next"))


async def _map_identity(db: AsyncSession, vault: Vault, identity: VerifiedIdentity) -> User | None:
    """The user for this identity: by (issuer, subject), else by personnummer (then linked)."""
    pnr: str | None = None
    if identity.personal_identity_number:
        try:
            pnr = normalise_personnummer(identity.personal_identity_number)
        except InvalidPersonnummer:
            pnr = None
    # The link and its user in one query (an outer join: a link whose user is gone gives None).
    found = (
        await db.execute(
            select(UserIdentity, User)
            .outerjoin(User, User.id == UserIdentity.user_id)
            .where(UserIdentity.issuer == identity.issuer, UserIdentity.subject == identity.subject)
        )
    ).first()
    if found is not None:
        link, linked = found
        if linked is not None and pnr is not None and linked.pnr_index != vault.index(pnr):
            return None  # the provider now says another person: refuse rather than guess
        link.last_login_at = utcnow()
        return linked
    if pnr is None:
        return None
    user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
    if user is not None:
        db.add(UserIdentity(user_id=user.id, issuer=identity.issuer, subject=identity.subject))
    return user


async def complete_login(
    db: AsyncSession,
    rp: RelyingParty,
    vault: Vault,
    *,
    token: str | None,
    params: dict[str, str],
) -> LoginResult:
    """Check the callback, map the person to a user with a live role, open a new session."""
    from auth.errors import LoginRejected

    pending, next_path = await _consume_pending(db, token)
    try:
        identity = await rp.complete(params, pending)
    except LoginRejected as exc:
        raise LoginFailed(
            "Inloggningen kunde inte verifieras. Försök igen.",
            audit=AuditNote("login.rejected", "denied", details={"reason": exc.reason}),
        ) from exc
    user = await _map_identity(db, vault, identity)
    organisations = (
        await live_organisation_ids(db, user.id) if user and not user.disabled_at else []
    )
    if user is None or not organisations:
        log.info("login refused: no user or no live role")
        raise NoAccess(
            audit=AuditNote(
                "login.no_access",
                "denied",
                details={"issuer": identity.issuer, "known_user": user is not None},
            ),
            next_step=("/auth/login?fresh=true", "Logga in som en annan person"),
        )
    _note_provider_name(vault, user, identity)
    new, key = new_token()
    now = utcnow()
    data: dict[str, str] = {}
    if identity.id_token:  # for id_token_hint at logout; it may hold the personnummer
        data["id_token"] = vault.encrypt(identity.id_token, _id_token_context(key))
    db.add(WebSession(id=key, user_id=user.id, authenticated_at=now, last_seen_at=now, data=data))
    await audit.record(
        db,
        "login",
        actor=Actor(user.id, organisations[0]),
        details={"acr": identity.acr},
    )
    return LoginResult(new, next_path, user.id)


StepUp = Callable[[AsyncSession, Principal, dict[str, str]], Awaitable[str]]
"""Finishes a step-up authentication (a logged-in user sent back to the identity provider to
prove who they are for one act, e.g. signing a decision): gets the callback's query
parameters, returns the path to send the browser to. Registered by purpose in
`PortalState.step_ups`; raises domain errors like any service."""


async def pending_step_up(
    db: AsyncSession, token: str | None, purposes: Iterable[str]
) -> str | None:
    """The purpose of the step-up this logged-in session is coming back from, or None when the
    callback belongs to a login. A feature starting a step-up keeps its pending request in the
    session's data under its purpose (see portal.chair_signing.begin)."""
    session = await db.get(WebSession, hash_token(token)) if token else None
    if session is None or session.user_id is None:
        return None
    data = session.data or {}
    return next((purpose for purpose in purposes if purpose in data), None)


def _note_provider_name(vault: Vault, user: User, identity: VerifiedIdentity) -> None:
    """Keep the name the administrator registered; remember the provider's when it differs
    (the admin page shows both: a typo, a new surname, or a second given name)."""
    sent = " ".join(x for x in (identity.given_name, identity.family_name) if x) or identity.name
    registered = vault.decrypt(user.name_enc, field_context(User.name_enc, user.id))
    differs = bool(sent) and sent != registered
    user.idp_name_enc = (
        vault.encrypt(sent or "", field_context(User.idp_name_enc, user.id)) if differs else None
    )


def _id_token_context(session_key: str) -> str:
    return f"web_sessions.id_token:{session_key}"


async def logout(db: AsyncSession, vault: Vault, token: str | None) -> str | None:
    """End the session now (the cookie is cleared by the controller); return its ID token,
    for the provider's logout, if one was kept."""
    if not token:
        return None
    key = hash_token(token)
    row = (
        await db.execute(
            select(WebSession.user_id, WebSession.data).where(
                WebSession.id == key, WebSession.ended_at.is_(None)
            )
        )
    ).first()
    await db.execute(
        update(WebSession)
        .where(WebSession.id == key, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow(), data={})
        .execution_options(synchronize_session=False)
    )
    if row is None or row[0] is None or not isinstance(row[1], dict):
        return None
    sealed = row[1].get("id_token")
    if not isinstance(sealed, str):
        return None
    try:
        return vault.decrypt(sealed, _id_token_context(key))
    except DecryptionError:  # e.g. its key retired: log out here, the provider will ask
        return None


async def purge_sessions(
    db: AsyncSession, *, now: datetime, policy: SessionPolicy | None = None
) -> int:
    """Delete pending logins older than PENDING_LIFETIME, ended sessions, — with the `policy` —
    sessions past their idle or absolute timeout, and login-start counts of finished windows;
    return how many rows went.

    Nothing deleted here could still be used: a pending row past its lifetime is refused by the
    callback, an expired session by every request.
    """
    dead = [
        WebSession.ended_at.is_not(None),
        and_(WebSession.user_id.is_(None), WebSession.created_at < now - PENDING_LIFETIME),
    ]
    if policy is not None:
        dead.append(
            and_(
                WebSession.user_id.is_not(None),
                or_(
                    WebSession.last_seen_at <= now - policy.idle,
                    WebSession.authenticated_at <= now - policy.absolute,
                ),
            )
        )
    result = await db.execute(
        delete(WebSession).where(or_(*dead)).execution_options(synchronize_session=False)
    )
    counts = await db.execute(
        delete(LoginStartCount)
        .where(LoginStartCount.window_start <= now - LOGIN_START_WINDOW)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) + int(getattr(counts, "rowcount", 0) or 0)
