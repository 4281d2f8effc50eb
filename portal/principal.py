"""Who is asking: the session cookie resolved to a user and their live memberships.

Memberships are read from the database on every request, so a revoked role or an ended session
stops access at the next request, not at the next login.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from auth.roles import ROLE_PERMISSIONS, Permission, Role
from auth.sessions import SessionPolicy, hash_token
from portal.audit.service import Actor
from portal.db.base import utcnow
from portal.db.fast import Prepared
from portal.db.models import Membership, Organisation, Unit, User, WebSession
from portal.pii import Vault, field_context

# Touch last_seen_at at most this often: one write per minute per session, not per request.
_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class MembershipView:
    """One live role of the user."""

    id: uuid.UUID
    """The membership row."""
    org_id: uuid.UUID
    """The organisation the role is held in."""
    org_name: str
    """Its name."""
    org_kind: str
    """jour | municipality | service."""
    unit_id: uuid.UUID | None
    """The unit, for unit-scoped roles."""
    unit_name: str | None
    """Its name."""
    role: Role
    """The role."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user with their live roles."""

    user_id: uuid.UUID
    """The user."""
    name: str
    """Display name (decrypted for this request only)."""
    session_id: str
    """Hash of the session token."""
    memberships: tuple[MembershipView, ...]
    """Live roles; empty means no access."""

    def orgs_with(self, permission: Permission) -> set[uuid.UUID]:
        """Organisations in which the user holds a role granting `permission`."""
        return {m.org_id for m in self.memberships if permission in ROLE_PERMISSIONS[m.role]}

    def has_role(self, role: Role) -> bool:
        """True when the user holds `role` anywhere."""
        return any(m.role == role for m in self.memberships)

    def unit_in(self, org_id: uuid.UUID) -> uuid.UUID | None:
        """The user's (first) unit in `org_id`, e.g. the unit that gets the replies to what they
        send; None when they belong to none there."""
        return next((m.unit_id for m in self.memberships if m.org_id == org_id and m.unit_id), None)

    def actor(self, org_id: uuid.UUID | None = None) -> Actor:
        """The audit actor for an action in `org_id` (default: the user's first organisation)."""
        if org_id is None and self.memberships:
            org_id = self.memberships[0].org_id
        return Actor(self.user_id, org_id)


async def live_memberships(db: AsyncSession, user_id: uuid.UUID) -> list[Membership]:
    """The user's memberships that are not revoked, with organisation and unit loaded."""
    rows = await db.scalars(
        select(Membership)
        .where(Membership.user_id == user_id, Membership.revoked_at.is_(None))
        .options(selectinload(Membership.organisation), selectinload(Membership.unit))
        .order_by(Membership.granted_at)
    )
    return list(rows)


async def live_organisation_ids(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The organisations of the user's live memberships, oldest membership first (one query,
    plain values: what a login needs to let the user in and name the audit actor)."""
    rows = await db.scalars(
        select(Membership.organisation_id)
        .where(Membership.user_id == user_id, Membership.revoked_at.is_(None))
        .order_by(Membership.granted_at)
    )
    return list(rows)


def to_views(memberships: list[Membership]) -> tuple[MembershipView, ...]:
    """Plain values for templates and checks."""
    return tuple(
        MembershipView(
            id=m.id,
            org_id=m.organisation_id,
            org_name=m.organisation.name,
            org_kind=m.organisation.kind,
            unit_id=m.unit_id,
            unit_name=m.unit.name if m.unit else None,
            role=Role(m.role),
        )
        for m in memberships
    )


# Hot path: built once at import, executed on every authenticated request: the session, its
# user and the user's live roles in one statement (one row per role; one row with empty role
# columns when there is none), plain rows: no ORM objects to build, track and flush at commit;
# on PostgreSQL run on asyncpg directly (portal.db.fast).
_SESSION_USER_AND_ROLES = Prepared(
    select(
        WebSession.id,
        WebSession.ended_at,
        WebSession.authenticated_at,
        WebSession.last_seen_at,
        User.id,
        User.disabled_at,
        User.name_enc,
        Membership.id,
        Membership.organisation_id,
        Organisation.name,
        Organisation.kind,
        Membership.unit_id,
        Unit.name,
        Membership.role,
    )
    .join(User, User.id == WebSession.user_id)
    .outerjoin(Membership, and_(Membership.user_id == User.id, Membership.revoked_at.is_(None)))
    .outerjoin(Organisation, Organisation.id == Membership.organisation_id)
    .outerjoin(Unit, Unit.id == Membership.unit_id)
    .where(WebSession.id == bindparam("session_id"))
    .order_by(Membership.granted_at, Membership.id)
)
_END_SESSION = (
    update(WebSession)
    .where(WebSession.id == bindparam("session_id"))
    .values(ended_at=bindparam("at"))
)
_TOUCH_SESSION = (
    update(WebSession)
    .where(WebSession.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("at"))
)
_MEMBERSHIP_VIEWS = (
    select(
        Membership.id,
        Membership.organisation_id,
        Organisation.name,
        Organisation.kind,
        Membership.unit_id,
        Unit.name,
        Membership.role,
    )
    .join(Organisation, Organisation.id == Membership.organisation_id)
    .outerjoin(Unit, Unit.id == Membership.unit_id)
    .where(Membership.user_id == bindparam("user_id"), Membership.revoked_at.is_(None))
    .order_by(Membership.granted_at, Membership.id)
)


async def membership_views(db: AsyncSession, user_id: uuid.UUID) -> tuple[MembershipView, ...]:
    """The user's live roles as plain values, in one query."""
    rows = await db.execute(_MEMBERSHIP_VIEWS, {"user_id": user_id})
    return tuple(
        MembershipView(
            id=mid,
            org_id=org_id,
            org_name=org_name,
            org_kind=org_kind,
            unit_id=unit_id,
            unit_name=unit_name,
            role=Role(role),
        )
        for mid, org_id, org_name, org_kind, unit_id, unit_name, role in rows
    )


async def resolve_principal(
    conn: AsyncConnection, token: str | None, policy: SessionPolicy, vault: Vault
) -> Principal | None:
    """The principal behind a session token, or None (no, unknown, ended or expired session).

    `conn` is a Core connection of its own, not in a caller's transaction (a plain cursor
    result: none of the ORM session's per-execution work; per request an autocommit connection
    on PostgreSQL, portal.web.deps.provide_principal, so a page that reads nothing else needs no
    BEGIN and COMMIT). Ending an expired session or touching `last_seen_at` is committed here at
    once, whatever the request does next.
    """
    if not token:
        return None
    rows = await _SESSION_USER_AND_ROLES.all(conn, {"session_id": hash_token(token)})
    if not rows:
        return None
    session = rows[0]
    session_id, ended_at, authenticated_at, last_seen_at, user_id, disabled_at, name_enc = session[
        :7
    ]
    if ended_at is not None:
        return None
    now = utcnow()
    assert authenticated_at is not None
    reason = policy.expiry_reason(
        authenticated_at=authenticated_at, last_seen_at=last_seen_at, now=now
    )
    if reason is not None:
        await conn.execute(_END_SESSION, {"session_id": session_id, "at": now})
        await conn.commit()
        return None
    if disabled_at is not None:
        return None
    if now - last_seen_at >= _TOUCH_INTERVAL:
        await conn.execute(_TOUCH_SESSION, {"session_id": session_id, "at": now})
        await conn.commit()
    return Principal(
        user_id=user_id,
        name=vault.decrypt(name_enc, field_context(User.name_enc, user_id)),
        session_id=session_id,
        memberships=tuple(
            MembershipView(
                id=mid,
                org_id=org_id,
                org_name=org_name,
                org_kind=org_kind,
                unit_id=unit_id,
                unit_name=unit_name,
                role=Role(role),
            )
            for *_, mid, org_id, org_name, org_kind, unit_id, unit_name, role in rows
            if mid is not None
        ),
    )
