"""Who may see and change a placement.

A handler (POST_ADVISORIES: the municipality's IFO keeps the register, as it sends the
advisories) sees and changes only their own municipality's placements; jour staff
(READ_ADVISORIES) read the placements of their jour's member municipalities, through the
lookup and the police-assistance check. Anyone else, and any other tenant, gets a 404 that
looks exactly like a missing record, and the attempt is audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal.audit.service import Actor
from portal.errors import AuditNote, Forbidden, InvalidInput, NotFound
from portal.placements.models import Placement
from portal.principal import Principal

OBJECT_TYPE = "placement"
"""object_type in the audit log."""


def own_orgs(user: Principal) -> set[uuid.UUID]:
    """Municipalities whose register the caller keeps."""
    return user.orgs_with(Permission.POST_ADVISORIES)


def jour_orgs(user: Principal) -> set[uuid.UUID]:
    """Jours whose member municipalities' placements the caller reads."""
    return user.orgs_with(Permission.READ_ADVISORIES)


def visible(user: Principal) -> ColumnElement[bool]:
    """SQL condition: the placement is the caller's municipality's or of their jour's members."""
    own, jours = own_orgs(user), jour_orgs(user)
    if not own and not jours:
        return false()
    return or_(Placement.organisation_id.in_(own), Placement.jour_id.in_(jours))


def actor_for(user: Principal, pl: Placement) -> Actor:
    """The audit actor: acting for the municipality, else for the jour."""
    return user.actor(pl.organisation_id if pl.organisation_id in own_orgs(user) else pl.jour_id)


def note(action: str, outcome: str, placement_id: uuid.UUID, org: uuid.UUID | None) -> AuditNote:
    """The audit record of a refused request about a placement."""
    return AuditNote(action, outcome, org, OBJECT_TYPE, str(placement_id))


async def get_visible(
    db: AsyncSession, user: Principal, placement_id: uuid.UUID, action: str, *, lock: bool = False
) -> Placement:
    """The placement if the caller may see it; else NotFound, audited as not_found or denied."""
    stmt = select(Placement).where(Placement.id == placement_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    pl = await db.scalar(stmt)
    if pl is None:
        raise NotFound(audit=note(action, "not_found", placement_id, None))
    if pl.organisation_id not in own_orgs(user) and pl.jour_id not in jour_orgs(user):
        raise NotFound(audit=note(action, "denied", placement_id, pl.organisation_id))
    return pl


async def get_for_keeper(
    db: AsyncSession, user: Principal, placement_id: uuid.UUID, action: str, *, lock: bool = True
) -> Placement:
    """The placement, locked, if the caller's municipality keeps it; else 404/403 (audited)."""
    pl = await get_visible(db, user, placement_id, action, lock=lock)
    if pl.organisation_id not in own_orgs(user):
        raise Forbidden(
            "Bara kommunen som registrerade placeringen kan ändra den.",
            audit=note(action, "denied", placement_id, pl.organisation_id),
        )
    return pl


def require_keeper(user: Principal, action: str = "placement.create") -> set[uuid.UUID]:
    """Municipalities the caller keeps the register for; Forbidden (audited) when none."""
    own = own_orgs(user)
    if not own:
        raise Forbidden(
            "Bara handläggare i en kommun kan registrera placeringar.",
            audit=AuditNote(action, "denied"),
        )
    return own


def keeper_org(user: Principal, organisation_id: uuid.UUID | None) -> uuid.UUID:
    """The municipality a new placement is registered for."""
    own = require_keeper(user)
    if organisation_id is None:
        if len(own) != 1:
            raise InvalidInput(errors={"organisation_id": "Välj vilken kommun som placerat."})
        return next(iter(own))
    if organisation_id not in own:
        raise InvalidInput(
            errors={"organisation_id": "Du kan bara registrera placeringar för din egen kommun."}
        )
    return organisation_id


def may_read_any(user: Principal) -> bool:
    """True when the caller keeps or reads any placement register."""
    return bool(own_orgs(user) or jour_orgs(user))
