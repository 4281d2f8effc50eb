"""Who may see and change an incident report (DESIGN.md §6).

A report is visible to the jour that wrote it (WRITE_REPORTS) and to the receiving
municipality's handlers (READ_REPORTS): a handler whose role is scoped to a unit sees that
unit's reports; a handler without a unit sees every unit of the municipality. Nobody else
learns that a report exists: a wrong-tenant id answers 404 exactly like a missing one, and both
are audited (the AuditNote is written after the request's transaction rolled back). Visible but
not allowed (the jour acknowledging, a handler writing an addendum) answers 403, audited too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import ROLE_PERMISSIONS, Permission, Role
from portal.errors import AuditNote, Forbidden, NotFound
from portal.principal import Principal
from portal.reports.models import Report

READER_ROLES = tuple(r.value for r in Role if Permission.READ_REPORTS in ROLE_PERMISSIONS[r])
"""Roles that read a municipality's reports (and can take over a follow-up)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a principal may see: jours they write for, municipalities and units they read for."""

    jours: frozenset[uuid.UUID]
    """Jours where the user holds WRITE_REPORTS."""
    municipalities: frozenset[uuid.UUID]
    """Municipalities where the user reads every unit's reports."""
    units: frozenset[uuid.UUID]
    """Units whose reports the user reads (unit-scoped handler roles)."""

    def writes(self, report: Report) -> bool:
        """The user is on the writing jour's side of this report."""
        return report.jour_id in self.jours

    def receives(self, report: Report) -> bool:
        """The user is on the receiving municipality's side of this report."""
        return report.municipality_id in self.municipalities or (
            report.unit_id is not None and report.unit_id in self.units
        )

    def sees(self, report: Report) -> bool:
        """The user may know this report exists."""
        return self.writes(report) or self.receives(report)

    def receiving_clause(self) -> ColumnElement[bool]:
        """SQL: reports addressed to the user's municipalities or units."""
        parts: list[ColumnElement[bool]] = []
        if self.municipalities:
            parts.append(Report.municipality_id.in_(self.municipalities))
        if self.units:
            parts.append(Report.unit_id.in_(self.units))
        return or_(*parts) if parts else false()

    def sent_clause(self) -> ColumnElement[bool]:
        """SQL: reports written by the user's jours."""
        return Report.jour_id.in_(self.jours) if self.jours else false()

    def visible_clause(self) -> ColumnElement[bool]:
        """SQL: every report the user may see."""
        if not self.jours:
            return self.receiving_clause()
        return or_(Report.jour_id.in_(self.jours), self.receiving_clause())


NOBODY = Scope(frozenset(), frozenset(), frozenset())
"""The scope of a reader outside both sides (the archive, after its own ownership check)."""


def scope_of(user: Principal) -> Scope:
    """The principal's report scope from their live memberships."""
    jours = user.orgs_with(Permission.WRITE_REPORTS)
    munis: set[uuid.UUID] = set()
    units: set[uuid.UUID] = set()
    for m in user.memberships:
        if Permission.READ_REPORTS not in ROLE_PERMISSIONS[m.role]:
            continue
        if m.unit_id is None:
            munis.add(m.org_id)
        else:
            units.add(m.unit_id)
    return Scope(frozenset(jours), frozenset(munis), frozenset(units))


def owner_org(report: Report) -> uuid.UUID:
    """The organisation that owns the report's audit entries: the municipality, else the jour."""
    return report.municipality_id or report.jour_id


def note(action: str, outcome: str, report_id: uuid.UUID, report: Report | None) -> AuditNote:
    """The audit record of a refused request about a report."""
    return AuditNote(
        action,
        outcome,
        owner_org_id=owner_org(report) if report else None,
        object_type="report",
        object_id=str(report_id),
    )


def require_writer(user: Principal) -> frozenset[uuid.UUID]:
    """The jours the principal writes reports for; Forbidden (audited) when none."""
    jours = scope_of(user).jours
    if not jours:
        raise Forbidden(audit=AuditNote("report.create", "denied", object_type="report"))
    return jours


async def get_visible(
    db: AsyncSession, user: Principal, report_id: uuid.UUID, action: str
) -> tuple[Report, Scope]:
    """The report if the principal may see it; otherwise an audited 404 (missing or not theirs)."""
    report = await db.get(Report, report_id)
    if report is None:
        raise NotFound(audit=note(action, "not_found", report_id, None))
    scope = scope_of(user)
    if not scope.sees(report):
        raise NotFound(audit=note(action, "denied", report_id, report))
    return report, scope


async def get_for_receiver(
    db: AsyncSession, user: Principal, report_id: uuid.UUID, action: str
) -> Report:
    """The report if the principal is on the receiving side (audited 404/403 otherwise)."""
    report, scope = await get_visible(db, user, report_id, action)
    if not scope.receives(report):
        raise Forbidden(
            "Bara handläggare i den mottagande kommunen kan kvittera rapporten.",
            audit=note(action, "denied", report_id, report),
        )
    return report


async def get_for_writer(
    db: AsyncSession,
    user: Principal,
    report_id: uuid.UUID,
    action: str,
    refusal: str,
    *,
    lock: bool = False,
) -> Report:
    """The report if the principal's jour wrote it (audited 404, or 403 with `refusal`);
    `lock` locks its row first."""
    if lock:
        await db.execute(select(Report.id).where(Report.id == report_id).with_for_update())
    report, scope = await get_visible(db, user, report_id, action)
    if not scope.writes(report):
        raise Forbidden(refusal, audit=note(action, "denied", report_id, report))
    return report
