"""Look a person up by personnummer during a call: advisories, incident reports, decisions,
placements (portal.placements.records), assignments; by name or alias: advisories, reports and
placements (portal.lookup.names).

The number is normalised, turned into its blind index and matched on indexed columns only, so
the cost does not grow with the archive. Each lookup is audited (action "lookup") with the
blind index as the object id, never the number itself, so log review can see who looked up the
same person without the log revealing who it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal.advisories import queries
from portal.advisories.content import AdvisoryContent
from portal.advisories.queries import Summary
from portal.assignments import records as assignment_records
from portal.audit import service as audit
from portal.db.fast import Prepared
from portal.db.models import AuditEntry
from portal.decisions import records as decision_records
from portal.decisions import service as decisions
from portal.decisions.schemas import DecisionBrief
from portal.errors import AuditNote, Forbidden, InvalidInput, TooManyRequests
from portal.lookup import names
from portal.pii import (
    InvalidPersonnummer,
    Vault,
    field_context,
    invalid_personnummer,
    normalise_personnummer,
)
from portal.placements import records as placement_records
from portal.principal import Principal
from portal.reports import queries as reports
from portal.reports import records as report_records
from portal.reports.schemas import ReportSummary


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What the caller may see about one person."""

    personal_identity_number: str
    """The normalised number looked up (shown back to the caller, never stored)."""
    advisories: tuple[Summary, ...]
    """Active and recently expired advisories, latest expiry first."""
    reports: tuple[ReportSummary, ...]
    """Incident reports about the person the caller may read, newest first."""
    decisions: tuple[DecisionBrief, ...]
    """Custody decisions about the person the caller may see, newest first."""
    plans: dict[uuid.UUID, AdvisoryContent]
    """Each found advisory's current content: the plan, the instructions to the jour, the legal
    basis and the contact — shown in the result itself, so a call needs one search."""
    name: str = ""
    """The name searched for (empty for a search by personnummer)."""
    placements: tuple[placement_records.Summary, ...] = ()
    """Planned, current and recently ended placements (the register, FR-B8): where the person
    is placed and under which legal basis; found by personnummer or name."""
    assignments: tuple[assignment_records.Summary, ...] = ()
    """Open assignments (uppdrag) about the person, and those closed within a week: a task the
    jour has for the person tonight; found by personnummer only."""


def may_look_up(user: Principal) -> bool:
    """Jour staff and handlers may look people up (each sees only what they may read)."""
    return bool(
        user.orgs_with(Permission.READ_ADVISORIES) or user.orgs_with(Permission.POST_ADVISORIES)
    )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many lookups one user may make in a sliding window."""

    limit: int
    """Lookups allowed within `window`."""
    window: timedelta
    """The sliding window."""


_RECENT_LOOKUPS = (
    select(func.count())
    .select_from(AuditEntry)
    .where(
        AuditEntry.actor_user_id == bindparam("user_id"),
        AuditEntry.at >= bindparam("since"),
        AuditEntry.action == "lookup",
        AuditEntry.outcome == "ok",
    )
)
"""Counted on the audit log itself (index actor_user_id, at): every instance sees every
lookup, and there is no second counter to drift from what the log says."""


def _refuse(recent: int, rate: RateLimit, user: Principal) -> TooManyRequests:
    """The refusal (429) of a user who looked up `rate.limit` people within `rate.window`.

    Threat: a logged-in account — stolen, or misused by its owner — harvesting who has
    advisories and reports. The refusal is audited (outcome "throttled", owned by the user's own
    organisation), so it stands out in the unit head's log review.
    """
    minutes = int(rate.window.total_seconds() // 60)
    actor = user.actor()
    return TooManyRequests(
        f"Du har gjort {recent} personuppslag de senaste {minutes} minuterna, vilket är mer än "
        "tjänsten tillåter. Vänta en stund innan du söker igen. Uppslagen syns för din "
        "enhetschef i loggranskningen.",
        audit=AuditNote(
            "lookup",
            "throttled",
            owner_org_id=actor.org_id,
            details={"recent": recent, "window_minutes": minutes},
        ),
    )


async def _check_rate(db: AsyncSession, user: Principal, now: datetime, rate: RateLimit) -> None:
    """Refuse (429, `_refuse`) a user who looked up `rate.limit` people within `rate.window`."""
    recent = await db.scalar(_RECENT_LOOKUPS, {"user_id": user.user_id, "since": now - rate.window})
    if (recent or 0) >= rate.limit:
        raise _refuse(int(recent or 0), rate, user)


def _probe() -> Select[Any]:
    """One row: the caller's recent lookups (`_RECENT_LOOKUPS`) and whether any report,
    decision, placement (any version) or assignment names the person at all. A kind with none is
    not searched further; one with any is searched by its own finder, which applies who may see
    what, so the answer is the same as searching every kind (one query instead of four when the
    person has only advisories, or nothing)."""
    pnr_index = bindparam("pnr_index", type_=String)
    return select(
        _RECENT_LOOKUPS.scalar_subquery(),
        report_records.ids_about_query(pnr_index).exists(),
        decision_records.ids_about_query(pnr_index).exists(),
        placement_records.ids_about_query(pnr_index).exists(),
        assignment_records.ids_about_query(pnr_index).exists(),
    )


_PROBE_COLUMNS = 5
"""`_probe()`'s columns, first in each row of `_PROBE_AND_ADVISORIES`."""


def _probe_and_advisories() -> Select[Any]:
    """`_probe()` and the advisories about the person (queries.PNR_LOOKUP) in one statement, one
    round trip: the probe's one row outer-joined to the advisory rows, so the probe comes back
    also when there are none (then one row, the advisory columns null). The advisory rows are
    in PNR_LOOKUP's order (latest expiry first, then advisory, then subject position)."""
    probe = _probe().subquery("probe")
    found = queries.PNR_LOOKUP.subquery("found")
    # First of its name in PNR_LOOKUP's columns: Advisory.id and Advisory.valid_until (the
    # version's valid_until and the other ids come after and are renamed id_1, valid_until_1…).
    return (
        select(probe, found)
        .select_from(probe)
        .outerjoin(found, true())
        .order_by(found.c.valid_until.desc(), found.c.id, found.c.position)
    )


_PROBE_AND_ADVISORIES = Prepared(_probe_and_advisories())  # on asyncpg directly (portal.db.fast)
"""Built once; parameters `pnr_index`, `user_id`, `since` and queries.pnr_lookup_params'."""


async def lookup(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    personnummer: str,
    *,
    now: datetime,
    rate: RateLimit | None = None,
    name: str = "",
) -> LookupResult:
    """Advisories, reports, decisions, placements and assignments about the person — by
    personnummer, or when none is given by name or alias (portal.lookup.names; advisories,
    reports and placements: decisions and assignments only by number). InvalidInput for
    an invalid number or no usable name; TooManyRequests past `rate`."""
    if not may_look_up(user):
        raise Forbidden(audit=AuditNote("lookup", "denied"))
    by_name = not personnummer.strip() and name.strip()
    if by_name or not _valid(personnummer):
        if rate is not None:
            await _check_rate(db, user, now, rate)
        if by_name:
            return await _by_name(db, vault, user, name, now=now)
        raise InvalidInput(
            errors={"personal_identity_number": invalid_personnummer("eller sök på namn")}
        )
    pnr = normalise_personnummer(personnummer)
    index = vault.index(pnr)
    since = now - (rate.window if rate is not None else timedelta(0))
    params = {
        "user_id": user.user_id,
        "since": since,
        **queries.pnr_lookup_params(user, index, now=now),
    }
    conn = await db.connection()  # Core rows: no ORM result machinery on the hot path
    rows = await _PROBE_AND_ADVISORIES.all(conn, params)
    recent, reports_exist, decisions_exist, placements_exist, assignments_exist = rows[0][
        :_PROBE_COLUMNS
    ]
    if rate is not None and (recent or 0) >= rate.limit:
        raise _refuse(int(recent or 0), rate, user)
    found, plans = queries.pnr_lookup_summaries(
        vault, [row[_PROBE_COLUMNS:] for row in rows], now=now
    )
    found_reports = await reports.find_by_person(db, user, index) if reports_exist else []
    found_decisions = await decisions.find_by_person(db, user, index) if decisions_exist else []
    found_placements = (
        await placement_records.find_by_person(db, vault, user, index, now=now)
        if placements_exist
        else []
    )
    found_assignments = (
        await assignment_records.find_by_person(db, vault, user, index, now=now)
        if assignments_exist
        else []
    )
    return await _result(
        db, user, pnr, "", found, plans, found_reports, found_decisions, ("person", index),
        found_placements, found_assignments,
    )  # fmt: skip


def _valid(personnummer: str) -> bool:
    try:
        normalise_personnummer(personnummer)
    except InvalidPersonnummer:
        return False
    return True


async def _by_name(
    db: AsyncSession, vault: Vault, user: Principal, name: str, *, now: datetime
) -> LookupResult:
    advisory_ids = await names.owners_named(db, vault, "advisory", name)
    if advisory_ids is None:
        raise InvalidInput(errors={"name": "Ange ett namn (minst två bokstäver) att söka på."})
    report_ids = await names.owners_named(db, vault, "report", name) or set()
    found, plans = await queries.find_by_ids_with_content(db, vault, user, advisory_ids, now=now)
    found_reports = await reports.find_by_ids(db, user, report_ids)
    found_placements = await placement_records.find_by_name(db, vault, user, name, now=now)
    key = ("person-name", names.search_key(vault, name))
    return await _result(
        db, user, "", " ".join(name.split()), found, plans, found_reports, [], key,
        found_placements,
    )  # fmt: skip


async def _result(
    db: AsyncSession,
    user: Principal,
    pnr: str,
    name: str,
    found: list[Summary],
    plans: dict[uuid.UUID, AdvisoryContent],
    found_reports: list[ReportSummary],
    found_decisions: list[DecisionBrief],
    audit_key: tuple[str, str],
    found_placements: list[placement_records.Summary] | None = None,
    found_assignments: list[assignment_records.Summary] | None = None,
) -> LookupResult:
    """Audit the search (a keyed hash, never the number or name), answer. `plans` holds each
    found advisory's current content, read with the summaries."""
    await audit.record(
        db,
        "lookup",
        actor=user.actor(),
        object_type=audit_key[0],
        object_id=audit_key[1],
        details={
            "advisories": [str(a.id) for a in found],
            "reports": [str(r.id) for r in found_reports],
            "decisions": [str(d.id) for d in found_decisions],
            "placements": [str(pl.id) for pl in found_placements or ()],
            "assignments": [str(a.id) for a in found_assignments or ()],
        },
    )
    return LookupResult(
        pnr, tuple(found), tuple(found_reports), tuple(found_decisions), plans, name,
        tuple(found_placements or ()), tuple(found_assignments or ()),
    )  # fmt: skip


async def reindex_names(db: AsyncSession, vault: Vault) -> tuple[int, int, int]:
    """Rebuild the name index of every advisory (current version), report and placement
    (current version); (advisories, reports, placements). For records written before the index
    existed, or before it covered placements (`jourpost lookup reindex-names`)."""
    from portal.advisories.models import Advisory
    from portal.reports.models import ReportSubject

    advisories = 0
    for adv in (await db.scalars(select(Advisory))).all():
        content = await queries.content_of(
            db, vault, await queries.version_row(db, adv.id, adv.current_version)
        )
        await names.index_names(db, vault, "advisory", adv.id, [s.name for s in content.subjects])
        advisories += 1
    by_report: dict[uuid.UUID, list[str]] = {}
    for subject in (await db.scalars(select(ReportSubject))).all():
        names_of = by_report.setdefault(subject.report_id, [])
        if subject.name_enc:
            names_of.append(
                vault.decrypt(subject.name_enc, field_context(ReportSubject.name_enc, subject.id))
            )
    for report_id, report_names in by_report.items():
        await names.index_names(db, vault, "report", report_id, report_names)
    placements = await placement_records.reindex_names(db, vault)
    return advisories, len(by_report), placements
