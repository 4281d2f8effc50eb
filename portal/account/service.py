"""Login, identity mapping and logout.

The pending authorisation request (state, nonce, PKCE verifier) is kept server-side in a
pre-login session row, never in the browser; it is consumed by the first callback, so a
replayed callback finds nothing. Login always issues a new session token (no fixation).
A person is let in only when an administrator has added them by personnummer and given them a
live role; everyone else gets the Swedish no-access page and the attempt is audited.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth.sessions import hash_token, new_token
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.db.base import utcnow
from portal.db.models import User, UserIdentity, WebSession
from portal.errors import AuditNote, Forbidden, NoAccess
from portal.pii import InvalidPersonnummer, Vault, normalise_personnummer
from portal.web.principal import live_memberships

if TYPE_CHECKING:
    from auth.oidc import PendingAuth, RelyingParty, VerifiedIdentity

log = logging.getLogger("jourpost.auth")

PENDING_LIFETIME = timedelta(minutes=10)


class LoginFailed(Forbidden):
    """The identity provider's answer was refused (bad state, token, acr...)."""

    title = "Inloggningen misslyckades"


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def begin_login(
    db: AsyncSession, rp: RelyingParty, *, next_path: str | None
) -> tuple[str, str]:
    """Create a pre-login session; return (cookie token, identity provider URL)."""
    url, pending = await rp.begin()
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
    link = await db.scalar(
        select(UserIdentity).where(
            UserIdentity.issuer == identity.issuer, UserIdentity.subject == identity.subject
        )
    )
    if link is not None:
        user = await db.get(User, link.user_id)
        if user is not None and pnr is not None and user.pnr_index != vault.index(pnr):
            return None  # the provider now says another person: refuse rather than guess
        link.last_login_at = utcnow()
        return user
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
    memberships = await live_memberships(db, user.id) if user and not user.disabled_at else []
    if user is None or not memberships:
        log.info("login refused: no user or no live role")
        raise NoAccess(
            audit=AuditNote(
                "login.no_access",
                "denied",
                details={"issuer": identity.issuer, "known_user": user is not None},
            ),
        )
    display = " ".join(x for x in (identity.given_name, identity.family_name) if x) or identity.name
    if display and vault.decrypt(user.name_enc, f"users.name:{user.id}") != display:
        user.name_enc = vault.encrypt(display, f"users.name:{user.id}")
    new, key = new_token()
    now = utcnow()
    db.add(WebSession(id=key, user_id=user.id, authenticated_at=now, last_seen_at=now, data={}))
    await audit.record(
        db,
        "login",
        actor=Actor(user.id, memberships[0].organisation_id),
        details={"acr": identity.acr},
    )
    return LoginResult(new, next_path, user.id)


async def logout(db: AsyncSession, token: str | None) -> None:
    """End the session now (the cookie is cleared by the controller)."""
    if token:
        await db.execute(
            update(WebSession)
            .where(WebSession.id == hash_token(token), WebSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
