"""Log review rules: which audit entries an archivist or unit head may see, and the filters.

An organisation's log is every entry about its records (`owner_org_id`) and every action its
own people took (`actor_org_id`). Filtering by person uses the blind index to find the records
about that person (advisories, incident reports, decisions, assignments, placements, police
requests), and matches the entries about those records and the lists that showed them — the
personnummer itself is never stored in the log. Every review is itself audited.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, Text, cast, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import paging
from portal.advisories import records as advisories
from portal.assignments import records as assignments
from portal.audit import service as audit
from portal.db.models import AuditEntry, Organisation
from portal.decisions import records as decisions
from portal.errors import AuditNote, InvalidInput, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import InvalidPersonnummer, Vault, invalid_personnummer, normalise_personnummer
from portal.placements import records as placements
from portal.police import records as police
from portal.principal import Principal
from portal.reports import records as reports
from portal.timefmt import format_local

ACTION_LABELS = {
    "login": "Inloggning",
    "login.rejected": "Inloggning nekad",
    "login.no_access": "Inloggning utan behörighet",
    "access.no_role": "Försökte nå portalen utan roll",
    "admin.access": "Öppnade administrationen",
    "lookup": "Sökning på personnummer",
    "advisory.create": "Lade in avisering",
    "advisory.amend": "Ändrade avisering",
    "advisory.reconfirm": "Bekräftade avisering på nytt",
    "advisory.withdraw": "Återkallade avisering",
    "advisory.acknowledge": "Kvitterade avisering",
    "advisory.list": "Listade aviseringar",
    "advisory.read": "Läste avisering",
    "report.create": "Skrev händelserapport",
    "report.addendum": "Kompletterade händelserapport",
    "report.attach": "Bifogade fil till händelserapport",
    "report.acknowledge": "Kvitterade händelserapport",
    "report.read": "Läste händelserapport",
    "report.download": "Hämtade händelserapport",
    "report.attachment_download": "Hämtade bilaga till händelserapport",
    "decision.create": "Upprättade beslutsutkast",
    "decision.draft": "Sparade beslutsutkast",
    "decision.update": "Ändrade beslutsutkast",
    "decision.submit": "Skickade beslut för underskrift",
    "decision.sign": "Skrev under beslut",
    "decision.sign_superseded": "Extra underskrift av beslut sparades men användes inte",
    "decision.timestamp_renewed": "Förnyade beslutets tidsstämpel",
    "decision.read": "Läste beslut",
    "decision.list": "Listade beslut",
    "decision.download": "Hämtade beslut (PDF)",
    "attachment.add": "Lade till bilaga",
    "attachment.download": "Hämtade bilaga",
    "roster.create": "Lade in ordförandejourlista",
    "roster.acknowledge": "Kvitterade ordförandejourlista",
    "roster.list": "Listade ordförandejourlistor",
    "roster.read": "Läste ordförandejourlista",
    "assignment.create": "Lämnade uppdrag till jouren",
    "assignment.accept": "Tog emot uppdrag",
    "assignment.report": "Återrapporterade uppdrag",
    "assignment.withdraw": "Återkallade uppdrag",
    "assignment.list": "Listade uppdrag",
    "assignment.read": "Läste uppdrag",
    "placement.create": "Lade in placering",
    "placement.amend": "Ändrade placering",
    "placement.list": "Listade placeringar",
    "placement.read": "Läste placering",
    "police_request.create": "Upprättade begäran om handräckning",
    "police_request.update": "Ändrade begäran om handräckning",
    "police_request.check": "Kontrollerade begäran om handräckning",
    "police_request.approve": "Godkände begäran om handräckning",
    "police_request.approve_superseded": (
        "Extra underskrift av begäran om handräckning sparades men användes inte"
    ),
    "police_request.create_repeated": (
        "Skickade begäran om handräckning igen (samma formulär): ingen ny begäran"
    ),
    "police_request.create_superseded": (
        "Begäran om handräckning skickades två gånger samtidigt: extra underskrift sparades "
        "men användes inte"
    ),
    "police_request.list": "Listade begäranden om handräckning",
    "police_request.read": "Läste begäran om handräckning",
    "police_request.download": "Hämtade begäran om handräckning",
    "handover.create": "Skrev överlämning",
    "handover.acknowledge": "Kvitterade överlämning",
    "handover.list": "Listade överlämningar",
    "handover.cull": "Raderade gamla överlämningar",
    "delegation.read": "Läste delegeringsordning",
    "delegation.change": "Ändrade delegeringsordning",
    "user.add": "Lade till användare",
    "user.email": "Ändrade användares e-postadress",
    "membership.grant": "Gav behörighet",
    "membership.revoke": "Återkallade behörighet",
    "verify.upload": "Kontrollerade underskrift på fil",
    "archive.search": "Sökte i arkivet",
    "archive.open": "Öppnade handling i arkivet",
    "archive.download": "Hämtade fil ur arkivet",
    "archive.export": "Exporterade till e-arkiv",
    "retention.cull": "Gallrade handling",
    "retention.hold": "Spärrade handling för gallring",
    "retention.lift": "Hävde gallringsspärr",
    "retention.hold_list": "Listade gallringsspärrar",
    "stats.read": "Begärde statistik",
    "stats.export": "Hämtade statistik",
    "costs.lock": "Låste kostnadsperiod",
    "costs.export": "Hämtade fakturaunderlag",
    "costs.key": "Ändrade fördelningsnyckeln för kostnaderna",
    "log.review": "Granskade loggen",
    "audit.restore_recorded": "Återläsning av säkerhetskopia noterad",
}
"""Audit action -> what the person did, in Swedish (the review never shows the raw code)."""

OBJECT_LABELS = {
    "advisory": "Avisering",
    "report": "Händelserapport",
    "decision": "Ordförandebeslut",
    "roster": "Ordförandejourlista",
    "assignment": "Uppdrag",
    "placement": "Placering",
    "police_request": "Begäran om handräckning",
    "attachment": "Bilaga",
    "handover_note": "Överlämning",
    "legal_hold": "Gallringsspärr",
    "membership": "Behörighet",
    "organisation": "Organisation",
    "person": "Person",
    "user": "Användare",
    "cost_period": "Kostnadsperiod",
    "cost_key": "Fördelningsnyckel",
    "statistics": "Statistik",
}
"""Audit object type -> Swedish noun."""


def action_label(action: str) -> str:
    """The Swedish phrase for an audit action; an unknown one as "Annan händelse (code)"."""
    return ACTION_LABELS.get(action) or f"Annan händelse ({action})"


def object_label(object_type: str) -> str:
    """The Swedish noun for an audit object type ("" when none)."""
    if not object_type:
        return ""
    return OBJECT_LABELS.get(object_type) or "Annat"


MAX_ROWS = 5000
"""Most entries in one CSV; a period with more is refused with a Swedish message (never cut)."""
LOG_TIME = "%Y-%m-%d %H:%M:%S %Z"
"""How the review shows a time: Stockholm time to the second, with its zone (CET/CEST), so the
hour repeated when summer time ends is unambiguous."""

OUTCOME_LABELS = {
    "ok": "Genomförd",
    "denied": "Nekad",
    "not_found": "Fanns inte",
    "refused": "Nekad eller fanns inte",
    "throttled": "Stoppad: för många försök",
}
_REFUSALS = ("denied", "not_found")


def _outcome_seen_by(entry: AuditEntry, org_id: uuid.UUID) -> str:
    """The outcome as `org_id`'s reviewer may see it.

    A refused read of another organisation's record is logged as "denied" when the record
    exists and "not_found" when it doesn't. Only the owner may see that difference: shown to
    the actor's own organisation it would tell an insider which ids exist elsewhere (an
    existence oracle), so there both read "refused".
    """
    if entry.outcome in _REFUSALS and entry.owner_org_id != org_id:
        return "refused"
    return entry.outcome


@dataclass(frozen=True, slots=True)
class LogRow:
    """One line of the review."""

    at: datetime
    user: str
    organisation: str
    action: str
    action_label: str
    object_type: str
    object_label: str
    object_id: str
    outcome: str
    outcome_label: str


def reviewable_orgs(user: Principal) -> set[uuid.UUID]:
    """Organisations whose logs the principal may review."""
    return user.orgs_with(Permission.REVIEW_LOGS)


async def _records_about(db: AsyncSession, index: str) -> set[str]:
    """Ids of the advisories, reports, decisions, assignments, placements and police requests
    about the person with this blind index."""
    ids: set[uuid.UUID] = set()
    for feature in (advisories, reports, decisions, assignments, placements, police):
        ids |= await feature.ids_about(db, index)
    return {str(i) for i in ids}


def _about(ids: set[str]) -> ColumnElement[bool]:
    """Entries about one of these records: the record itself, or a list that showed it (a list's
    entry has no object id; the ids shown are in its details)."""
    if not ids:
        return false()
    details = cast(AuditEntry.details, Text)
    return or_(
        AuditEntry.object_id.in_(ids),
        AuditEntry.object_id.is_(None) & or_(*(details.contains(i, autoescape=True) for i in ids)),
    )


async def review(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    org_id: uuid.UUID,
    since: datetime,
    until: datetime,
    user_id: uuid.UUID | None = None,
    personnummer: str = "",
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[LogRow]:
    """A page of `org_id`'s log in [since, until), optionally by user and about a person,
    newest first (keyset by the chain's sequence number), with how many entries match."""
    if org_id not in reviewable_orgs(user):
        raise NotFound(audit=AuditNote("log.review", "not_found", owner_org_id=org_id))
    if until <= since:
        raise InvalidInput(errors={"until": "Slutdatum måste vara efter startdatum."})
    cursor = paging.decode_seq(before)
    query = _query(org_id, since, until, user_id)
    if personnummer.strip():
        ids = await _records_about(db, vault.index(_personnummer(personnummer)))
        query = query.where(_about(ids))
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if cursor is not None:
        query = query.where(AuditEntry.seq < cursor[0])
    entries = (await db.scalars(query.order_by(AuditEntry.seq.desc()).limit(size + 1))).all()
    shown = entries[:size]
    offset = cursor[1] if cursor else 0
    await audit.record(
        db,
        "log.review",
        actor=user.actor(org_id),
        owner_org_id=org_id,
        details={
            "rows": len(shown),
            "total": total,
            "from": offset + 1,
            "by_person": bool(personnummer.strip()),
        },
    )
    more = len(entries) > size and shown
    return Page(
        rows=await _rows(db, vault, shown, org_id),
        next_cursor=paging.encode_seq(shown[-1].seq, offset + len(shown)) if more else None,
        first=offset + 1,
        total=total,
    )


def _query(
    org_id: uuid.UUID, since: datetime, until: datetime, user_id: uuid.UUID | None
) -> Select[AuditEntry]:
    """The entries people took about or in `org_id` in [since, until)."""
    query = select(AuditEntry).where(
        or_(AuditEntry.owner_org_id == org_id, AuditEntry.actor_org_id == org_id),
        AuditEntry.at >= since,
        AuditEntry.at < until,
        AuditEntry.actor_user_id.is_not(None),
    )
    if user_id is not None:
        query = query.where(AuditEntry.actor_user_id == user_id)
    return query


def _personnummer(raw: str) -> str:
    try:
        return normalise_personnummer(raw)
    except InvalidPersonnummer as exc:
        raise InvalidInput(errors={"personal_identity_number": invalid_personnummer()}) from exc


async def _rows(
    db: AsyncSession, vault: Vault, entries: Sequence[AuditEntry], org_id: uuid.UUID
) -> list[LogRow]:
    """The entries as `org_id`'s reviewer sees them, with the people's and organisations' names."""
    users = {e.actor_user_id for e in entries if e.actor_user_id}
    orgs = {e.actor_org_id for e in entries if e.actor_org_id}
    names = await user_names(db, vault, users)
    org_names = dict(
        (
            await db.execute(
                select(Organisation.id, Organisation.name).where(Organisation.id.in_(orgs))
            )
        ).all()
    )
    return [
        LogRow(
            at=e.at,
            user=names.get(e.actor_user_id, "") if e.actor_user_id else "",
            organisation=org_names.get(e.actor_org_id, "") if e.actor_org_id else "",
            action=e.action,
            action_label=action_label(e.action),
            object_type=e.object_type or "",
            object_label=object_label(e.object_type or ""),
            object_id=e.object_id or "",
            outcome=_outcome_seen_by(e, org_id),
            outcome_label=OUTCOME_LABELS.get(_outcome_seen_by(e, org_id), e.outcome),
        )
        for e in entries
    ]


async def users_of(
    db: AsyncSession, vault: Vault, org_ids: set[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """Users who appear as actors in these organisations' logs, for the filter."""
    ids = set(
        (
            await db.scalars(
                select(AuditEntry.actor_user_id)
                .where(
                    or_(AuditEntry.owner_org_id.in_(org_ids), AuditEntry.actor_org_id.in_(org_ids)),
                    AuditEntry.actor_user_id.is_not(None),
                )
                .distinct()
            )
        ).all()
    )
    return sorted((await user_names(db, vault, ids)).items(), key=lambda x: x[1])


def to_csv(rows: list[LogRow]) -> str:
    """The review as CSV (semicolon-separated, as Swedish spreadsheets expect)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["Tid", "Användare", "Organisation", "Händelse", "Typ", "Id", "Utfall"])
    for r in rows:
        writer.writerow(
            [
                format_local(r.at, LOG_TIME),
                r.user,
                r.organisation,
                r.action_label,
                r.object_label,
                r.object_id,
                r.outcome_label,
            ]
        )
    return out.getvalue()
