"""The archivist's view of the records: search, open with an integrity check, and ownership.

Ownership (FR-H3). A municipality's archive holds what the municipality sent or received:
its advisories, the incident reports addressed to it, the chair decisions for it and its roster
versions. The jour's archive holds its own records and its received copies: the reports it
wrote, the decisions it drafted, the advisories it received from its members and the roster
versions it was sent. A record outside the archivist's organisations is answered with 404, like
a missing one, and the attempt is audited.

Opening a record is audited (`archive.open`) and checks integrity: every stored file is read
back through the encrypted store, which verifies each segment and the recorded size and SHA-256;
a signed decision's PDF is verified with pyHanko against the portal's trust roots.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal.advisories.content import from_blob
from portal.advisories.models import (
    Advisory,
    AdvisoryAcknowledgement,
    AdvisorySubject,
    AdvisoryVersion,
)
from portal.attachments.models import Attachment
from portal.audit import service as audit
from portal.db.models import AuditEntry, Organisation
from portal.decisions import service as decisions
from portal.decisions import service as decisions_service
from portal.decisions.models import Decision
from portal.decisions.rules import KINDS as DECISION_KINDS
from portal.errors import AuditNote, Forbidden, InvalidInput, NotFound
from portal.people import user_names
from portal.pii import Vault, normalise_personnummer
from portal.principal import Principal
from portal.reports import service as reports
from portal.reports.models import Report, ReportRead, ReportSubject
from portal.rosters.models import RosterAck, RosterEntry, RosterVersion
from portal.timefmt import format_local
from storage import StoredObject
from storage.errors import IntegrityError, ObjectNotFound, StorageError

KINDS = {
    "advisory": "Avisering",
    "report": "Händelserapport",
    "decision": "Ordförandebeslut",
    "roster": "Ordförandejourlista",
}
ATTACHMENT_OWNER = {"advisory": "advisory", "report": "report"}


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    kind: str
    """advisory | report | decision | roster."""
    id: uuid.UUID
    """The record."""
    title: str
    """Swedish description without personal data."""
    date: datetime
    """The record's date (created, occurred, or oral decision)."""
    status: str
    """Short status."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of a record in the object store."""

    name: str
    """File name shown and used in exports."""
    content_type: str
    """MIME type."""
    stored: StoredObject
    """How to read it back."""
    attachment_id: uuid.UUID | None = None
    """The attachment row (None for a signed decision)."""


@dataclass(slots=True)
class FileCheck:
    """The integrity check of one stored file."""

    name: str
    """File name."""
    sha256: str
    """Recorded SHA-256."""
    size: int
    """Recorded size."""
    ok: bool
    """Read back and matched."""
    problem: str | None = None
    """What went wrong (Swedish)."""


@dataclass(frozen=True, slots=True)
class Person:
    """A person a record is about, kept apart for the export (record.xml has an element each)."""

    label: str
    """The label of the fact that shows this person on the record page ("Person 1")."""
    name: str
    """Name as recorded ("" when none)."""
    personal_identity_number: str | None
    """Personnummer or samordningsnummer; None when the identity is unknown."""


@dataclass(slots=True)
class Record:
    """Everything the archive shows and exports about one record."""

    kind: str
    """advisory | report | decision | roster."""
    id: uuid.UUID
    """Its id."""
    owner_org_id: uuid.UUID
    """The organisation that owns it (the sending municipality, or the jour for its own)."""
    title: str
    """Swedish title."""
    date: datetime
    """Its date."""
    created_at: datetime
    """When it was drawn up in Jourpost (upprättad)."""
    facts: list[tuple[str, str]]
    """Content as label/value pairs (decrypted)."""
    versions: list[tuple[str, datetime, str]]
    """(description, when, by whom)."""
    receipts: list[tuple[str, datetime, str]]
    """(what, when, who): acknowledgements, reads, deliveries."""
    files: list[StoredFile] = field(default_factory=list)
    """Attachments and the signed PDF."""
    signed: StoredFile | None = None
    """The signed PDF of a decision."""
    persons: list[Person] = field(default_factory=list)
    """The persons the record is about (also shown, as label/value, among the facts)."""


@dataclass(slots=True)
class Integrity:
    """The result of checking a record on open."""

    files: list[FileCheck]
    """One per stored file."""
    signature: dict[str, Any] | None
    """`jourpost verify --json` of the signed PDF (decisions)."""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the check was made (the verdicts hold for that moment)."""

    @property
    def ok(self) -> bool:
        """Every file matched and every signature is valid."""
        sig_ok = self.signature is None or bool(self.signature.get("valid"))
        return all(f.ok for f in self.files) and sig_ok


def archive_orgs(principal: Principal) -> set[uuid.UUID]:
    """Organisations whose archive the user may search."""
    return principal.orgs_with(Permission.READ_ARCHIVE)


async def _org_kind(db: AsyncSession, org_id: uuid.UUID) -> str:
    org = await db.get(Organisation, org_id)
    return org.kind if org else ""


async def search(
    db: AsyncSession,
    vault: Vault,
    principal: Principal,
    *,
    org_id: uuid.UUID,
    kinds: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    personnummer: str = "",
) -> list[Hit]:
    """Records of the organisation's archive matching the filters, newest first (audited)."""
    if org_id not in archive_orgs(principal):
        raise Forbidden("Du har inte behörighet till arkivet.")
    index = None
    if personnummer.strip():
        try:
            index = vault.index(normalise_personnummer(personnummer))
        except ValueError:
            raise InvalidInput(
                errors={"personal_identity_number": "Ange ett giltigt personnummer (12 siffror)."}
            ) from None
    is_jour = (await _org_kind(db, org_id)) == "jour"
    hits: list[Hit] = []
    for kind in kinds:
        hits += await SEARCHES[kind](db, org_id, is_jour, since, until, index)
    hits.sort(key=lambda h: h.date, reverse=True)
    await audit.record(
        db,
        "archive.search",
        actor=principal.actor(org_id),
        owner_org_id=org_id,
        details={"kinds": list(kinds), "by_person": index is not None, "hits": len(hits)},
    )
    return hits


def _period(stmt: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column < until)
    return stmt


async def _search_advisories(
    db: AsyncSession,
    org: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    index: str | None,
) -> list[Hit]:
    stmt = select(Advisory).where(
        (Advisory.jour_id if is_jour else Advisory.organisation_id) == org
    )
    if index is not None:
        stmt = stmt.where(
            Advisory.id.in_(
                select(AdvisorySubject.advisory_id).where(AdvisorySubject.pnr_index == index)
            )
        )
    rows = await db.scalars(_period(stmt, Advisory.created_at, since, until))
    return [
        Hit(
            "advisory",
            a.id,
            f"Avisering ({a.legal_basis}), version {a.current_version}",
            a.created_at,
            "återkallad" if a.status == "withdrawn" else "aktiv/utgången",
        )
        for a in rows
    ]


async def _search_reports(
    db: AsyncSession,
    org: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    index: str | None,
) -> list[Hit]:
    stmt = select(Report).where((Report.jour_id if is_jour else Report.municipality_id) == org)
    if index is not None:
        stmt = stmt.where(
            Report.id.in_(select(ReportSubject.report_id).where(ReportSubject.pnr_index == index))
        )
    rows = await db.scalars(_period(stmt, Report.occurred_at, since, until))
    return [
        Hit(
            "report",
            r.id,
            "Händelserapport",
            r.occurred_at,
            "kvitterad" if r.acknowledged_at else "ej kvitterad",
        )
        for r in rows
    ]


async def _search_decisions(
    db: AsyncSession,
    org: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    index: str | None,
) -> list[Hit]:
    stmt = select(Decision).where(decisions_service.archive_filter(org, is_jour))
    if index is not None:
        stmt = stmt.where(Decision.subject_pnr_index == index)
    rows = await db.scalars(_period(stmt, Decision.oral_decision_at, since, until))
    return [
        Hit(
            "decision",
            d.id,
            f"Ordförandebeslut {DECISION_KINDS[d.kind].act}",
            d.oral_decision_at,
            decisions.STATUS_LABELS.get(d.status, d.status),
        )
        for d in rows
    ]


async def _search_rosters(
    db: AsyncSession,
    org: uuid.UUID,
    is_jour: bool,
    since: datetime | None,
    until: datetime | None,
    index: str | None,
) -> list[Hit]:
    if index is not None:  # rosters name committee members, never clients
        return []
    stmt = select(RosterVersion, Organisation.name).join(
        Organisation, Organisation.id == RosterVersion.municipality_id
    )
    stmt = stmt.where((Organisation.jour_id if is_jour else RosterVersion.municipality_id) == org)
    rows = await db.execute(_period(stmt, RosterVersion.created_at, since, until))
    return [
        Hit("roster", v.id, f"Ordförandejourlista {name}, version {v.number}", v.created_at, "")
        for v, name in rows
    ]


SEARCHES = {
    "advisory": _search_advisories,
    "report": _search_reports,
    "decision": _search_decisions,
    "roster": _search_rosters,
}


async def _owner_and_orgs(
    db: AsyncSession, kind: str, record_id: uuid.UUID
) -> tuple[Any, uuid.UUID, set[uuid.UUID]] | None:
    """The row, its owner, and every organisation whose archive holds it."""
    if kind == "advisory":
        a = await db.get(Advisory, record_id)
        return (a, a.organisation_id, {a.organisation_id, a.jour_id}) if a else None
    if kind == "report":
        r = await db.get(Report, record_id)
        if r is None:
            return None
        holders = {r.jour_id} | ({r.municipality_id} if r.municipality_id else set())
        return r, r.municipality_id or r.jour_id, holders
    if kind == "decision":
        d = await db.get(Decision, record_id)
        return (d, d.municipality_id, decisions_service.archive_holders(d)) if d else None
    if kind == "roster":
        v = await db.get(RosterVersion, record_id)
        if v is None:
            return None
        muni = await db.get(Organisation, v.municipality_id)
        holders = {v.municipality_id} | ({muni.jour_id} if muni and muni.jour_id else set())
        return v, v.municipality_id, holders
    return None


async def load(
    db: AsyncSession, vault: Vault, principal: Principal, kind: str, record_id: uuid.UUID
) -> Record:
    """The record if it is in one of the user's archives; NotFound (audited) otherwise."""
    found = await _owner_and_orgs(db, kind, record_id) if kind in KINDS else None
    if found is None or not (found[2] & archive_orgs(principal)):
        raise NotFound(
            audit=AuditNote(
                "archive.open",
                "not_found",
                owner_org_id=found[1] if found else None,
                object_type=kind if kind in KINDS else None,
                object_id=str(record_id),
            )
        )
    row, owner, _ = found
    built: Record = await _BUILDERS[kind](db, vault, row, owner)
    return built


async def load_unchecked(
    db: AsyncSession, vault: Vault, kind: str, record_id: uuid.UUID
) -> Record | None:
    """The record with no access check (the CLI export, run by an operator)."""
    found = await _owner_and_orgs(db, kind, record_id)
    if found is None:
        return None
    built: Record = await _BUILDERS[kind](db, vault, found[0], found[1])
    return built


async def _attachments(
    db: AsyncSession, vault: Vault, owner_type: str, owner_id: uuid.UUID
) -> list[StoredFile]:
    rows = await db.scalars(
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id == owner_id)
        .order_by(Attachment.created_at)
    )
    return [
        StoredFile(
            vault.decrypt(a.name_enc, f"attachments.name:{a.id}"),
            a.content_type,
            StoredObject(a.object_id, a.size, a.sha256, a.kek_id, a.wrapped_key),
            a.id,
        )
        for a in rows
    ]


def _when(value: datetime | None) -> str:
    return format_local(value) if value else ""


async def _advisory(db: AsyncSession, vault: Vault, a: Advisory, owner: uuid.UUID) -> Record:
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
    subjects = (
        await db.scalars(
            select(AdvisorySubject).where(
                AdvisorySubject.advisory_id == a.id, AdvisorySubject.version == latest.version
            )
        )
    ).all()
    pnrs = {s.position: vault.decrypt(s.pnr_enc, f"advisory_subjects.pnr:{s.id}") for s in subjects}
    blob = vault.decrypt(latest.content_enc, f"advisory_versions.content:{latest.id}")
    content = from_blob(blob, pnrs, legal_basis=latest.legal_basis, valid_until=latest.valid_until)
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
        ("Lagrum", content.legal_basis),
        ("Kontakt", f"{content.contact_name} {content.contact_phone}"),
        ("Giltig till", _when(latest.valid_until)),
        ("Status", "återkallad" if a.status == "withdrawn" else "aktiv/utgången"),
    ]
    kind_label = {"created": "Upprättad", "amended": "Ändrad", "reconfirmed": "Bekräftad"}
    return Record(
        "advisory",
        a.id,
        owner,
        f"Avisering ({a.legal_basis})",
        a.created_at,
        a.created_at,
        facts,
        [
            (
                f"Version {v.version}: {kind_label.get(v.kind, v.kind)}",
                v.created_at,
                names.get(v.created_by, ""),
            )
            for v in versions
        ],
        [
            (f"Kvitterad av jouren (version {k.version})", k.at, names.get(k.user_id, ""))
            for k in acks
        ],
        await _attachments(db, vault, "advisory", a.id),
        persons=persons,
    )


async def _report(db: AsyncSession, vault: Vault, r: Report, owner: uuid.UUID) -> Record:
    out = await reports.describe(db, vault, r)
    reads = (
        await db.scalars(
            select(ReportRead).where(ReportRead.report_id == r.id).order_by(ReportRead.read_at)
        )
    ).all()
    names = await user_names(db, vault, [x.user_id for x in reads])
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
        "report",
        r.id,
        owner,
        "Händelserapport",
        r.occurred_at,
        r.created_at,
        facts,
        versions,
        receipts,
        await _attachments(db, vault, "report", r.id),
        persons=persons,
    )


async def _decision(db: AsyncSession, vault: Vault, d: Decision, owner: uuid.UUID) -> Record:
    out = await decisions.to_out(db, vault, d)
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
    signed = None
    if d.signed_object_id and d.signed_size is not None and d.signed_sha256:
        assert d.signed_kek_id and d.signed_wrapped_key
        signed = StoredFile(
            f"beslut-{d.id}.pdf",
            "application/pdf",
            StoredObject(
                d.signed_object_id,
                d.signed_size,
                d.signed_sha256,
                d.signed_kek_id,
                d.signed_wrapped_key,
            ),
        )
    return Record(
        "decision",
        d.id,
        owner,
        f"Ordförandebeslut {out.act}",
        d.oral_decision_at,
        d.created_at,
        facts,
        versions,
        receipts,
        [signed] if signed else [],
        signed,
        [Person("Person", out.subject_name or "", out.subject_personal_identity_number or None)],
    )


async def _roster(db: AsyncSession, vault: Vault, v: RosterVersion, owner: uuid.UUID) -> Record:
    entries = (
        await db.scalars(
            select(RosterEntry).where(RosterEntry.version_id == v.id).order_by(RosterEntry.position)
        )
    ).all()
    acks = (await db.scalars(select(RosterAck).where(RosterAck.version_id == v.id))).all()
    names = await user_names(
        db, vault, [e.user_id for e in entries] + [k.user_id for k in acks] + [v.created_by]
    )
    muni = await db.get(Organisation, v.municipality_id)
    functions = {"chair": "ordförande", "substitute": "ersättare", "appointed": "förordnad ledamot"}
    facts = [
        (
            f"{e.position}. {names.get(e.user_id, '')}",
            f"{functions.get(e.function, e.function)}, {_when(e.valid_from)}–{_when(e.valid_to)}, "
            f"tel. {_phone(vault, e)}",
        )
        for e in entries
    ]
    return Record(
        "roster",
        v.id,
        owner,
        f"Ordförandejourlista {muni.name if muni else ''}, version {v.number}",
        v.created_at,
        v.created_at,
        facts,
        [(f"Version {v.number}", v.created_at, names.get(v.created_by, ""))],
        [("Kvitterad av jouren", k.at, names.get(k.user_id, "")) for k in acks],
    )


def _phone(vault: Vault, e: RosterEntry) -> str:
    return vault.decrypt(e.phone_enc, f"roster_entries.phone:{e.id}") if e.phone_enc else ""


_BUILDERS: dict[str, Any] = {
    "advisory": _advisory,
    "report": _report,
    "decision": _decision,
    "roster": _roster,
}


async def read_file(files: Any, f: StoredFile) -> AsyncIterator[bytes]:
    """The file's verified plaintext (IntegrityError/StorageError when it does not match)."""
    async for chunk in files.get(f.stored):
        yield chunk


async def check(files: Any, record: Record, trust_roots: Sequence[Any]) -> Integrity:
    """Read every stored file back (hash and size verified) and verify the signature."""
    checks: list[FileCheck] = []
    signed_bytes: bytes | None = None
    for f in record.files:
        c = FileCheck(f.name, f.stored.sha256, f.stored.size, True)
        parts: list[bytes] = []
        try:
            async for chunk in read_file(files, f):
                if f is record.signed:
                    parts.append(chunk)
        except StorageError as exc:
            c.ok = False
            c.problem = (
                "Filen saknas i lagringen."
                if isinstance(exc, ObjectNotFound)
                else "Filen stämmer inte med sin kontrollsumma: den har ändrats eller skadats."
                if isinstance(exc, IntegrityError)
                else "Filen kan inte läsas just nu."
            )
        checks.append(c)
        if f is record.signed and c.ok:
            signed_bytes = b"".join(parts)
    signature: dict[str, Any] | None = None
    if record.signed is not None:
        if signed_bytes is None:
            signature = {"valid": False, "modified_after_signing": False, "signatures": []}
        else:
            from signing.errors import SigningError
            from signing.verify import verify_pdf

            try:
                signature = (
                    await verify_pdf(signed_bytes, trust_roots=list(trust_roots))
                ).to_json()
            except SigningError:
                signature = {"valid": False, "modified_after_signing": False, "signatures": []}
    return Integrity(checks, signature)


async def audit_trail(db: AsyncSession, record_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every audit entry that names the record (ids only; no personal data is in the log)."""
    rows = await db.scalars(
        select(AuditEntry).where(AuditEntry.object_id == str(record_id)).order_by(AuditEntry.seq)
    )
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "action": e.action,
            "outcome": e.outcome,
            "actor_user_id": str(e.actor_user_id) if e.actor_user_id else None,
            "actor_org_id": str(e.actor_org_id) if e.actor_org_id else None,
            "details": e.details,
            "hash": e.hash,
        }
        for e in rows
    ]


def verification_json(integrity: Integrity) -> str:
    """The verification report written into exports."""
    return json.dumps(
        {
            "integrity_ok": integrity.ok,
            "files": [
                {
                    "name": f.name,
                    "sha256": f.sha256,
                    "size": f.size,
                    "ok": f.ok,
                    "problem": f.problem,
                }
                for f in integrity.files
            ],
            "signature": integrity.signature,
        },
        ensure_ascii=False,
        indent=2,
    )
