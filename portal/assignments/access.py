"""Who may see and change an assignment or a handover note.

A handler (SEND_ASSIGNMENTS) sends, follows and withdraws their own municipality's assignments;
jour staff and the jour head (CARRY_OUT_ASSIGNMENTS) see those addressed to their jour
(`Assignment.jour_id`, fixed when sent), accept them and record the outcome, and write and read
their jour's handover notes. Anyone else, and any other tenant, gets a 404 that looks exactly
like a missing record, and the attempt is audited (the AuditNote is written after the rollback).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal.assignments.models import Assignment, HandoverNote
from portal.audit.service import Actor
from portal.errors import AuditNote, Forbidden, InvalidInput, NotFound
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
    stmt = select(Assignment).where(Assignment.id == assignment_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    a = await db.scalar(stmt)
    if a is None:
        raise NotFound(audit=note(action, "not_found", assignment_id, None))
    if a.organisation_id not in own_orgs(user) and a.jour_id not in jour_orgs(user):
        raise NotFound(audit=note(action, "denied", assignment_id, a.organisation_id))
    return a


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
    own = require_sender(user)
    if organisation_id is None:
        if len(own) != 1:
            raise InvalidInput(errors={"organisation_id": "Välj vilken kommun som skickar."})
        organisation_id = next(iter(own))
    elif organisation_id not in own:
        raise InvalidInput(errors={"organisation_id": "Du kan bara skicka från din egen kommun."})
    units = [m.unit_id for m in user.memberships if m.org_id == organisation_id and m.unit_id]
    return organisation_id, units[0] if units else None


def writing_jour(user: Principal, jour_id: uuid.UUID | None) -> uuid.UUID:
    """The jour a new handover note is for (the caller's only one unless named)."""
    jours = require_jour(user, "handover.create")
    if jour_id is None:
        if len(jours) != 1:
            raise InvalidInput(errors={"jour_id": "Välj vilken socialjour anteckningen gäller."})
        return next(iter(jours))
    if jour_id not in jours:
        raise InvalidInput(errors={"jour_id": "Du kan bara skriva till din egen socialjour."})
    return jour_id


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
