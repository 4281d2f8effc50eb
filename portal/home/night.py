"""The jour's night dashboard: what changed since the shift started and what waits, at a glance.

Shown on the start page of jour staff and the jour head. Everything is read through the owning
features' services (their visibility rules and audit), nothing decrypted that the lists don't
show already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from portal.advisories import queries as advisories
from portal.advisories.queries import Summary
from portal.assignments import access as assignment_access
from portal.assignments import queries as assignments
from portal.assignments.queries import NoteView
from portal.assignments.queries import Summary as AssignmentSummary
from portal.db.models import Organisation
from portal.decisions import service as decisions
from portal.decisions.schemas import DecisionOut
from portal.pii import Vault
from portal.principal import Principal
from portal.reports.models import Report
from portal.rosters import service as rosters
from portal.rosters.schemas import OnCallOut

UNACKNOWLEDGED_WINDOW = timedelta(days=7)
"""Reports the jour sent within this window that no unit has acknowledged yet are listed."""


@dataclass(frozen=True, slots=True)
class Night:
    """The dashboard's content for one jour person."""

    shift_started: datetime
    """Start of the current shift (08:00 or 16:00 Stockholm time)."""
    jour_phone: str
    """The jour's own number, for callers and for the page's header."""
    changed: tuple[Summary, ...]
    """Active advisories new or changed since the shift started."""
    expiring: tuple[Summary, ...]
    """Active advisories that expire within two days."""
    awaiting_signature: tuple[tuple[DecisionOut, timedelta], ...]
    """Decisions sent for signature and not signed, with how long since the oral decision."""
    on_call: tuple[OnCallOut, ...]
    """Who is on call now, per municipality, and whether the jour acknowledged the roster."""
    unacknowledged_rosters: int
    """Rosters in force that the jour has not acknowledged."""
    unacknowledged_reports: int
    """Reports the jour sent in the past week that no unit has acknowledged."""
    open_assignments: tuple[AssignmentSummary, ...] = ()
    """Assignments not yet done (sent or accepted), by deadline: on every shift until done."""
    handover: tuple[NoteView, ...] = ()
    """Handover notes written since the previous shift started (the outgoing shift's)."""

    @property
    def overdue_assignments(self) -> int:
        """Open assignments past their deadline."""
        return sum(1 for a in self.open_assignments if a.overdue)

    @property
    def unread_handover(self) -> int:
        """Handover notes by others that the viewer has not acknowledged."""
        return sum(1 for n in self.handover if not n.mine and not n.read_by_me)


def is_jour(user: Principal) -> bool:
    """Jour staff and the jour head get the dashboard."""
    return user.has_role(Role.JOUR_STAFF) or user.has_role(Role.JOUR_HEAD)


async def night(db: AsyncSession, vault: Vault, user: Principal, *, now: datetime) -> Night:
    """Read the dashboard for `principal` at `now`."""
    start = advisories.shift_start(now)
    active = await advisories.list_for_jour(db, vault, user, now=now)
    current = [a for a in active if not a.expired]
    changed = [a for a in current if a.created_at >= start or a.changed_at >= start]
    waiting = await decisions.list_visible(db, vault, user, statuses=("awaiting_signature",))
    on_call = await rosters.on_call_now(db, vault, user, now=now)
    jour_ids = {m.org_id for m in user.memberships if m.org_kind == "jour"}
    open_assignments: list[AssignmentSummary] = []
    handover: list[NoteView] = []
    if assignment_access.jour_orgs(user):
        open_assignments = await assignments.list_for_jour(db, vault, user, now=now, open_only=True)
        handover = await assignments.handover_notes(
            db, vault, user, since=assignments.previous_shift_start(now), scope="dashboard"
        )
    phones = await db.scalars(select(Organisation.phone).where(Organisation.id.in_(jour_ids)))
    unacknowledged = await db.scalar(
        select(func.count())
        .select_from(Report)
        .where(
            Report.jour_id.in_(jour_ids),
            Report.municipality_id.is_not(None),
            Report.acknowledged_at.is_(None),
            Report.created_at >= now - UNACKNOWLEDGED_WINDOW,
        )
    )
    return Night(
        shift_started=start,
        jour_phone=next((p for p in phones if p), ""),
        changed=tuple(changed),
        expiring=tuple(a for a in current if a.expires_soon),
        awaiting_signature=tuple((d, now - d.oral_decision_at) for d in waiting),
        on_call=tuple(on_call),
        unacknowledged_rosters=sum(1 for o in on_call if o.version_id and not o.acknowledged),
        unacknowledged_reports=int(unacknowledged or 0),
        open_assignments=tuple(open_assignments),
        handover=tuple(handover),
    )


def age(delta: timedelta) -> str:
    """'25 min' / '3 tim 5 min' / '2 dygn' — how long a decision has waited."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} tim {minutes % 60} min"
    return f"{minutes // (24 * 60)} dygn"
