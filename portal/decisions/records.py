"""The chair decisions as records: what other features (archive, retention, log review,
statistics, lookup) read about them. Other features never import `portal.decisions.models`; they
call here.

The archive's one holder rule (`service.archive_holders` / `archive_filter`): the jour holds a
decision from the start, the municipality (the owner) once it is sent for signature; a draft is
the jour's working material. The content is decrypted by `service.to_out`; the signed PDF/A is
the decision's one stored file.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.store import stored_object
from portal.decisions.models import Decision
from portal.decisions.rules import KINDS
from portal.decisions.service import STATUS_LABELS, archive_filter, archive_holders, to_out
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
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
from portal.timefmt import format_local

# --- retention, log review, statistics ---

FINISHED = ("delivered", "lifted", "cancelled")
"""States after which nothing more happens to a decision (it may be culled when its time is up)."""


def _life(d: Decision) -> Lifecycle:
    busy = None if d.status in FINISHED else "Beslutet är inte avslutat."
    keys = [d.signed_object_id] if d.signed_object_id else []
    return Lifecycle(d.id, d.municipality_id, d.oral_decision_at, busy, keys)


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every decision (in municipality `org_id`'s archive, or all) with its retention anchor and
    whether it is still in progress, as SQL."""
    stmt = select(
        Decision.id,
        Decision.oral_decision_at.label("anchor"),
        busy_flag(Decision.status.not_in(FINISHED)).label("busy"),
    )
    if org_id:
        # The municipality's decisions; a jour's draft is not in its archive.
        stmt = stmt.where(archive_filter(org_id, is_jour=False))
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These decisions with their retention anchor, the signed PDF, and whether each is still
    in progress (one page of retention's list)."""
    return await lifecycles_of(db, Decision, _life, Decision.id, ids)


async def lifecycle(db: AsyncSession, decision_id: uuid.UUID) -> Lifecycle | None:
    """One decision's retention facts (None when it does not exist). Its owner is the
    municipality even while it is a draft, which the municipality's archive does not hold yet
    (`holding`): retention places a hold only on a record its owner's archive holds."""
    return await lifecycle_of(db, Decision, decision_id, _life)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer of each decision's subject (decrypted), if it has one: one statement
    per `IN_CHUNK` decisions."""
    named = named_by(ids)
    for chunk in chunked(ids):
        rows = await db.execute(
            select(Decision.id, Decision.subject_enc).where(Decision.id.in_(chunk))
        )
        for decision_id, subject_enc in rows:
            subject = json.loads(
                vault.decrypt(subject_enc, field_context(Decision.subject_enc, decision_id))
            )
            if subject.get("pnr"):
                named[decision_id].append(subject["pnr"])
    return named


async def persons_named(db: AsyncSession, vault: Vault, decision_id: uuid.UUID) -> list[str]:
    """The personnummer of the decision's subject (decrypted), if it has one."""
    return (await persons_named_many(db, vault, [decision_id]))[decision_id]


async def cull(db: AsyncSession, decision_id: uuid.UUID) -> None:
    """Delete the decision's row (the caller deletes the signed PDF in the store afterwards)."""
    await db.execute(delete(Decision).where(Decision.id == decision_id))


def ids_about_query(pnr_index: str | ColumnElement[str]) -> Select[uuid.UUID]:
    """The decisions about the person with this blind index, as a statement (the lookup asks
    whether any exist in the same query as its other checks; indexed)."""
    return select(Decision.id).where(Decision.subject_pnr_index == pnr_index)


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The decisions about the person with this blind index."""
    return set(await db.scalars(ids_about_query(pnr_index)))


async def count_by_kind(
    db: AsyncSession,
    *,
    jour_id: uuid.UUID,
    municipality_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> list[tuple[str, str, int]]:
    """Decisions made orally in [start, end) by the jour (about one municipality, or all), per
    kind: (kind, the act it is made under, how many), every kind in order, zeros included.
    Neither drafts nor cancelled ones are counted (those were never made)."""
    where = [
        Decision.jour_id == jour_id,
        Decision.oral_decision_at >= start,
        Decision.oral_decision_at < end,
        Decision.status.not_in(("draft", "cancelled")),
    ]
    if municipality_id is not None:
        where.append(Decision.municipality_id == municipality_id)
    counted = Counter(await db.scalars(select(Decision.kind).where(*where)))
    return [(k, rule.act, counted.get(k, 0)) for k, rule in KINDS.items()]


# --- archive ---

KIND = "decision"
LABEL = "Ordförandebeslut"


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt = select(Decision).where(
        archive_filter(org_id, is_jour), *in_period(Decision.oral_decision_at, since, until)
    )
    if pnr_index is not None:
        stmt = stmt.where(Decision.subject_pnr_index == pnr_index)
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
    """Decisions in the organisation's archive (never a municipality's draft), decided orally
    in the period."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, Decision.oral_decision_at, Decision.id, after, limit)
    return [
        Hit(
            KIND,
            d.id,
            f"{LABEL} {KINDS[d.kind].act}",
            d.oral_decision_at,
            STATUS_LABELS.get(d.status, d.status),
        )
        for d in await db.scalars(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The municipality owns it; the jour holds it, the municipality once it is not a draft."""
    d = await db.get(Decision, record_id)
    return Holding(d.municipality_id, frozenset(archive_holders(d))) if d else None


def signed_file(d: Decision) -> StoredFile | None:
    """The signed PDF/A as stored (None before signing)."""
    if d.signed_object_id is None:
        return None
    return StoredFile(f"beslut-{d.id}.pdf", "application/pdf", stored_object(d, "signed_"))


def _when(value: datetime | None) -> str:
    return format_local(value) if value else ""


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The decision, decrypted, with its deadlines, its drafting and signing, and the signed PDF."""
    d = await db.get(Decision, record_id)
    if d is None:
        return None
    out = await to_out(db, vault, d)
    names = await user_names(db, vault, [d.drafted_by])
    facts = [
        ("Beslut", f"{out.title} ({out.act})"),
        ("Nämnd", out.committee),
        ("Muntligt beslut", _when(out.oral_decision_at)),
        ("Beslutsfattare", f"{out.decision_maker}, {out.decision_maker_function}"),
        ("Person", f"{out.subject_name} {out.subject_personal_identity_number or ''}".strip()),
        ("Omständigheter", out.facts),
        ("Skäl", out.grounds),
        ("Placering", out.placement),
        ("Status", out.status_label),
        ("Dokumentets SHA-256 (det som skrevs under)", out.document_sha256 or ""),
    ]
    facts += [
        (f"Frist: {x.label}", f"{_when(x.due) or 'vid nästa sammanträde'} ({x.basis})")
        for x in out.deadlines
    ]
    versions = [("Upprättad (utkast)", d.created_at, names.get(d.drafted_by, ""))]
    if d.submitted_at:
        versions.append(("Skickad för underskrift", d.submitted_at, names.get(d.drafted_by, "")))
    receipts: list[tuple[str, datetime, str]] = []
    if d.signed_at:
        receipts.append(("Underskriven (PAdES-B-LTA)", d.signed_at, out.decision_maker))
    if d.delivered_at:
        receipts.append(("Levererad till kommunen", d.delivered_at, "Jourpost"))
    signed = signed_file(d)
    return Record(
        KIND,
        d.id,
        d.municipality_id,
        f"{LABEL} {out.act}",
        d.oral_decision_at,
        d.created_at,
        facts,
        versions,
        receipts,
        [signed] if signed else [],
        signed,
        [Person("Person", out.subject_name or "", out.subject_personal_identity_number or None)],
    )
