"""Roster rules: who may keep and read a roster, versions, receipts, and who was on call when.

The decision flow relies on `was_on_roster`: a chair decision is valid only if its
decision-maker was on the roster in force *when the oral decision was taken* — the version
created before that moment, with an entry covering it — not the roster in force at signing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from auth.roles import Permission, Role
from portal.audit import service as audit
from portal.db.base import utcnow
from portal.db.engine import core_execute
from portal.db.models import Membership, Organisation, User
from portal.db.reads import Read, Rows
from portal.errors import AuditNote, Conflict, Forbidden, InvalidInput, NotFound
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.principal import Principal
from portal.rosters.models import RosterAck, RosterEntry, RosterVersion
from portal.rosters.schemas import (
    FUNCTIONS,
    AckOut,
    EntryIn,
    EntryOut,
    FirstOnCall,
    OnCallOut,
    RosterIn,
    RosterVersionOut,
)

ROSTER_ROLES = (Role.CHAIR.value, Role.SUBSTITUTE.value)


async def visible_municipalities(db: AsyncSession, user: Principal) -> dict[uuid.UUID, str]:
    """Municipalities whose rosters the principal may see: their own, or their jour's members."""
    keeps = user.orgs_with(Permission.KEEP_ROSTER)
    jours = user.orgs_with(Permission.READ_ROSTERS)
    rows = (
        await db.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.kind == "municipality",
                Organisation.id.in_(keeps) | Organisation.jour_id.in_(jours),
            )
        )
    ).all()
    return {r.id: r.name for r in rows}


def _not_found(action: str, version_id: uuid.UUID, owner: uuid.UUID | None) -> NotFound:
    return NotFound(
        audit=AuditNote(
            action, "not_found", owner_org_id=owner, object_type="roster", object_id=str(version_id)
        )
    )


async def candidates(
    db: AsyncSession, vault: Vault, municipality_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, str]]:
    """Users who hold a chair or substitute role in the municipality: (id, name, role)."""
    rows = (
        await db.execute(
            select(User.id, User.name_enc, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organisation_id == municipality_id,
                Membership.role.in_(ROSTER_ROLES),
                Membership.revoked_at.is_(None),
            )
        )
    ).all()
    people = {
        (r.id, vault.decrypt(r.name_enc, field_context(User.name_enc, r.id)), r.role) for r in rows
    }
    return sorted(people, key=lambda p: p[1])


def _validate_entries(entries: list[EntryIn], allowed: set[uuid.UUID]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not entries:
        errors["entries"] = "Listan måste ha minst en rad."
    for i, e in enumerate(entries):
        key = f"entries-{i}"
        if e.user_id not in allowed:
            errors[f"{key}-user_id"] = (
                f"Rad {i + 1}: välj en ordförande eller ersättare i kommunen."
            )
        if e.function not in FUNCTIONS:
            errors[f"{key}-function"] = f"Rad {i + 1}: välj funktion."
        if e.valid_from.tzinfo is None or e.valid_to.tzinfo is None:
            errors[f"{key}-valid_from"] = f"Rad {i + 1}: ange tid med tidszon."
        elif e.valid_to <= e.valid_from:
            errors[f"{key}-valid_to"] = f"Rad {i + 1}: sluttiden måste vara efter starttiden."
        digits = [c for c in e.phone if c.isdigit()]
        if not 6 <= len(digits) <= 15 or any(c not in "0123456789+- ()" for c in e.phone):
            errors[f"{key}-phone"] = f"Rad {i + 1}: ange ett telefonnummer."
        if not 1 <= e.position <= 20:
            errors[f"{key}-position"] = f"Rad {i + 1}: ordningen ska vara 1–20."
    return errors


async def create_version(
    db: AsyncSession, vault: Vault, user: Principal, data: RosterIn
) -> uuid.UUID:
    """Store a new complete version of the municipality's roster."""
    if data.municipality_id not in user.orgs_with(Permission.KEEP_ROSTER):
        if data.municipality_id in await visible_municipalities(db, user):
            raise Forbidden(audit=AuditNote("roster.create", "denied"))
        raise NotFound(
            audit=AuditNote("roster.create", "not_found", owner_org_id=data.municipality_id)
        )
    allowed = {c[0] for c in await candidates(db, vault, data.municipality_id)}
    errors = _validate_entries(data.entries, allowed)
    if errors:
        raise InvalidInput(errors=errors)
    latest = await db.scalar(
        select(func.max(RosterVersion.number)).where(
            RosterVersion.municipality_id == data.municipality_id
        )
    )
    version = RosterVersion(
        municipality_id=data.municipality_id,
        number=(latest or 0) + 1,
        created_by=user.user_id,
    )
    db.add(version)
    try:
        await db.flush()
    except IntegrityError as exc:  # another handler saved a version at the same moment
        raise Conflict(
            "Listan ändrades samtidigt av någon annan. Ladda om och försök igen."
        ) from exc
    for e in data.entries:
        entry = RosterEntry(
            version_id=version.id,
            user_id=e.user_id,
            function=e.function,
            position=e.position,
            valid_from=e.valid_from,
            valid_to=e.valid_to,
            phone_enc="",
        )
        entry.id = uuid.uuid4()
        entry.phone_enc = vault.encrypt(
            e.phone.strip(), field_context(RosterEntry.phone_enc, entry.id)
        )
        db.add(entry)
    await audit.record(
        db,
        "roster.create",
        actor=user.actor(data.municipality_id),
        owner_org_id=data.municipality_id,
        object_type="roster",
        object_id=version.id,
        details={"number": version.number, "entries": len(data.entries)},
    )
    return version.id


async def _out(
    db: AsyncSession, vault: Vault, version: RosterVersion, municipality: str
) -> RosterVersionOut:
    names = await user_names(
        db, vault, {e.user_id for e in version.entries} | {a.user_id for a in version.acks}
    )
    return RosterVersionOut(
        id=version.id,
        municipality_id=version.municipality_id,
        municipality=municipality,
        number=version.number,
        created_at=version.created_at,
        entries=[_entry_out(vault, e, names) for e in version.entries],
        acknowledgements=[AckOut(a.jour_id, names.get(a.user_id, ""), a.at) for a in version.acks],
    )


def _entry_out(vault: Vault, e: RosterEntry, names: dict[uuid.UUID, str]) -> EntryOut:
    return EntryOut(
        user_id=e.user_id,
        name=names.get(e.user_id, ""),
        function=e.function,
        position=e.position,
        valid_from=e.valid_from,
        valid_to=e.valid_to,
        phone=vault.decrypt(e.phone_enc, field_context(RosterEntry.phone_enc, e.id)),
    )


def _with_children() -> tuple[object, object]:
    return selectinload(RosterVersion.entries), selectinload(RosterVersion.acks)


async def get_version(
    db: AsyncSession, vault: Vault, user: Principal, version_id: uuid.UUID
) -> RosterVersionOut:
    """One version, if the principal may see its municipality; audited."""
    version = await db.scalar(
        select(RosterVersion).where(RosterVersion.id == version_id).options(*_with_children())  # type: ignore[arg-type]
    )
    visible = await visible_municipalities(db, user)
    if version is None or version.municipality_id not in visible:
        raise _not_found("roster.read", version_id, version.municipality_id if version else None)
    await audit.record(
        db,
        "roster.read",
        actor=user.actor(),
        owner_org_id=version.municipality_id,
        object_type="roster",
        object_id=version.id,
    )
    return await _out(db, vault, version, visible[version.municipality_id])


async def list_versions(
    db: AsyncSession, vault: Vault, user: Principal, municipality_id: uuid.UUID
) -> list[RosterVersionOut]:
    """Every version of a visible municipality's roster, newest first."""
    visible = await visible_municipalities(db, user)
    if municipality_id not in visible:
        raise NotFound(audit=AuditNote("roster.list", "not_found", owner_org_id=municipality_id))
    versions = (
        await db.scalars(
            select(RosterVersion)
            .where(RosterVersion.municipality_id == municipality_id)
            .options(*_with_children())  # type: ignore[arg-type]
            .order_by(RosterVersion.number.desc())
        )
    ).all()
    return [await _out(db, vault, v, visible[municipality_id]) for v in versions]


async def acknowledge(db: AsyncSession, user: Principal, version_id: uuid.UUID) -> None:
    """The jour confirms it has received this version (once per jour)."""
    version = await db.get(RosterVersion, version_id)
    municipality = await db.get(Organisation, version.municipality_id) if version else None
    jours = user.orgs_with(Permission.READ_ROSTERS)
    if version is None or municipality is None or municipality.jour_id not in jours:
        visible = await visible_municipalities(db, user)
        if version is not None and version.municipality_id in visible:
            raise Forbidden("Endast socialjouren kvitterar listor.")
        raise _not_found(
            "roster.acknowledge", version_id, version.municipality_id if version else None
        )
    assert municipality.jour_id is not None
    exists = await db.scalar(
        select(RosterAck.id).where(
            RosterAck.version_id == version_id, RosterAck.jour_id == municipality.jour_id
        )
    )
    if exists:
        return  # a second click is a no-op: the receipt already exists
    db.add(RosterAck(version_id=version_id, jour_id=municipality.jour_id, user_id=user.user_id))
    try:
        await db.flush()
    except IntegrityError:  # a colleague acknowledged at the same moment
        return
    await audit.record(
        db,
        "roster.acknowledge",
        actor=user.actor(municipality.jour_id),
        owner_org_id=version.municipality_id,
        object_type="roster",
        object_id=version_id,
    )


async def _version_in_force(
    db: AsyncSession, municipality_id: uuid.UUID, at: datetime
) -> RosterVersion | None:
    return await db.scalar(
        select(RosterVersion)
        .where(RosterVersion.municipality_id == municipality_id, RosterVersion.created_at <= at)
        .options(*_with_children())  # type: ignore[arg-type]
        .order_by(RosterVersion.number.desc())
        .limit(1)
    )


async def on_call_now(
    db: AsyncSession, vault: Vault, user: Principal, *, now: datetime | None = None
) -> list[OnCallOut]:
    """For each visible municipality: who is on call now, in fallback order."""
    now = now or utcnow()
    visible = await visible_municipalities(db, user)
    jours = user.orgs_with(Permission.READ_ROSTERS)
    result: list[OnCallOut] = []
    for mid, name in sorted(visible.items(), key=lambda kv: kv[1]):
        version = await _version_in_force(db, mid, now)
        if version is None:
            result.append(OnCallOut(mid, name, None, None, False, []))
            continue
        names = await user_names(db, vault, {e.user_id for e in version.entries})
        current = sorted(
            (e for e in version.entries if e.valid_from <= now < e.valid_to),
            key=lambda e: e.position,
        )
        result.append(
            OnCallOut(
                municipality_id=mid,
                municipality=name,
                version_id=version.id,
                version_number=version.number,
                acknowledged=any(a.jour_id in jours for a in version.acks),
                on_call=[_entry_out(vault, e, names) for e in current],
            )
        )
    return result


# The night dashboard's on-call list, built once: for every municipality the caller may see, the
# version in force at `now` (the newest created by then, as `_version_in_force`), whether the
# caller's jour acknowledged it, and the first entry in the fallback order covering `now` with
# its user's encrypted name, in one statement of plain columns (no query per roster).
_Inner = aliased(RosterVersion)
_InnerEntry = aliased(RosterEntry)
_IN_FORCE_ID = (
    select(_Inner.id)
    .where(_Inner.municipality_id == Organisation.id, _Inner.created_at <= bindparam("now"))
    .order_by(_Inner.number.desc())
    .limit(1)
    .correlate(Organisation)
    .scalar_subquery()
)
_FIRST_ENTRY_ID = (
    select(_InnerEntry.id)
    .where(
        _InnerEntry.version_id == RosterVersion.id,
        _InnerEntry.valid_from <= bindparam("now"),
        _InnerEntry.valid_to > bindparam("now"),
    )
    .order_by(_InnerEntry.position, _InnerEntry.valid_from, _InnerEntry.id)
    .limit(1)
    .correlate(RosterVersion)
    .scalar_subquery()
)
_FIRST_ON_CALL = (
    select(
        Organisation.id,
        Organisation.name,
        RosterVersion.id,
        select(RosterAck.id)
        .where(
            RosterAck.version_id == RosterVersion.id,
            RosterAck.jour_id.in_(bindparam("jours", expanding=True)),
        )
        .exists(),
        RosterEntry.id,
        RosterEntry.user_id,
        RosterEntry.function,
        RosterEntry.position,
        RosterEntry.valid_from,
        RosterEntry.valid_to,
        RosterEntry.phone_enc,
        User.name_enc,
    )
    .select_from(Organisation)
    .outerjoin(RosterVersion, RosterVersion.id == _IN_FORCE_ID)
    .outerjoin(RosterEntry, RosterEntry.id == _FIRST_ENTRY_ID)
    .outerjoin(User, User.id == RosterEntry.user_id)
    .where(
        Organisation.kind == "municipality",
        Organisation.id.in_(bindparam("keeps", expanding=True))
        | Organisation.jour_id.in_(bindparam("jours", expanding=True)),
    )
)


def first_on_call_read(user: Principal, *, now: datetime) -> Read:
    """For each visible municipality (`visible_municipalities`): the first on call now and
    whether the caller's jour acknowledged the roster in force (`on_call_now`'s first line), as a
    read (`portal.db.reads`, one statement); `first_on_call_from_rows` parses its rows."""
    return Read(
        _FIRST_ON_CALL,
        {
            "now": now,
            "keeps": list(user.orgs_with(Permission.KEEP_ROSTER)),
            "jours": list(user.orgs_with(Permission.READ_ROSTERS)),
        },
    )


def first_on_call_from_rows(rows: Rows, vault: Vault) -> list[FirstOnCall]:
    """The rows of `first_on_call_read`, by municipality name; only the shown name and phone
    are decrypted."""
    result = []
    for row in rows:
        mid, name, version_id, acked, entry_id, user_id = row[:6]
        first = None
        if entry_id is not None:
            function, position, valid_from, valid_to, phone_enc, name_enc = row[6:]
            first = EntryOut(
                user_id=user_id,
                name=vault.decrypt(name_enc, field_context(User.name_enc, user_id))
                if name_enc
                else "",
                function=function,
                position=position,
                valid_from=valid_from,
                valid_to=valid_to,
                phone=vault.decrypt(phone_enc, field_context(RosterEntry.phone_enc, entry_id)),
            )
        result.append(FirstOnCall(mid, name, version_id, bool(acked), first))
    return sorted(result, key=lambda f: f.municipality)


async def first_on_call(
    db: AsyncSession, vault: Vault, user: Principal, *, now: datetime
) -> list[FirstOnCall]:
    """`first_on_call_read` executed alone, parsed by `first_on_call_from_rows`."""
    read = first_on_call_read(user, now=now)
    rows = (await core_execute(db, read.statement, read.params)).all()
    return first_on_call_from_rows(rows, vault)


async def function_at(
    db: AsyncSession, municipality_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> str:
    """The function (chair, substitute, appointed) the user had on the roster at `at`, or ""."""
    version = await _version_in_force(db, municipality_id, at)
    for e in version.entries if version else []:
        if e.user_id == user_id and e.valid_from <= at < e.valid_to:
            return e.function
    return ""


async def was_on_roster(
    db: AsyncSession, municipality_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> bool:
    """True when `user_id` was on the municipality's roster in force at `at`."""
    version = await _version_in_force(db, municipality_id, at)
    if version is None:
        return False
    return any(e.user_id == user_id and e.valid_from <= at < e.valid_to for e in version.entries)
