"""Who may see and change an advisory (DESIGN.md §6, requirements 22-23).

A handler (POST_ADVISORIES) sees and changes only their own municipality's advisories; jour
staff (READ_ADVISORIES) see those addressed to their jour (`Advisory.jour_id`, fixed when the
advisory is posted). Anyone else, and any other tenant, gets a 404 that looks exactly like a
missing record, and the attempt is audited (the AuditNote is written after the rollback).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, bindparam, or_
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import tenancy
from portal.advisories.models import Advisory
from portal.audit.service import Actor
from portal.errors import AuditNote, Conflict, Forbidden
from portal.principal import Principal


def own_orgs(user: Principal) -> set[uuid.UUID]:
    """Municipalities whose advisories the caller posts and changes."""
    return user.orgs_with(Permission.POST_ADVISORIES)


def jour_orgs(user: Principal) -> set[uuid.UUID]:
    """Jours whose incoming advisories the caller reads and acknowledges."""
    return user.orgs_with(Permission.READ_ADVISORIES)


def visible(user: Principal) -> ColumnElement[bool]:
    """SQL condition: the advisory is the caller's municipality's or addressed to their jour."""
    return tenancy.visible(
        Advisory.organisation_id, own_orgs(user), Advisory.jour_id, jour_orgs(user)
    )


VISIBLE = or_(
    Advisory.organisation_id.in_(bindparam("visible_own", expanding=True)),
    Advisory.jour_id.in_(bindparam("visible_jours", expanding=True)),
)
"""`visible(user)` as a condition with parameters (`visible_params(user)`), for statements built
once at import (an empty list matches nothing, as `visible` does for a caller with no role)."""


def visible_params(user: Principal) -> dict[str, list[uuid.UUID]]:
    """The parameters of VISIBLE for `user`."""
    return {"visible_own": sorted(own_orgs(user)), "visible_jours": sorted(jour_orgs(user))}


def actor_for(user: Principal, adv: Advisory) -> Actor:
    """The audit actor: acting for the sending municipality, else for the jour."""
    return user.actor(adv.organisation_id if adv.organisation_id in own_orgs(user) else adv.jour_id)


def note(action: str, outcome: str, adv_id: uuid.UUID, org: uuid.UUID | None) -> AuditNote:
    """The audit record of a refused request about an advisory."""
    return AuditNote(action, outcome, org, "advisory", str(adv_id))


async def get_visible(
    db: AsyncSession, user: Principal, advisory_id: uuid.UUID, action: str, *, lock: bool = False
) -> Advisory:
    """The advisory if the caller may see it; else NotFound, audited as not_found or denied."""
    return await tenancy.get_visible(
        db, Advisory, advisory_id, action, "advisory",
        own=own_orgs(user), jours=jour_orgs(user), lock=lock,
    )  # fmt: skip


async def get_for_sender(
    db: AsyncSession, user: Principal, advisory_id: uuid.UUID, action: str, *, lock: bool = True
) -> Advisory:
    """The advisory, locked (unless `lock` is False), if the caller's municipality sent it and
    it is still active."""
    adv = await get_visible(db, user, advisory_id, action, lock=lock)
    if adv.organisation_id not in own_orgs(user):
        raise Forbidden(
            "Bara kommunen som skickade aviseringen kan ändra den.",
            audit=note(action, "denied", advisory_id, adv.organisation_id),
        )
    if adv.status != "active":
        raise Conflict("Aviseringen är återkallad och kan inte ändras.")
    return adv


def is_jour_reader(user: Principal) -> bool:
    """True when the caller reads advisories for a jour."""
    return bool(jour_orgs(user))


def require_sender(user: Principal) -> set[uuid.UUID]:
    """Organisations the caller may post advisories for; Forbidden (audited) when none."""
    own = own_orgs(user)
    if not own:
        raise Forbidden(
            "Bara handläggare i en kommun kan lägga in aviseringar.",
            audit=AuditNote("advisory.create", "denied"),
        )
    return own


def sender(
    user: Principal, organisation_id: uuid.UUID | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(sending municipality, sending unit) for a new advisory; the unit gets the reminders."""
    organisation_id = tenancy.chosen_org(
        require_sender(user), organisation_id, "organisation_id",
        choose="Välj vilken kommun som skickar.",
        not_yours="Du kan bara skicka från din egen kommun.",
    )  # fmt: skip
    return organisation_id, user.unit_in(organisation_id)
