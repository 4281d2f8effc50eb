"""The archivist's view of the records: search, open with an integrity check, and ownership.

Ownership (FR-H3). A municipality's archive holds what the municipality sent or received:
its advisories, the incident reports addressed to it, the chair decisions for it and its roster
versions. The jour's archive holds its own records and its received copies: the reports it
wrote, the decisions it drafted, the advisories it received from its members and the roster
versions it was sent. A record outside the archivist's organisations is answered with 404, like
a missing one, and the attempt is audited.

The archive reads records only through each record feature's records interface (`records.py`:
search, holding = owner and holders, describe), so visibility, decryption and labels have one
rule per record type, the feature's own.

Opening a record is audited (`archive.open`) and checks integrity: every stored file is read
back through the encrypted store, which verifies each segment and the recorded size and SHA-256;
a signed decision's PDF is verified with pyHanko against the portal's trust roots.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import paging
from portal.advisories import records as advisory_records
from portal.assignments import records as assignment_records
from portal.audit import service as audit
from portal.db.models import AuditEntry, Organisation, Unit
from portal.decisions import records as decision_records
from portal.errors import AuditNote, Forbidden, InvalidInput, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.pii import Vault, invalid_personnummer, normalise_personnummer
from portal.placements import records as placement_records
from portal.police import records as police_records
from portal.principal import Principal
from portal.records import Hit, Holding, Person, Record, RecordSource, StoredFile
from portal.reports import records as report_records
from portal.rosters import records as roster_records
from portal.timefmt import format_local
from storage import EncryptedObjectStore
from storage.errors import IntegrityError, ObjectNotFound, StorageError

if TYPE_CHECKING:
    from asn1crypto.x509 import Certificate

__all__ = [
    "KINDS",
    "SOURCES",
    "FileCheck",
    "Hit",
    "Integrity",
    "Person",
    "Record",
    "StoredFile",
]

SOURCES: dict[str, RecordSource] = {
    "advisory": advisory_records,
    "report": report_records,
    "decision": decision_records,
    "roster": roster_records,
    "assignment": assignment_records,
    "placement": placement_records,
    "police_request": police_records,
}
"""Each record type's records interface (the feature's `records.py`)."""
KINDS = {kind: source.LABEL for kind, source in SOURCES.items()}
"""Record type -> Swedish name, in the order the pages list them."""


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


def signing_time(value: str | None) -> str:
    """A signature time from `jourpost verify --json` (UTC ISO 8601) in Stockholm time with
    its zone ("2026-11-23 22:15:07 CET"); the text as it came when it is not a time."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    return format_local(when, "%Y-%m-%d %H:%M:%S %Z")


def archive_orgs(user: Principal) -> set[uuid.UUID]:
    """Organisations whose archive the user may search."""
    return user.orgs_with(Permission.READ_ARCHIVE)


async def _org_kind(db: AsyncSession, org_id: uuid.UUID) -> str:
    org = await db.get(Organisation, org_id)
    return org.kind if org else ""


async def search(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    org_id: uuid.UUID,
    kinds: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    personnummer: str = "",
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[Hit]:
    """A page of the organisation's archive matching the filters, newest first by (date, id)
    across every record type (keyset: each type's next `size + 1` after the cursor, merged),
    with how many there are in all; audited, each page."""
    if org_id not in archive_orgs(user):
        raise Forbidden("Du har inte behörighet till arkivet.")
    index = None
    if personnummer.strip():
        try:
            index = vault.index(normalise_personnummer(personnummer))
        except ValueError:
            raise InvalidInput(
                errors={"personal_identity_number": invalid_personnummer()}
            ) from None
    cursor = paging.decode(before)
    is_jour = (await _org_kind(db, org_id)) == "jour"
    found: list[Hit] = []
    total = 0
    for kind in kinds:
        source = SOURCES[kind]
        found += await source.search(
            db, org_id, is_jour=is_jour, since=since, until=until, pnr_index=index,
            after=cursor.key if cursor else None, limit=size + 1,
        )  # fmt: skip
        total += await source.count(
            db, org_id, is_jour=is_jour, since=since, until=until, pnr_index=index
        )
    found.sort(key=_newest_first, reverse=True)
    page = paging.page_of(
        await with_units(db, found[:size]),
        more=len(found) > size,
        cursor=cursor,
        key=_newest_first,
        total=total,
    )
    await audit.record(
        db,
        "archive.search",
        actor=user.actor(org_id),
        owner_org_id=org_id,
        details={
            "kinds": list(kinds),
            "by_person": index is not None,
            "hits": total,
            "shown": len(page.rows),
            "from": page.first,
        },
    )
    return page


def _newest_first(hit: Hit) -> paging.Key:
    return (hit.date, hit.id)


async def with_units(db: AsyncSession, hits: list[Hit]) -> list[Hit]:
    """The hits with their unit's name filled in, where the record has a unit."""
    ids = {h.unit_id for h in hits if h.unit_id is not None}
    if not ids:
        return hits
    names = dict((await db.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids)))).all())
    return [dataclasses.replace(h, unit=names.get(h.unit_id, "")) if h.unit_id else h for h in hits]


async def search_unchecked(
    db: AsyncSession,
    org_id: uuid.UUID,
    kinds: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    pnr_index: str | None = None,
) -> list[Hit]:
    """The records of `org_id`'s archive, kind by kind, with no access check or audit (the CLI
    export, run by an operator, and `search`)."""
    is_jour = (await _org_kind(db, org_id)) == "jour"
    hits: list[Hit] = []
    for kind in kinds:
        hits += await SOURCES[kind].search(
            db, org_id, is_jour=is_jour, since=since, until=until, pnr_index=pnr_index
        )
    return hits


async def _holding(db: AsyncSession, kind: str, record_id: uuid.UUID) -> Holding | None:
    return await SOURCES[kind].holding(db, record_id) if kind in SOURCES else None


def _reader_org(user: Principal, holding: Holding) -> uuid.UUID | None:
    """The archive the user reads the record in: the owner's when theirs, else a holder's."""
    mine = holding.holders & archive_orgs(user)
    if holding.owner_org_id in mine:
        return holding.owner_org_id
    return min(mine, default=None)


async def _open(
    db: AsyncSession, vault: Vault, user: Principal, kind: str, record_id: uuid.UUID
) -> tuple[Record, audit.Actor]:
    """The record and the user as its reader (in the archive that holds it: the owner's when
    the user is its archivist); NotFound (audited) when it is in none of the user's archives."""
    found = await _holding(db, kind, record_id)
    reader = _reader_org(user, found) if found is not None else None
    if found is None or reader is None:
        raise NotFound(
            audit=AuditNote(
                "archive.open",
                "not_found",
                owner_org_id=found.owner_org_id if found else None,
                object_type=kind if kind in SOURCES else None,
                object_id=str(record_id),
            )
        )
    record = await SOURCES[kind].describe(db, vault, record_id)
    assert record is not None  # held, so it exists
    return record, user.actor(reader)


async def load(
    db: AsyncSession, vault: Vault, user: Principal, kind: str, record_id: uuid.UUID
) -> Record:
    """The record if it is in one of the user's archives; NotFound (audited) otherwise."""
    record, _ = await _open(db, vault, user, kind, record_id)
    return record


async def load_unchecked(
    db: AsyncSession, vault: Vault, kind: str, record_id: uuid.UUID
) -> Record | None:
    """The record with no access check (the CLI export, run by an operator)."""
    return await SOURCES[kind].describe(db, vault, record_id) if kind in SOURCES else None


async def load_many_unchecked(
    db: AsyncSession, vault: Vault, refs: Sequence[tuple[str, uuid.UUID]]
) -> list[tuple[str, Record]]:
    """The records of `refs` that exist, in the order given, with no access check (the export):
    each type whose records interface has `describe_many` is read with one query per kind of row
    for all its records, the others record by record."""
    found: dict[tuple[str, uuid.UUID], Record] = {}
    for kind in dict.fromkeys(k for k, _ in refs):
        ids = [i for k, i in refs if k == kind]
        many = getattr(SOURCES.get(kind), "describe_many", None)
        if many is not None:
            described: dict[uuid.UUID, Record] = await many(db, vault, ids)
            found.update(((kind, i), r) for i, r in described.items())
        else:
            for i in ids:
                record = await load_unchecked(db, vault, kind, i)
                if record is not None:
                    found[kind, i] = record
    return [(k, found[k, i]) for k, i in refs if (k, i) in found]


async def open_record(
    db: AsyncSession,
    vault: Vault,
    files: EncryptedObjectStore,
    user: Principal,
    kind: str,
    record_id: uuid.UUID,
    *,
    trust_roots: Sequence[Certificate],
) -> tuple[Record, Integrity]:
    """Open a record of the user's archives: load it, check its integrity and audit the opening
    (`archive.open`, with the verdict). The record page and the API both open through here."""
    record, actor = await _open(db, vault, user, kind, record_id)
    integrity = await check(files, record, trust_roots)
    await audit.record(
        db,
        "archive.open",
        actor=actor,
        owner_org_id=record.owner_org_id,
        object_type=kind,
        object_id=record.id,
        details={"integrity_ok": integrity.ok},
    )
    return record, integrity


async def open_file(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    kind: str,
    record_id: uuid.UUID,
    number: int,
) -> StoredFile:
    """The record's `number`th stored file (1-based) for download, audited
    (`archive.download`); NotFound when the record or the file is not there for the user."""
    record, actor = await _open(db, vault, user, kind, record_id)
    if not 1 <= number <= len(record.files):
        raise NotFound()
    await audit.record(
        db,
        "archive.download",
        actor=actor,
        owner_org_id=record.owner_org_id,
        object_type=kind,
        object_id=record.id,
        details={"file": number},
    )
    return record.files[number - 1]


async def read_file(files: EncryptedObjectStore, f: StoredFile) -> AsyncIterator[bytes]:
    """The file's verified plaintext (IntegrityError/StorageError when it does not match)."""
    async for chunk in files.get(f.stored):
        yield chunk


def file_problem(exc: StorageError) -> str:
    """Why a stored file failed its check (Swedish, for verification.json and the record page)."""
    if isinstance(exc, ObjectNotFound):
        return "Filen saknas i lagringen."
    if isinstance(exc, IntegrityError):
        return "Filen stämmer inte med sin kontrollsumma: den har ändrats eller skadats."
    return "Filen kan inte läsas just nu."


async def verify_signature(
    signed_bytes: bytes | None, trust_roots: Sequence[Any]
) -> dict[str, Any]:
    """`jourpost verify --json` of a signed PDF (invalid when it could not be read)."""
    invalid: dict[str, Any] = {"valid": False, "modified_after_signing": False, "signatures": []}
    if signed_bytes is None:
        return invalid
    from signing.errors import SigningError
    from signing.verify import verify_pdf

    try:
        return (await verify_pdf(signed_bytes, trust_roots=list(trust_roots))).to_json()
    except SigningError:
        return invalid


async def check(
    files: EncryptedObjectStore, record: Record, trust_roots: Sequence[Certificate]
) -> Integrity:
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
            c.problem = file_problem(exc)
        checks.append(c)
        if f is record.signed and c.ok:
            signed_bytes = b"".join(parts)
    signature: dict[str, Any] | None = None
    if record.signed is not None:
        signature = await verify_signature(signed_bytes, trust_roots)
    return Integrity(checks, signature)


async def audit_trail(db: AsyncSession, record_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every audit entry that names the record (ids only; no personal data is in the log)."""
    return (await audit_trails(db, [record_id])).get(record_id, [])


_TRAIL = select(
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.action,
    AuditEntry.outcome,
    AuditEntry.actor_user_id,
    AuditEntry.actor_org_id,
    AuditEntry.details,
    AuditEntry.hash,
    AuditEntry.object_id,
)


async def audit_trails(
    db: AsyncSession, record_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """`audit_trail` of several records with one query (the export asks per batch of records)."""
    by_text = {str(i): i for i in record_ids}
    trails: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in record_ids}
    if not by_text:
        return trails
    rows = await db.execute(
        _TRAIL.where(AuditEntry.object_id.in_(list(by_text))).order_by(AuditEntry.seq)
    )
    for e in rows:
        trails[by_text[e.object_id]].append(
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
        )
    return trails


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
