"""The advisories as records: what other features (archive, retention, log review, statistics,
lookup) read about them. Other features never import `portal.advisories.models`; they call here.

The archive reads them here too, with the advisory page's own rules: version labels are
`texts.KINDS`, the content is decrypted by `queries.content_of`. An advisory is in the archive
of the municipality that sent it (the owner) and of the jour that received it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories import texts
from portal.advisories.models import (
    Advisory,
    AdvisoryAcknowledgement,
    AdvisorySubject,
    AdvisoryVersion,
)
from portal.advisories.queries import OWNER_TYPE, content_of
from portal.attachments import service as attachments
from portal.db.base import utcnow
from portal.lookup import names as name_index
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
    attached_files,
    chunked,
    count_of,
    in_period,
    lifecycles_with_files,
    named_by,
    seek,
)
from portal.timefmt import format_local

# --- retention, log review, statistics ---


def _life(a: Advisory) -> Lifecycle:
    # The time runs from the end of validity, or from the withdrawal if that came later.
    anchor = max(a.valid_until, a.withdrawn_at or a.valid_until)
    return Lifecycle(a.id, a.organisation_id, anchor)


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every advisory (of `org_id`, or all) with its retention anchor, as SQL."""
    anchor = case(
        (Advisory.withdrawn_at > Advisory.valid_until, Advisory.withdrawn_at),
        else_=Advisory.valid_until,
    )
    stmt = select(Advisory.id, anchor.label("anchor"), literal(0).label("busy"))
    if org_id:
        stmt = stmt.where(Advisory.organisation_id == org_id)
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These advisories with their retention anchor and files (any number of ids)."""
    return await lifecycles_with_files(db, Advisory, _life, Advisory.id, OWNER_TYPE, ids)


async def lifecycle(db: AsyncSession, advisory_id: uuid.UUID) -> Lifecycle | None:
    """One advisory's retention facts (None when it does not exist)."""
    return next(iter(await lifecycles(db, [advisory_id])), None)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer each advisory names, every version's subjects (decrypted; read only
    when a rule needs them): one statement per `IN_CHUNK` advisories."""
    named = named_by(ids)
    for chunk in chunked(ids):
        rows = await db.execute(
            select(AdvisorySubject.advisory_id, AdvisorySubject.id, AdvisorySubject.pnr_enc).where(
                AdvisorySubject.advisory_id.in_(chunk)
            )
        )
        for advisory_id, subject_id, pnr_enc in rows:
            named[advisory_id].append(
                vault.decrypt(pnr_enc, field_context(AdvisorySubject.pnr_enc, subject_id))
            )
    return named


async def persons_named(db: AsyncSession, vault: Vault, advisory_id: uuid.UUID) -> list[str]:
    """The personnummer the advisory names (decrypted; read only when a rule needs them)."""
    return (await persons_named_many(db, vault, [advisory_id]))[advisory_id]


async def cull(db: AsyncSession, advisory_id: uuid.UUID) -> None:
    """Delete every row of the advisory (subjects, acknowledgements, versions, attachment rows).

    The caller deletes the files in the store afterwards, in the same transaction's scope.
    """
    for model in (AdvisorySubject, AdvisoryAcknowledgement, AdvisoryVersion):
        await db.execute(delete(model).where(model.advisory_id == advisory_id))
    await attachments.delete_rows(db, OWNER_TYPE, advisory_id)
    await name_index.forget(db, OWNER_TYPE, advisory_id)
    await db.execute(delete(Advisory).where(Advisory.id == advisory_id))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The advisories that name the person with this blind index."""
    rows = await db.scalars(
        select(AdvisorySubject.advisory_id).where(AdvisorySubject.pnr_index == pnr_index)
    )
    return set(rows)


# --- archive ---

KIND = "advisory"
LABEL = "Avisering"


def status_label(adv: Advisory, now: datetime | None = None) -> str:
    """The archive's short status of an advisory: återkallad, utgången or aktiv (at `now`)."""
    if adv.status == "withdrawn":
        return "återkallad"
    return "utgången" if adv.valid_until <= (now or utcnow()) else "aktiv"


LEGAL_BASIS_LABELS = {"lvu": "LVU", "lvm": "LVM", "sol": "SoL", "none": "Ingen"}
"""The advisory's legal basis as the archive and its titles name it, short."""


def legal_basis_label(code: str) -> str:
    """The legal basis as a short Swedish label: LVU, LVM, SoL or Ingen."""
    return LEGAL_BASIS_LABELS.get(code, code)


def version_label(kind: str) -> str:
    """A version's kind as the advisory page names it (Inlagd, Ändrad, Bekräftad)."""
    return texts.KINDS.get(kind, kind)


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt: Select[Any] = select(Advisory).where(
        (Advisory.jour_id if is_jour else Advisory.organisation_id) == org_id,
        *in_period(Advisory.created_at, since, until),
    )
    if pnr_index is not None:
        stmt = stmt.where(
            Advisory.id.in_(
                select(AdvisorySubject.advisory_id).where(AdvisorySubject.pnr_index == pnr_index)
            )
        )
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
    """Advisories the municipality sent, or the jour received, created in the period."""
    stmt = seek(
        _found(org_id, is_jour, since, until, pnr_index),
        Advisory.created_at, Advisory.id, after, limit,
    )  # fmt: skip
    return [
        Hit(
            KIND,
            a.id,
            f"{LABEL} ({legal_basis_label(a.legal_basis)}), version {a.current_version}",
            a.created_at,
            status_label(a),
            a.unit_id,
        )
        for a in await db.scalars(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The sending municipality owns it; it and the receiving jour hold it."""
    a = await db.get(Advisory, record_id)
    return Holding(a.organisation_id, frozenset({a.organisation_id, a.jour_id})) if a else None


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The advisory's current content, every version and acknowledgement, and its files."""
    a = await db.get(Advisory, record_id)
    if a is None:
        return None
    versions = (
        await db.scalars(
            select(AdvisoryVersion)
            .where(AdvisoryVersion.advisory_id == a.id)
            .order_by(AdvisoryVersion.version)
        )
    ).all()
    acks = (
        await db.scalars(
            select(AdvisoryAcknowledgement)
            .where(AdvisoryAcknowledgement.advisory_id == a.id)
            .order_by(AdvisoryAcknowledgement.at)
        )
    ).all()
    names = await user_names(
        db, vault, [v.created_by for v in versions] + [k.user_id for k in acks]
    )
    latest = versions[-1]
    content = await content_of(db, vault, latest)
    facts: list[tuple[str, str]] = []
    persons: list[Person] = []
    for i, s in enumerate(content.subjects, 1):
        facts.append((f"Person {i}", f"{s.name or ''} {s.personnummer or 'identitet okänd'}"))
        persons.append(Person(f"Person {i}", s.name or "", s.personnummer or None))
        if s.description:
            facts.append((f"Person {i}, beskrivning", s.description))
    facts += [
        ("Planering", content.plan),
        ("Alternativa planeringar", content.alternative_plans),
        ("Instruktioner", content.instructions),
        ("Lagrum", legal_basis_label(content.legal_basis)),
        ("Kontakt", f"{content.contact_name} {content.contact_phone}"),
        ("Giltig till", format_local(latest.valid_until) if latest.valid_until else ""),
        ("Status", status_label(a)),
    ]
    return Record(
        KIND,
        a.id,
        a.organisation_id,
        f"{LABEL} ({legal_basis_label(a.legal_basis)})",
        a.created_at,
        a.created_at,
        facts,
        [
            (
                f"Version {v.version}: {version_label(v.kind)}",
                v.created_at,
                names.get(v.created_by, ""),
            )
            for v in versions
        ],
        [
            (f"Kvitterad av jouren (version {k.version})", k.at, names.get(k.user_id, ""))
            for k in acks
        ],
        await attached_files(db, vault, OWNER_TYPE, a.id),
        persons=persons,
    )
