"""Assignments as records: what other features (archive, retention, log review) read about
them. Other features never import `portal.assignments.models`; they call here.

An assignment is in the archive of the municipality that sent it (the owner) and of the jour
that carried it out. Handover notes are the jour's working notes between shifts, not records
of a case: they are not archived (docs/assignments.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.assignments import queries
from portal.assignments.content import KINDS, OPEN, STATUS
from portal.assignments.models import Assignment
from portal.assignments.queries import Summary, decrypt_content
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.principal import Principal
from portal.records import (
    Anchored,
    Hit,
    Holding,
    Lifecycle,
    Person,
    Record,
    busy_flag,
    chunked,
    count_of,
    in_period,
    lifecycle_of,
    lifecycles_of,
    named_by,
    seek,
)
from portal.timefmt import format_local

KIND = "assignment"
LABEL = "Uppdrag"

__all__ = [
    "KIND",
    "KINDS",
    "LABEL",
    "STATUS",
    "Summary",
    "count",
    "cull",
    "describe",
    "find_by_person",
    "holding",
    "ids_about",
    "lifecycle",
    "lifecycles",
    "persons_named",
    "persons_named_many",
    "retention_rows",
    "search",
    "status_label",
]

# --- lookup ---


async def find_by_person(
    db: AsyncSession, vault: Vault, user: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Open assignments about the person with this blind index (and those closed within a
    week) that the caller may see, open ones first (not audited: the caller audits)."""
    return await queries.find_by_pnr_index(db, vault, user, pnr_index, now=now)


# --- retention, log review ---


def _life(a: Assignment) -> Lifecycle:
    # The time runs from when it was closed (done, not done or withdrawn); an open one waits.
    closed = a.outcome_at or a.withdrawn_at
    in_progress = "Uppdraget är inte avslutat." if a.status in OPEN else None
    return Lifecycle(a.id, a.organisation_id, closed or a.due_at, in_progress, [])


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every assignment (of `org_id`, or all) with its retention anchor and whether it is
    still open, as SQL."""
    stmt = select(
        Assignment.id,
        func.coalesce(Assignment.outcome_at, Assignment.withdrawn_at, Assignment.due_at).label(
            "anchor"
        ),
        busy_flag(Assignment.status.in_(OPEN)).label("busy"),
    )
    if org_id:
        stmt = stmt.where(Assignment.organisation_id == org_id)
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These assignments with their retention anchor (one page of retention's list)."""
    return await lifecycles_of(db, Assignment, _life, Assignment.id, ids)


async def lifecycle(db: AsyncSession, assignment_id: uuid.UUID) -> Lifecycle | None:
    """One assignment's retention facts (None when it does not exist)."""
    return await lifecycle_of(db, Assignment, assignment_id, _life)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer each assignment names, if any (decrypted; read only when a rule needs
    them): one statement per `IN_CHUNK` assignments."""
    named = named_by(ids)
    for chunk in chunked(ids):
        rows = await db.execute(
            select(Assignment.id, Assignment.pnr_enc).where(Assignment.id.in_(chunk))
        )
        for assignment_id, pnr_enc in rows:
            if pnr_enc:
                named[assignment_id].append(
                    vault.decrypt(pnr_enc, field_context(Assignment.pnr_enc, assignment_id))
                )
    return named


async def persons_named(db: AsyncSession, vault: Vault, assignment_id: uuid.UUID) -> list[str]:
    """The personnummer the assignment names (decrypted; read only when a rule needs them)."""
    return (await persons_named_many(db, vault, [assignment_id]))[assignment_id]


async def cull(db: AsyncSession, assignment_id: uuid.UUID) -> None:
    """Delete the assignment's row (it has no files)."""
    await db.execute(delete(Assignment).where(Assignment.id == assignment_id))


def ids_about_query(pnr_index: str | ColumnElement[str]) -> Select[uuid.UUID]:
    """The assignments about the person with this blind index, as a statement (the lookup asks
    whether any exist in the same query as its other checks; indexed)."""
    return select(Assignment.id).where(Assignment.pnr_index == pnr_index)


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The assignments about the person with this blind index."""
    return set(await db.scalars(ids_about_query(pnr_index)))


# --- archive ---


def status_label(a: Assignment) -> str:
    """The short status, as the assignment page says it."""
    return STATUS.get(a.status, a.status).lower()


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt = select(Assignment).where(
        (Assignment.jour_id if is_jour else Assignment.organisation_id) == org_id,
        *in_period(Assignment.created_at, since, until),
    )
    if pnr_index is not None:
        stmt = stmt.where(Assignment.pnr_index == pnr_index)
    return stmt


async def count(
    db: AsyncSession,
    org_id: uuid.UUID,
    *,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> int:
    """How many records `search` finds."""
    return await count_of(db, _found(org_id, is_jour, since, until, pnr_index))


async def search(
    db: AsyncSession,
    org_id: uuid.UUID,
    *,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
    after: Key | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """Assignments the municipality sent, or the jour received, sent in the period."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, Assignment.created_at, Assignment.id, after, limit)
    return [
        Hit(
            KIND,
            a.id,
            f"{LABEL}: {KINDS.get(a.kind, a.kind)}",
            a.created_at,
            status_label(a),
            a.unit_id,
        )
        for a in await db.scalars(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The sending municipality owns it; it and the jour hold it."""
    a = await db.get(Assignment, record_id)
    return Holding(a.organisation_id, frozenset({a.organisation_id, a.jour_id})) if a else None


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The assignment's content, its steps (sent, accepted, outcome or withdrawal) decrypted."""
    a = await db.get(Assignment, record_id)
    if a is None:
        return None
    c = decrypt_content(vault, a)
    names = await user_names(db, vault, [a.created_by, a.accepted_by, a.outcome_by,
                                         a.withdrawn_by])  # fmt: skip
    facts: list[tuple[str, str]] = [("Typ", KINDS.get(a.kind, a.kind)), ("Uppdrag", c.task)]
    persons: list[Person] = []
    if c.subject_name or c.personnummer:
        facts.append(("Person 1", f"{c.subject_name} {c.personnummer or ''}".strip()))
        persons.append(Person("Person 1", c.subject_name, c.personnummer))
    facts += [
        ("Senast", format_local(a.due_at)),
        ("Beställare", f"{c.requester_name} {c.contact_phone}"),
        ("Återkoppling", c.report_back),
        ("Status", status_label(a)),
    ]
    if a.outcome_enc:
        facts.append(
            ("Resultat", vault.decrypt(a.outcome_enc, field_context(Assignment.outcome_enc, a.id)))
        )
    if a.withdraw_reason_enc:
        reason = vault.decrypt(
            a.withdraw_reason_enc, field_context(Assignment.withdraw_reason_enc, a.id)
        )
        facts.append(("Skäl för återkallelse", reason))
    steps: list[tuple[str, datetime, str]] = [
        ("Skickat", a.created_at, names.get(a.created_by, ""))
    ]
    if a.accepted_at and a.accepted_by:
        steps.append(("Accepterat av jouren", a.accepted_at, names.get(a.accepted_by, "")))
    if a.outcome_at and a.outcome_by:
        label = "Utfört" if a.status == "done" else "Inte utfört"
        steps.append((label, a.outcome_at, names.get(a.outcome_by, "")))
    if a.withdrawn_at and a.withdrawn_by:
        steps.append(("Återkallat", a.withdrawn_at, names.get(a.withdrawn_by, "")))
    return Record(
        KIND,
        a.id,
        a.organisation_id,
        f"{LABEL}: {KINDS.get(a.kind, a.kind)}",
        a.created_at,
        a.created_at,
        facts,
        steps,
        [],
        persons=persons,
    )
