"""The incident reports as records: what other features (archive, retention, log review,
statistics, lookup) read about them. Other features never import `portal.reports.models`; they
call here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments import service as attachments
from portal.lifecycle import Lifecycle
from portal.pii import Vault
from portal.reports.models import Report, ReportAction, ReportAddendum, ReportRead, ReportSubject
from portal.reports.service import OWNER_TYPE

# --- retention, log review, statistics ---


def _life(r: Report, objects: list[str]) -> Lifecycle:
    # A report belongs to its municipality; one without a member municipality to the jour.
    return Lifecycle(r.id, r.municipality_id or r.jour_id, r.occurred_at, None, objects)


async def lifecycles(db: AsyncSession, *, org_id: uuid.UUID | None = None) -> list[Lifecycle]:
    """Every report (of municipality `org_id`, or all) with its retention anchor and files."""
    ids: Select[uuid.UUID] = select(Report.id)
    stmt = select(Report)
    if org_id:
        ids = ids.where(Report.municipality_id == org_id)
        stmt = stmt.where(Report.municipality_id == org_id)
    keys = await attachments.object_keys(db, OWNER_TYPE, ids)
    return [_life(r, keys.get(r.id, [])) for r in await db.scalars(stmt)]


async def lifecycle(db: AsyncSession, report_id: uuid.UUID) -> Lifecycle | None:
    """One report's retention facts (None when it does not exist)."""
    r = await db.get(Report, report_id)
    if r is None:
        return None
    this: Select[uuid.UUID] = select(Report.id).where(Report.id == r.id)
    keys = await attachments.object_keys(db, OWNER_TYPE, this)
    return _life(r, keys.get(r.id, []))


async def persons_named(db: AsyncSession, vault: Vault, report_id: uuid.UUID) -> list[str]:
    """The personnummer the report names (decrypted; subjects of unknown identity have none)."""
    rows = await db.scalars(select(ReportSubject).where(ReportSubject.report_id == report_id))
    return [vault.decrypt(s.pnr_enc, f"report_subjects.pnr:{s.id}") for s in rows if s.pnr_enc]


async def cull(db: AsyncSession, report_id: uuid.UUID) -> None:
    """Delete every row of the report (actions, subjects, reads, addenda, attachment rows).

    The caller deletes the files in the store afterwards.
    """
    for child in (ReportAction, ReportSubject, ReportRead, ReportAddendum):
        await db.execute(delete(child).where(child.report_id == report_id))
    await attachments.delete_rows(db, OWNER_TYPE, report_id)
    await db.execute(delete(Report).where(Report.id == report_id))


async def ids_about(db: AsyncSession, pnr_index: str) -> set[uuid.UUID]:
    """The reports that name the person with this blind index."""
    rows = await db.scalars(
        select(ReportSubject.report_id).where(ReportSubject.pnr_index == pnr_index)
    )
    return set(rows)


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


async def insert_bulk(
    db: AsyncSession,
    reports: Sequence[Mapping[str, Any]],
    subjects: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
) -> None:
    """Insert ready-made rows (column name to value) in batches: the synthetic demo year only;
    real reports are written through `portal.reports.service`."""
    for i in range(0, len(reports), 500):
        await db.execute(insert(Report), list(reports[i : i + 500]))
    for i in range(0, len(subjects), 500):
        await db.execute(insert(ReportSubject), list(subjects[i : i + 500]))
    for i in range(0, len(actions), 1000):
        await db.execute(insert(ReportAction), list(actions[i : i + 1000]))
