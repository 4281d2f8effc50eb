"""Who may see and change a placement.

A handler (POST_ADVISORIES: the municipality's IFO keeps the register, as it sends the
advisories) sees and changes only their own municipality's placements; jour staff
(READ_ADVISORIES) read the placements of their jour's member municipalities, through the
lookup and the police-assistance check. Anyone else, and any other tenant, gets a 404 that
looks exactly like a missing record, and the attempt is audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import tenancy
from portal.audit.service import Actor
from portal.errors import AuditNote, Forbidden
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
    return tenancy.visible(
        Placement.organisation_id, own_orgs(user), Placement.jour_id, jour_orgs(user)
    )


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
    return await tenancy.get_visible(
        db, Placement, placement_id, action, OBJECT_TYPE,
        own=own_orgs(user), jours=jour_orgs(user), lock=lock,
    )  # fmt: skip


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
    return tenancy.chosen_org(
        require_keeper(user), organisation_id, "organisation_id",
        choose="Välj vilken kommun som placerat.",
        not_yours="Du kan bara registrera placeringar för din egen kommun.",
    )  # fmt: skip


def may_read_any(user: Principal) -> bool:
    """True when the caller keeps or reads any placement register."""
    return bool(own_orgs(user) or jour_orgs(user))
