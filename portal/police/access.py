"""Who may see and act on a police-assistance request.

The jour's staff (DRAFT_DECISIONS in the jour) make requests for its member municipalities and
record their life; the municipality's handlers (POST_ADVISORIES) and chairs (SIGN_DECISIONS)
read its requests, and its chair approves one where the delegation matrix says the chair
decides. Anyone else, and any other tenant: 404 like a missing record, audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import tenancy
from portal.audit.service import Actor
from portal.db.models import Organisation
from portal.errors import AuditNote, Forbidden, InvalidInput
from portal.police.models import PoliceRequest
from portal.principal import Principal

OBJECT_TYPE = "police_request"
"""object_type in the audit log."""


def jour_orgs(user: Principal) -> set[uuid.UUID]:
    """Jours whose requests the caller makes and tracks."""
    return user.orgs_with(Permission.DRAFT_DECISIONS)


def municipality_orgs(user: Principal) -> set[uuid.UUID]:
    """Municipalities whose requests the caller reads (handlers and chairs)."""
    return user.orgs_with(Permission.POST_ADVISORIES) | user.orgs_with(Permission.SIGN_DECISIONS)


def chair_orgs(user: Principal) -> set[uuid.UUID]:
    """Municipalities whose requests the caller may decide as chair."""
    return user.orgs_with(Permission.SIGN_DECISIONS)


def note(action: str, outcome: str, request_id: uuid.UUID, org: uuid.UUID | None) -> AuditNote:
    """The audit record of a refused request about a police request."""
    return AuditNote(action, outcome, org, OBJECT_TYPE, str(request_id))


def actor_for(user: Principal, r: PoliceRequest) -> Actor:
    """Acting for the jour when the caller works there, else for the municipality."""
    return user.actor(r.jour_id if r.jour_id in jour_orgs(user) else r.organisation_id)


async def get_visible(
    db: AsyncSession, user: Principal, request_id: uuid.UUID, action: str, *, lock: bool = False
) -> PoliceRequest:
    """The request if the caller may see it; else NotFound, audited."""
    return await tenancy.get_visible(
        db, PoliceRequest, request_id, action, OBJECT_TYPE,
        own=municipality_orgs(user), jours=jour_orgs(user), lock=lock,
    )  # fmt: skip


async def get_for_jour(
    db: AsyncSession, user: Principal, request_id: uuid.UUID, action: str
) -> PoliceRequest:
    """The request, locked, if the caller works at its jour; 404/403 (audited) otherwise."""
    r = await get_visible(db, user, request_id, action, lock=True)
    if r.jour_id not in jour_orgs(user):
        raise Forbidden(
            "Bara socialjouren för en begäran om handräckning vidare.",
            audit=note(action, "denied", request_id, r.organisation_id),
        )
    return r


def require_jour(user: Principal, action: str = "police_request.create") -> uuid.UUID:
    """The caller's jour; Forbidden (audited) when they work at none."""
    jours = jour_orgs(user)
    if not jours:
        raise Forbidden("Bara socialjouren begär handräckning.", audit=AuditNote(action, "denied"))
    return sorted(jours)[0]


async def member(
    db: AsyncSession, user: Principal, organisation_id: uuid.UUID | None
) -> Organisation:
    """The member municipality of the caller's jour the request is made for."""
    jours = jour_orgs(user)
    org = await db.get(Organisation, organisation_id) if organisation_id else None
    if org is None or org.kind != "municipality" or org.jour_id not in jours:
        raise InvalidInput(errors={"organisation_id": "Välj en av jourens kommuner."})
    return org


async def members(db: AsyncSession, user: Principal) -> list[tuple[uuid.UUID, str]]:
    """(id, name) of the member municipalities of the caller's jours, by name."""
    rows = await db.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.kind == "municipality", Organisation.jour_id.in_(jour_orgs(user)))
        .order_by(Organisation.name)
    )
    return [(org_id, name) for org_id, name in rows]
