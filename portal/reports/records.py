"""The incident reports as records: what other features (archive, retention, log review,
statistics, lookup) read about them. Other features never import `portal.reports.models`; they
call here.

A report is in the archive of the jour that wrote it and of the municipality it was addressed
to (the owner; the jour when none). Its content is decrypted by `queries.describe`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments import service as attachments
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
    StoredFile,
    chunked,
    count_of,
    in_chunks,
    in_period,
    lifecycles_with_files,
    named_by,
    seek,
)
from portal.reports.models import Report, ReportAction, ReportAddendum, ReportRead, ReportSubject
from portal.reports.queries import OWNER_TYPE
from portal.reports.queries import describe_many as describe_reports
from portal.reports.schemas import ReportOut
from portal.timefmt import format_local

# --- retention, log review, statistics ---


def _life(r: Report) -> Lifecycle:
    # A report belongs to its municipality; one without a member municipality to the jour.
    return Lifecycle(r.id, r.municipality_id or r.jour_id, r.occurred_at)


def retention_rows(org_id: uuid.UUID | None = None) -> Anchored:
    """Every report (owned by `org_id`, or all) with its retention anchor, as SQL. The owner is
    `_life`'s: the addressed municipality, or the jour for a report without a member
    municipality (such a report is in the jour's plan, and its archivist culls it)."""
    stmt = select(Report.id, Report.occurred_at.label("anchor"), literal(0).label("busy"))
    if org_id:
        stmt = stmt.where(
            or_(
                Report.municipality_id == org_id,
                and_(Report.municipality_id.is_(None), Report.jour_id == org_id),
            )
        )
    return Anchored(stmt)


async def lifecycles(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]:
    """These reports with their retention anchor and files (any number of ids)."""
    return await lifecycles_with_files(db, Report, _life, Report.id, OWNER_TYPE, ids)


async def lifecycle(db: AsyncSession, report_id: uuid.UUID) -> Lifecycle | None:
    """One report's retention facts (None when it does not exist)."""
    return next(iter(await lifecycles(db, [report_id])), None)


async def persons_named_many(
    db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The personnummer each report names (decrypted; subjects of unknown identity have none):
    one statement per `IN_CHUNK` reports."""
    named = named_by(ids)
    for chunk in chunked(ids):
        rows = await db.execute(
            select(ReportSubject.report_id, ReportSubject.id, ReportSubject.pnr_enc).where(
                ReportSubject.report_id.in_(chunk)
            )
        )
        for report_id, subject_id, pnr_enc in rows:
            if pnr_enc:
                named[report_id].append(
                    vault.decrypt(pnr_enc, field_context(ReportSubject.pnr_enc, subject_id))
                )
    return named


async def persons_named(db: AsyncSession, vault: Vault, report_id: uuid.UUID) -> list[str]:
    """The personnummer the report names (decrypted; subjects of unknown identity have none)."""
    return (await persons_named_many(db, vault, [report_id]))[report_id]


async def cull(db: AsyncSession, report_id: uuid.UUID) -> None:
    """Delete every row of the report (actions, subjects, reads, addenda, attachment rows).

    The caller deletes the files in the store afterwards.
    """
    for child in (ReportAction, ReportSubject, ReportRead, ReportAddendum):
        await db.execute(delete(child).where(child.report_id == report_id))
    await attachments.delete_rows(db, OWNER_TYPE, report_id)
    await name_index.forget(db, OWNER_TYPE, report_id)
    await db.execute(delete(Report).where(Report.id == report_id))


def ids_about_query(pnr_index: str | ColumnElement[str]) -> Select[uuid.UUID]:
    """The reports that name the person with this blind index, as a statement (the lookup asks
    whether any exist in the same query as its other checks; indexed)."""
    return select(ReportSubject.report_id).where(ReportSubject.pnr_index == pnr_index)


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The reports that name the person with this blind index."""
    return set(await db.scalars(ids_about_query(pnr_index)))


@dataclass(frozen=True, slots=True)
class StatReport:
    """The structured fields of one report that statistics count (codes, times, flags; no
    personal data)."""

    id: uuid.UUID
    municipality_id: uuid.UUID | None
    other_municipality: str | None
    code_list_version: str
    on_call: bool
    initiator_code: str
    category_code: str
    character_code: str
    minutes: int


@dataclass(frozen=True, slots=True)
class StatAction:
    """One action of a report, with the code-list version its code belongs to."""

    report_id: uuid.UUID
    action_code: str
    code_list_version: str


def _in_period(
    jour_id: uuid.UUID, municipality_id: uuid.UUID | None, start: datetime, end: datetime
) -> list[ColumnElement[bool]]:
    where = [Report.jour_id == jour_id, Report.occurred_at >= start, Report.occurred_at < end]
    if municipality_id is not None:
        where.append(Report.municipality_id == municipality_id)
    return where


async def stat_rows(
    db: AsyncSession,
    *,
    jour_id: uuid.UUID,
    municipality_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
) -> tuple[list[StatReport], list[StatAction]]:
    """The jour's reports (of one municipality, or all) that occurred in [start, end), and their
    actions: only the fields stored in clear for statistics."""
    where = _in_period(jour_id, municipality_id, start, end)
    reports = await db.execute(
        select(
            Report.id,
            Report.municipality_id,
            Report.other_municipality,
            Report.code_list_version,
            Report.on_call,
            Report.initiator_code,
            Report.category_code,
            Report.character_code,
            Report.minutes,
        ).where(*where)
    )
    actions = await db.execute(
        select(ReportAction.report_id, ReportAction.action_code, Report.code_list_version)
        .join(Report, Report.id == ReportAction.report_id)
        .where(*where)
    )
    return [StatReport(*r) for r in reports], [StatAction(*a) for a in actions]


async def minutes_per_municipality(
    db: AsyncSession, *, jour_id: uuid.UUID, start: datetime, end: datetime
) -> dict[uuid.UUID, int]:
    """Minutes spent on the jour's reports in [start, end), per member municipality (reports
    without a member municipality are not counted)."""
    rows = await db.execute(
        select(Report.municipality_id, func.sum(Report.minutes))
        .where(Report.municipality_id.is_not(None), *_in_period(jour_id, None, start, end))
        .group_by(Report.municipality_id)
    )
    return {m: int(n or 0) for m, n in rows if m is not None}


async def has_reports(db: AsyncSession, jour_id: uuid.UUID) -> bool:
    """Whether the jour has any report (the synthetic demo year is generated only when not)."""
    return bool(
        await db.scalar(select(func.count()).select_from(Report).where(Report.jour_id == jour_id))
    )


def _sealed(vault: Vault, table: FromClause, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with each value of an encrypted column (named without `_enc`) encrypted under
    its field context (portal.pii.field_context), so no caller spells a context."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        column = table.c.get(f"{name}_enc")
        if column is None:
            out[name] = value
        else:
            sealed = (
                value if value is None else vault.encrypt(value, field_context(column, row["id"]))
            )
            out[column.name] = sealed
    return out


async def insert_bulk(
    db: AsyncSession,
    vault: Vault,
    reports: Sequence[Mapping[str, Any]],
    subjects: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
) -> None:
    """Insert ready-made rows (column name to value) in batches: the synthetic demo year only;
    real reports are written through `portal.reports.service`. An encrypted column is given in
    clear under its name without `_enc` ("narrative", "pnr") and encrypted here."""
    report_rows = [_sealed(vault, Report.__table__, r) for r in reports]
    subject_rows = [_sealed(vault, ReportSubject.__table__, s) for s in subjects]
    for i in range(0, len(report_rows), 500):
        await db.execute(insert(Report), report_rows[i : i + 500])
    for i in range(0, len(subject_rows), 500):
        await db.execute(insert(ReportSubject), subject_rows[i : i + 500])
    for i in range(0, len(actions), 1000):
        await db.execute(insert(ReportAction), list(actions[i : i + 1000]))


# --- archive ---

KIND = "report"
LABEL = "Händelserapport"


def status_label(r: Report) -> str:
    """The archive's short status of a report."""
    return "kvitterad" if r.acknowledged_at else "ej kvitterad"


def _found(
    org_id: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None,
) -> Select[Any]:
    stmt = select(Report).where(
        (Report.jour_id if is_jour else Report.municipality_id) == org_id,
        *in_period(Report.occurred_at, since, until),
    )
    if pnr_index is not None:
        stmt = stmt.where(
            Report.id.in_(
                select(ReportSubject.report_id).where(ReportSubject.pnr_index == pnr_index)
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
    """Reports the jour wrote, or addressed to the municipality, that occurred in the period."""
    found = _found(org_id, is_jour, since, until, pnr_index)
    stmt = seek(found, Report.occurred_at, Report.id, after, limit)
    return [
        Hit(KIND, r.id, LABEL, r.occurred_at, status_label(r), r.unit_id)
        for r in await db.scalars(stmt)
    ]


async def holding(db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
    """The addressed municipality owns it (the jour when none); both hold it."""
    r = await db.get(Report, record_id)
    if r is None:
        return None
    holders = {r.jour_id} | ({r.municipality_id} if r.municipality_id else set())
    return Holding(r.municipality_id or r.jour_id, frozenset(holders))


def _when(value: datetime | None) -> str:
    return format_local(value) if value else ""


async def describe(db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
    """The whole report, decrypted, with its addenda, acknowledgement, reads and files."""
    return (await describe_many(db, vault, [record_id])).get(record_id)


async def describe_many(
    db: AsyncSession, vault: Vault, record_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Record]:
    """`describe` of several reports with one query per kind of row (the archive export reads
    records in batches of 100; any number is read `IN_CHUNK` at a time); missing ids are absent."""
    return dict(await in_chunks(record_ids, lambda chunk: _describe_chunk(db, vault, chunk)))


async def _describe_chunk(
    db: AsyncSession, vault: Vault, chunk: list[uuid.UUID]
) -> list[tuple[uuid.UUID, Record]]:
    reports = list(await db.scalars(select(Report).where(Report.id.in_(chunk))))
    if not reports:
        return []
    ids = [r.id for r in reports]
    outs = await describe_reports(db, vault, reports)
    reads: dict[uuid.UUID, list[ReportRead]] = {}
    for read in await db.scalars(
        select(ReportRead).where(ReportRead.report_id.in_(ids)).order_by(ReportRead.read_at)
    ):
        reads.setdefault(read.report_id, []).append(read)
    names = await user_names(db, vault, [x.user_id for rows in reads.values() for x in rows])
    files = await attachments.stored_attachments_of(db, vault, owner_type=OWNER_TYPE, owner_ids=ids)
    return [
        (
            r.id,
            _record(
                r,
                outs[r.id],
                reads.get(r.id, []),
                names,
                [
                    StoredFile(a.view.name, a.view.content_type, a.stored, a.view.id)
                    for a in files.get(r.id, [])
                ],
            ),
        )
        for r in reports
    ]


def _record(
    r: Report,
    out: ReportOut,
    reads: Sequence[ReportRead],
    names: Mapping[uuid.UUID, str],
    files: list[StoredFile],
) -> Record:
    facts = [
        ("Från", out.jour_name),
        ("Till", f"{out.municipality_name}{', ' + out.unit_name if out.unit_name else ''}"),
        ("Inträffade", _when(out.occurred_at)),
        ("Under beredskap", "ja" if out.on_call else "nej"),
        ("Kodlista", out.code_list_version),
        ("Initiativtagare", out.initiator.label),
        ("Kategori", out.category.label),
        ("Karaktär", out.character.label),
        ("Åtgärder", ", ".join(a.label for a in out.actions) or "inga"),
        ("Tid (minuter)", str(out.minutes)),
    ]
    persons: list[Person] = []
    for i, s in enumerate(out.subjects, 1):
        who = "identitet okänd" if s.identity_unknown else (s.personal_identity_number or "")
        facts.append((f"Person {i}", f"{s.name or ''} {who}".strip()))
        pnr = None if s.identity_unknown else (s.personal_identity_number or None)
        persons.append(Person(f"Person {i}", s.name or "", pnr))
    if out.assessment:
        facts += [
            ("Skyddsbedömning", out.assessment.assessment),
            ("Skyddsbedömning, underlag", out.assessment.facts),
            (
                "Skyddsbedömning gjord",
                f"{_when(out.assessment.assessed_at)} av {out.assessment.assessed_by}",
            ),
        ]
    facts += [
        ("Händelseförlopp", out.narrative),
        (
            "Uppföljning begärd",
            out.follow_up_urgency or ("ja" if out.follow_up_requested else "nej"),
        ),
    ]
    versions: list[tuple[str, datetime, str]] = [("Upprättad", out.created_at, out.author_name)]
    versions += [(f"Tillägg: {a.text}", a.created_at, a.author_name) for a in out.addenda]
    receipts: list[tuple[str, datetime, str]] = []
    if out.acknowledged_at:
        owner_name = out.follow_up_owner_name or ""
        receipts.append(
            (
                f"Kvitterad; uppföljning tas över av {owner_name}".rstrip(" av"),
                out.acknowledged_at,
                out.acknowledged_by_name or "",
            )
        )
    receipts += [("Läst", x.read_at, names.get(x.user_id, "")) for x in reads]
    return Record(
        KIND,
        r.id,
        r.municipality_id or r.jour_id,
        LABEL,
        r.occurred_at,
        r.created_at,
        facts,
        versions,
        receipts,
        files,
        persons=persons,
    )
