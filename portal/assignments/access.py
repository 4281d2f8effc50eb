"""Who may see and change an assignment or a handover note.

A handler (SEND_ASSIGNMENTS) sends, follows and withdraws their own municipality's assignments;
jour staff and the jour head (CARRY_OUT_ASSIGNMENTS) see those addressed to their jour
(`Assignment.jour_id`, fixed when sent), accept them and record the outcome, and write and read
their jour's handover notes. Anyone else, and any other tenant, gets a 404 that looks exactly
like a missing record, and the attempt is audited (the AuditNote is written after the rollback).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import tenancy
from portal.assignments.models import Assignment, HandoverNote
from portal.audit.service import Actor
from portal.errors import AuditNote, Forbidden, NotFound
from portal.principal import Principal


def own_orgs(user: Principal) -> set[uuid.UUID]:
    """Municipalities whose assignments the caller sends and follows."""
    return user.orgs_with(Permission.SEND_ASSIGNMENTS)


def jour_orgs(user: Principal) -> set[uuid.UUID]:
    """Jours whose assignments and handover notes the caller handles."""
    return user.orgs_with(Permission.CARRY_OUT_ASSIGNMENTS)


def actor_for(user: Principal, a: Assignment) -> Actor:
    """The audit actor: acting for the sending municipality, else for the jour."""
    return user.actor(a.organisation_id if a.organisation_id in own_orgs(user) else a.jour_id)


def note(action: str, outcome: str, object_id: uuid.UUID, org: uuid.UUID | None,
         object_type: str = "assignment") -> AuditNote:  # fmt: skip
    """The audit record of a refused request."""
    return AuditNote(action, outcome, org, object_type, str(object_id))


async def get_visible(
    db: AsyncSession, user: Principal, assignment_id: uuid.UUID, action: str, *, lock: bool = False
) -> Assignment:
    """The assignment if the caller may see it; else NotFound, audited as not_found or denied."""
    return await tenancy.get_visible(
        db, Assignment, assignment_id, action, "assignment",
        own=own_orgs(user), jours=jour_orgs(user), lock=lock,
    )  # fmt: skip


async def get_for_jour(
    db: AsyncSession, user: Principal, assignment_id: uuid.UUID, action: str
) -> Assignment:
    """The assignment, locked, if it is addressed to the caller's jour; else 404 or 403."""
    a = await get_visible(db, user, assignment_id, action, lock=True)
    if a.jour_id not in jour_orgs(user):
        raise Forbidden(
            "Bara socialjouren kan ta emot och avrapportera uppdrag.",
            audit=note(action, "denied", a.id, a.organisation_id),
        )
    return a


async def get_for_sender(
    db: AsyncSession, user: Principal, assignment_id: uuid.UUID, action: str
) -> Assignment:
    """The assignment, locked, if the caller's municipality sent it; else 404 or 403."""
    a = await get_visible(db, user, assignment_id, action, lock=True)
    if a.organisation_id not in own_orgs(user):
        raise Forbidden(
            "Bara kommunen som skickade uppdraget kan återkalla det.",
            audit=note(action, "denied", a.id, a.organisation_id),
        )
    return a


def require_sender(user: Principal) -> set[uuid.UUID]:
    """Municipalities the caller may send assignments for; Forbidden (audited) when none."""
    own = own_orgs(user)
    if not own:
        raise Forbidden(
            "Bara handläggare i en kommun kan skicka uppdrag till socialjouren.",
            audit=AuditNote("assignment.create", "denied"),
        )
    return own


def require_jour(user: Principal, action: str) -> set[uuid.UUID]:
    """Jours the caller works for; Forbidden (audited) when none."""
    jours = jour_orgs(user)
    if not jours:
        raise Forbidden("Bara socialjouren har överlämningar.", audit=AuditNote(action, "denied"))
    return jours


def sender(
    user: Principal, organisation_id: uuid.UUID | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(sending municipality, sending unit) for a new assignment; the unit gets the e-mails."""
    organisation_id = tenancy.chosen_org(
        require_sender(user), organisation_id, "organisation_id",
        choose="Välj vilken kommun som skickar.",
        not_yours="Du kan bara skicka från din egen kommun.",
    )  # fmt: skip
    return organisation_id, user.unit_in(organisation_id)


def writing_jour(user: Principal, jour_id: uuid.UUID | None) -> uuid.UUID:
    """The jour a new handover note is for (the caller's only one unless named)."""
    return tenancy.chosen_org(
        require_jour(user, "handover.create"), jour_id, "jour_id",
        choose="Välj vilken socialjour anteckningen gäller.",
        not_yours="Du kan bara skriva till din egen socialjour.",
    )  # fmt: skip


async def get_note(
    db: AsyncSession, user: Principal, note_id: uuid.UUID, action: str
) -> HandoverNote:
    """A handover note of the caller's jour; else NotFound, audited."""
    n = await db.get(HandoverNote, note_id)
    if n is None:
        raise NotFound(audit=note(action, "not_found", note_id, None, "handover_note"))
    if n.jour_id not in jour_orgs(user):
        raise NotFound(audit=note(action, "denied", note_id, n.jour_id, "handover_note"))
    return n
