"""Police-assistance requests as records: what other features (statistics, archive, retention,
log review, placements) read about them.
Other features never import `portal.police.models`; they call here."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.store import stored_object
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.police.content import from_blob
from portal.police.models import PoliceRequest, PoliceRequestEvent
from portal.police.rules import ACTS, PURPOSES, STATUSES
from portal.records import (
    Anchored,
    Hit,
    Holding,
    Lifecycle,
    Person,
    Record,
    StoredFile,
    busy_flag,
    chunked,
    count_of,
    in_period,
    lifecycle_of,
    lifecycles_of,
    named_by,
    seek,
)


async def count_by_code(
    db: AsyncSession,
    *,
    jour_id: uuid.UUID,
    municipality_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> Counter[str]:
    """Requests made in [start, end) by the jour (for one municipality, or all), per the
    statistics' "Handr" code (handr_43_lvu, handr_45_lvm, handr_aterk): signed ones (a request
    still awaiting the chair, or revoked before it was signed, was never made)."""
    where = [
        PoliceRequest.jour_id == jour_id,
        PoliceRequest.created_at >= start,
        PoliceRequest.created_at < end,
        PoliceRequest.signed_at.is_not(None),
    ]
    if municipality_id is not None:
        where.append(PoliceRequest.organisation_id == municipality_id)
    return Counter(await db.scalars(select(PoliceRequest.stat_code).where(*where)))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The requests about the person with this blind index."""
    rows = await db.scalars(select(PoliceRequest.id).where(PoliceRequest.pnr_index == pnr_index))
    return set(rows)


async def forget_placement(db: AsyncSession, placement_id: uuid.UUID) -> None:
    """A placement is culled: requests that were checked against it keep what the check said
    (in their own encrypted content) and drop the link."""
    await db.execute(
        update(PoliceRequest)
        .where(PoliceRequest.placement_id == placement_id)
        .values(placement_id=None)
    )


# --- retention ---

KIND = "police_request"
LABEL = "Handräckning"
FINAL = ("executed", "refused", "revoked")
"""States after which nothing more happens to a request."""


def _life(r: PoliceRequest) -> Lifecycle:
    # The time runs from when the request was closed; an open one is never culled.
    in_progress = None if r.status in FINAL else "Begäran är inte avslutad."
    objects = [r.signed_object_id] if r.signed_object_id else []
    return Lifecycle(r.id, r.organisation_id, r.status_at, in_progress, objects)


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every request (made for `org_id`, or all) with its retention anchor and whether it is
    still open, as SQL."""
    stmt = select(
        PoliceRequest.id,
        PoliceRequest.status_at.label("anchor"),
        busy_flag(PoliceRequest.status.not_in(FINAL)).label("busy"),
    )
    if org_id:
        stmt = stmt.where(PoliceRequest.organisation_id == org_id)
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These requests with their retention anchor and signed PDF (one page of the list)."""
    return await lifecycles_of(db, PoliceRequest, _life, PoliceRequest.id, ids)


async def lifecycle(db: AsyncSession, request_id: uuid.UUID) -> Lifecycle | None:
    """One request's retention facts (None when it does not exist)."""
    return await lifecycle_of(db, PoliceRequest, request_id, _life)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer each request names (decrypted; read only when a rule needs it): one
    statement per `IN_CHUNK` requests."""
    named = named_by(ids)
    for chunk in chunked(ids):
        rows = await db.execute(
            select(PoliceRequest.id, PoliceRequest.pnr_enc).where(PoliceRequest.id.in_(chunk))
        )
        for request_id, pnr_enc in rows:
            named[request_id].append(
                vault.decrypt(pnr_enc, field_context(PoliceRequest.pnr_enc, request_id))
            )
    return named


async def persons_named(db: AsyncSession, vault: Vault, request_id: uuid.UUID) -> list[str]:
    """The personnummer the request names (decrypted; read only when a rule needs it)."""
    return (await persons_named_many(db, vault, [request_id]))[request_id]


async def cull(db: AsyncSession, request_id: uuid.UUID) -> None:
    """Delete the request and its events (the caller deletes the signed PDF)."""
    await db.execute(delete(PoliceRequestEvent).where(PoliceRequestEvent.request_id == request_id))
    await db.execute(delete(PoliceRequest).where(PoliceRequest.id == request_id))


# --- archive ---


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt = select(PoliceRequest).where(
        (PoliceRequest.jour_id if is_jour else PoliceRequest.organisation_id) == org_id,
        *in_period(PoliceRequest.created_at, since, until),
    )
    if pnr_index is not None:
        stmt = stmt.where(PoliceRequest.pnr_index == pnr_index)
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
    """Requests the jour made, or made for the municipality, in the period."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, PoliceRequest.created_at, PoliceRequest.id, after, limit)
    return [
        Hit(KIND, r.id, f"{LABEL} {ACTS[r.act]}", r.created_at, STATUSES[r.status].lower())
        for r in await db.scalars(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """Made on behalf of the municipality's committee (it owns it); the jour holds it too."""
    r = await db.get(PoliceRequest, record_id)
    return Holding(r.organisation_id, frozenset({r.organisation_id, r.jour_id})) if r else None


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The request decrypted, its life as steps, and the signed PDF."""
    r = await db.get(PoliceRequest, record_id)
    if r is None:
        return None
    stored = from_blob(
        vault.decrypt(r.content_enc, field_context(PoliceRequest.content_enc, r.id)),
        vault.decrypt(r.pnr_enc, field_context(PoliceRequest.pnr_enc, r.id)),
        act=r.act, purpose=r.purpose,
    )  # fmt: skip
    c = stored.content
    events = (
        await db.scalars(
            select(PoliceRequestEvent)
            .where(PoliceRequestEvent.request_id == r.id)
            .order_by(PoliceRequestEvent.at, PoliceRequestEvent.id)
        )
    ).all()
    names = await user_names(db, vault, [e.by for e in events])
    facts = [
        ("Person 1", f"{c.name} {c.personnummer}"),
        ("Lagrum", ACTS[r.act]),
        ("Hjälp med", PURPOSES[r.purpose]),
        ("Till", c.police_station),
        ("Finns troligen", c.whereabouts),
        ("Förs till", c.destination),
        ("Skäl", c.grounds),
        ("Kontroll av lagrum", stored.check_message),
        ("Kontrollerat mot", "; ".join(stored.checked_against)),
        ("Beslutas av", "Ordföranden" if r.decided_by == "chair" else "Socialjouren (delegation)"),
        ("Status", STATUSES[r.status]),
    ]
    steps = []
    for e in events:
        label = "Upprättad" if e.status == "created" else STATUSES.get(e.status, e.status)
        note = (
            vault.decrypt(e.note_enc, field_context(PoliceRequestEvent.note_enc, e.id))
            if e.note_enc
            else ""
        )
        steps.append((f"{label}{': ' + note if note else ''}", e.at, names.get(e.by, "")))
    signed = (
        StoredFile(f"handrackning-{r.id}.pdf", "application/pdf", stored_object(r, "signed_"))
        if r.signed_object_id
        else None
    )
    return Record(
        KIND, r.id, r.organisation_id, f"{LABEL} {ACTS[r.act]}", r.created_at, r.created_at,
        facts, steps, [], [signed] if signed else [], signed,
        [Person("Person 1", c.name, c.personnummer)],
    )  # fmt: skip
