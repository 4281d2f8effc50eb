"""The jour's night dashboard: what changed since the shift started and what waits, at a glance.

Shown on the start page of jour staff and the jour head. Everything is read through the owning
features' reads (their statements, visibility rules and audit entries), all lists in one
statement on PostgreSQL (`portal.db.reads`; one per list on SQLite) whatever the number of
municipalities and records, and nothing is decrypted that the page does not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from portal.advisories import queries as advisories
from portal.advisories.queries import Brief as AdvisoryBrief
from portal.assignments import access as assignment_access
from portal.assignments import queries as assignments
from portal.assignments.queries import Brief as AssignmentBrief
from portal.assignments.queries import NoteBrief
from portal.audit import service as audit
from portal.db.models import Organisation
from portal.db.reads import Read, read_together
from portal.decisions import service as decisions
from portal.decisions.service import Waiting
from portal.pii import Vault
from portal.principal import Principal
from portal.reports.models import Report
from portal.rosters import service as rosters
from portal.rosters.schemas import FirstOnCall

UNACKNOWLEDGED_WINDOW = timedelta(days=7)
"""Reports the jour sent within this window that no unit has acknowledged yet are listed."""


@dataclass(frozen=True, slots=True)
class Night:
    """The dashboard's content for one jour person."""

    shift_started: datetime
    """Start of the current shift (08:00 or 16:00 Stockholm time)."""
    jour_phone: str
    """The jour's own number, for callers and for the page's header."""
    changed: tuple[AdvisoryBrief, ...]
    """Active advisories new or changed since the shift started, most recently changed first (at
    most advisories.DASHBOARD_LIMIT)."""
    changed_total: int
    """How many advisories are new or changed since the shift started (more than `changed` lists
    when the list is capped)."""
    expiring: int
    """Active advisories that expire within two days."""
    awaiting_signature: tuple[tuple[Waiting, timedelta], ...]
    """Decisions sent for signature and not signed, with how long since the oral decision."""
    on_call: tuple[FirstOnCall, ...]
    """Who is on call first now, per municipality, and whether the jour acknowledged the
    roster."""
    unacknowledged_rosters: int
    """Rosters in force that the jour has not acknowledged."""
    unacknowledged_reports: int
    """Reports the jour sent in the past week that no unit has acknowledged."""
    open_assignments: tuple[AssignmentBrief, ...] = ()
    """Assignments not yet done (sent or accepted), by deadline: on every shift until done."""
    handover: tuple[NoteBrief, ...] = ()
    """Handover notes written since the previous shift started (the outgoing shift's)."""

    @property
    def changed_capped(self) -> bool:
        """More advisories changed this shift than the dashboard lists."""
        return self.changed_total > len(self.changed)

    @property
    def since_param(self) -> str:
        """The shift's start as the link to `/jour/advisories?since=` carries it."""
        return advisories.since_param(self.shift_started)

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


# The jour's own number and its reports of the past week that no unit has acknowledged, in one
# statement built once (one row per jour organisation of the caller; the count is the same on
# each).
_PHONE_AND_UNACKNOWLEDGED = select(
    Organisation.phone,
    select(func.count())
    .select_from(Report)
    .where(
        Report.jour_id.in_(bindparam("jours", expanding=True)),
        Report.municipality_id.is_not(None),
        Report.acknowledged_at.is_(None),
        Report.created_at >= bindparam("since"),
    )
    .scalar_subquery(),
).where(Organisation.id.in_(bindparam("jours", expanding=True)))


def reads_for(user: Principal, *, now: datetime) -> list[Read]:
    """The dashboard's reads for `user` at `now`, each its feature's (`portal.db.reads`): the
    advisories, the decisions awaiting signature, the first on call per municipality, the
    jour's phone with its unacknowledged reports, and — for those who carry out assignments —
    the open assignments and the handover notes."""
    jour_ids = [m.org_id for m in user.memberships if m.org_kind == "jour"]
    reads = [
        advisories.dashboard_read(user, now=now, since=advisories.shift_start(now)),
        decisions.awaiting_read(user),
        rosters.first_on_call_read(user, now=now),
        Read(
            _PHONE_AND_UNACKNOWLEDGED,
            {"jours": list(dict.fromkeys(jour_ids)), "since": now - UNACKNOWLEDGED_WINDOW},
        ),
    ]
    if assignment_access.jour_orgs(user):
        reads.append(assignments.dashboard_read(user))
        since = assignments.previous_shift_start(now)
        reads.append(assignments.handover_dashboard_read(user, since=since))
    return reads


async def night(db: AsyncSession, vault: Vault, user: Principal, *, now: datetime) -> Night:
    """Read the dashboard for `user` at `now`.

    Every list is its feature's own read (its visibility rule, its audit entry), with plain
    columns and only what the page shows decrypted; the reads run together
    (`portal.db.reads.read_together`: one statement on PostgreSQL, one per list on SQLite,
    whatever the number of municipalities, rosters and records —
    tests/portal/test_night_dashboard_statements.py counts them), and the lists' audit entries
    (the same ones the lists' own pages write) are appended together at the end with one
    `audit.record_many`.
    """
    start = advisories.shift_start(now)
    handles_assignments = bool(assignment_access.jour_orgs(user))
    rows = await read_together(db, reads_for(user, now=now))
    advisory_rows, waiting_rows, on_call_rows, phone_rows, *assignment_rows = rows
    shown, advisory_entry = advisories.dashboard_from_rows(advisory_rows, user, now=now)
    entries = [advisory_entry]
    waiting = decisions.awaiting_from_rows(waiting_rows, vault)
    on_call = rosters.first_on_call_from_rows(on_call_rows, vault)
    open_assignments: list[AssignmentBrief] = []
    handover: list[NoteBrief] = []
    if handles_assignments:
        open_rows, note_rows = assignment_rows
        open_assignments, assignment_entry = assignments.dashboard_from_rows(
            open_rows, vault, user, now=now
        )
        entries.append(assignment_entry)
        handover, handover_entry = assignments.handover_from_rows(note_rows, vault, user)
        if handover_entry is not None:
            entries.append(handover_entry)
    await audit.record_many(db, entries)
    return Night(
        shift_started=start,
        jour_phone=next((phone for phone, _ in phone_rows if phone), ""),
        changed=tuple(shown.changed),
        changed_total=shown.changed_total,
        expiring=shown.expiring,
        awaiting_signature=tuple((d, now - d.oral_decision_at) for d in waiting),
        on_call=tuple(on_call),
        unacknowledged_rosters=sum(1 for o in on_call if o.version_id and not o.acknowledged),
        unacknowledged_reports=int(phone_rows[0][1] or 0) if phone_rows else 0,
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
