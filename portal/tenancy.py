"""Tenancy rules shared by the features whose records belong to a municipality and are
addressed to its jour (advisories, assignments, placements, police requests; DESIGN.md §6).

Threat: one tenant reading or probing another's records. A record of another organisation
answers exactly like a missing one (404), and the attempt is audited: `not_found` without an
owner, `denied` with the owning municipality, so the owner's log review sees who asked. Each
feature's `access.py` decides which of the caller's organisations count (`own`, `jours`); the
rule itself lives here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Set
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from portal.errors import AuditNote, InvalidInput, NotFound


class Tenanted(Protocol):
    """A record owned by a municipality and addressed to a jour."""

    @property
    def organisation_id(self) -> uuid.UUID:
        """The owning municipality."""

    @property
    def jour_id(self) -> uuid.UUID:
        """The jour it is addressed to."""


T = TypeVar("T", bound=Tenanted)


def visible(
    organisation: InstrumentedAttribute[uuid.UUID],
    own: Set[uuid.UUID],
    jour: InstrumentedAttribute[uuid.UUID],
    jours: Set[uuid.UUID],
) -> ColumnElement[bool]:
    """SQL condition: the record's municipality is one of `own` or its jour one of `jours`."""
    if not own and not jours:
        return false()
    return or_(organisation.in_(own), jour.in_(jours))


async def get_visible(
    db: AsyncSession,
    model: type[T],
    record_id: uuid.UUID,
    action: str,
    object_type: str,
    *,
    own: Set[uuid.UUID],
    jours: Set[uuid.UUID],
    lock: bool = False,
) -> T:
    """The record if its municipality is one of `own` or its jour one of `jours` (locked, and
    read afresh, when `lock`); else NotFound, audited as `action` not_found or denied."""
    row = await db.get(
        model, record_id, with_for_update=True if lock else None, populate_existing=lock
    )
    if row is None:
        raise NotFound(audit=AuditNote(action, "not_found", None, object_type, str(record_id)))
    if row.organisation_id not in own and row.jour_id not in jours:
        raise NotFound(
            audit=AuditNote(action, "denied", row.organisation_id, object_type, str(record_id))
        )
    return row


def chosen_org(
    orgs: Set[uuid.UUID], chosen: uuid.UUID | None, field: str, *, choose: str, not_yours: str
) -> uuid.UUID:
    """The organisation a new record is for: `chosen` when it is one of the caller's `orgs`, the
    only one when none is chosen; else InvalidInput on `field` (`choose` when the caller has
    several, `not_yours` when the chosen one is not theirs)."""
    if chosen is None:
        if len(orgs) != 1:
            raise InvalidInput(errors={field: choose})
        return next(iter(orgs))
    if chosen not in orgs:
        raise InvalidInput(errors={field: not_yours})
    return chosen
