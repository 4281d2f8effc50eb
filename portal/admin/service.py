"""Users and roles: add by personnummer, grant, revoke. Every change is audited."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from auth.roles import Role, role_allowed_in
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.db.base import utcnow
from portal.db.models import Membership, Organisation, Unit, User
from portal.errors import Conflict, InvalidInput, NotFound
from portal.pii import (
    InvalidPersonnummer,
    Vault,
    field_context,
    invalid_personnummer,
    normalise_personnummer,
)


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as the admin pages show them."""

    id: uuid.UUID
    """The user."""
    name: str
    """Decrypted display name (as the administrator registered it)."""
    idp_name: str
    """The name the identity provider sent at the latest login, when different; else empty."""
    masked_pnr: str
    """Birth date and a masked tail: enough to tell people apart on screen."""
    personal_identity_number: str
    """Full personnummer (only on the user's own page)."""
    email: str
    """Notification address, or empty."""
    memberships: tuple[Membership, ...]
    """All memberships, live and revoked."""


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _check_email(email: str) -> str:
    """A plausible address (the mail server has the last word) or an InvalidInput."""
    clean = email.strip()
    if clean and (len(clean) > 254 or not EMAIL_RE.match(clean)):
        raise InvalidInput(errors={"email": "Ange en giltig e-postadress."})
    return clean


def _mask(pnr: str) -> str:
    return f"{pnr[:8]}-****"


def _row(vault: Vault, user: User, memberships: list[Membership]) -> UserRow:
    pnr = vault.decrypt(user.pnr_enc, field_context(User.pnr_enc, user.id))
    return UserRow(
        id=user.id,
        name=vault.decrypt(user.name_enc, field_context(User.name_enc, user.id)),
        idp_name=(
            vault.decrypt(user.idp_name_enc, field_context(User.idp_name_enc, user.id))
            if user.idp_name_enc
            else ""
        ),
        masked_pnr=_mask(pnr),
        personal_identity_number=pnr,
        email=vault.decrypt(user.email_enc, field_context(User.email_enc, user.id))
        if user.email_enc
        else "",
        memberships=tuple(memberships),
    )


async def list_users(db: AsyncSession, vault: Vault) -> list[UserRow]:
    """Every user with their memberships, sorted by name."""
    users = (await db.scalars(select(User))).all()
    ms = (
        await db.scalars(
            select(Membership).options(
                selectinload(Membership.organisation), selectinload(Membership.unit)
            )
        )
    ).all()
    by_user: dict[uuid.UUID, list[Membership]] = {}
    for m in ms:
        by_user.setdefault(m.user_id, []).append(m)
    rows = [_row(vault, u, by_user.get(u.id, [])) for u in users]
    return sorted(rows, key=lambda r: r.name.casefold())


async def get_user(db: AsyncSession, vault: Vault, user_id: uuid.UUID) -> UserRow:
    """One user with every membership."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound()
    ms = (
        await db.scalars(
            select(Membership)
            .where(Membership.user_id == user_id)
            .options(selectinload(Membership.organisation), selectinload(Membership.unit))
            .order_by(Membership.granted_at)
        )
    ).all()
    return _row(vault, user, list(ms))


async def add_user(
    db: AsyncSession, vault: Vault, actor: Actor, *, personnummer: str, name: str, email: str = ""
) -> uuid.UUID:
    """Add a person by personnummer; refuses duplicates."""
    errors: dict[str, str] = {}
    try:
        pnr = normalise_personnummer(personnummer)
    except InvalidPersonnummer:
        errors["personal_identity_number"] = invalid_personnummer()
        pnr = ""
    clean_name = " ".join(name.split())
    if not clean_name:
        errors["name"] = "Ange namn."
    elif len(clean_name) > 200:
        errors["name"] = "Namnet får vara högst 200 tecken."
    try:
        address = _check_email(email)
    except InvalidInput as exc:
        errors.update(exc.errors)
        address = ""
    if errors:
        raise InvalidInput(errors=errors)
    if await db.scalar(select(User.id).where(User.pnr_index == vault.index(pnr))):
        raise InvalidInput(
            errors={"personal_identity_number": "Personen finns redan som användare."}
        )
    user_id = uuid.uuid4()
    db.add(
        User(
            id=user_id,
            pnr_index=vault.index(pnr),
            pnr_enc=vault.encrypt(pnr, field_context(User.pnr_enc, user_id)),
            name_enc=vault.encrypt(clean_name, field_context(User.name_enc, user_id)),
            email_enc=vault.encrypt(address, field_context(User.email_enc, user_id))
            if address
            else None,
        )
    )
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent admin added the same person
        raise Conflict("Personen lades just till av någon annan.") from exc
    await audit.record(db, "user.add", actor=actor, object_type="user", object_id=user_id)
    return user_id


async def set_email(
    db: AsyncSession, vault: Vault, actor: Actor, user_id: uuid.UUID, email: str
) -> None:
    """Set or remove a user's notification address."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound()
    address = _check_email(email)
    user.email_enc = (
        vault.encrypt(address, field_context(User.email_enc, user.id)) if address else None
    )
    await audit.record(db, "user.email", actor=actor, object_type="user", object_id=user.id)


async def organisations(db: AsyncSession) -> list[Organisation]:
    """All organisations with their units, jour first, then by name."""
    orgs = (await db.scalars(select(Organisation).options(selectinload(Organisation.units)))).all()
    order = {"service": 0, "jour": 1, "municipality": 2}
    return sorted(orgs, key=lambda o: (order.get(o.kind, 9), o.name))


async def grant(
    db: AsyncSession,
    actor: Actor,
    *,
    user_id: uuid.UUID,
    organisation_id: str,
    role: str,
    unit_id: str,
) -> uuid.UUID:
    """Grant a role; validated against the kind of organisation and the unit's owner."""
    if await db.get(User, user_id) is None:
        raise NotFound()
    errors: dict[str, str] = {}
    org: Organisation | None = None
    with contextlib.suppress(ValueError):
        org = await db.get(Organisation, uuid.UUID(organisation_id))
    if org is None:
        errors["organisation_id"] = "Välj en organisation."
    try:
        parsed_role = Role(role)
    except ValueError:
        errors["role"] = "Välj en roll."
        parsed_role = None
    unit: Unit | None = None
    if unit_id:
        try:
            unit = await db.get(Unit, uuid.UUID(unit_id))
        except ValueError:
            unit = None
        if unit is None or (org is not None and unit.organisation_id != org.id):
            errors["unit_id"] = "Enheten hör inte till den valda organisationen."
    if org is not None and parsed_role is not None and not role_allowed_in(parsed_role, org.kind):
        errors["role"] = f"Rollen {parsed_role.label} kan inte ges i {org.name}."
    if errors:
        raise InvalidInput(errors=errors)
    assert org is not None and parsed_role is not None
    same_unit = Membership.unit_id == unit.id if unit else Membership.unit_id.is_(None)
    live = await db.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id,
            Membership.organisation_id == org.id,
            Membership.role == parsed_role.value,
            same_unit,
            Membership.revoked_at.is_(None),
        )
    )
    if live:
        raise InvalidInput(errors={"role": "Användaren har redan den rollen där."})
    membership = Membership(
        user_id=user_id,
        organisation_id=org.id,
        unit_id=unit.id if unit else None,
        role=parsed_role.value,
        granted_by=actor.user_id,
    )
    db.add(membership)
    await db.flush()
    await audit.record(
        db,
        "membership.grant",
        actor=actor,
        owner_org_id=org.id,
        object_type="membership",
        object_id=membership.id,
        details={"user_id": str(user_id), "role": parsed_role.value},
    )
    return membership.id


async def membership(db: AsyncSession, membership_id: uuid.UUID) -> Membership:
    """One live membership with its organisation and unit (NotFound; Conflict if revoked)."""
    m = await db.scalar(
        select(Membership)
        .where(Membership.id == membership_id)
        .options(selectinload(Membership.organisation), selectinload(Membership.unit))
    )
    if m is None:
        raise NotFound()
    if m.revoked_at is not None:
        raise Conflict("Rollen är redan borttagen.")
    return m


async def revoke(db: AsyncSession, actor: Actor, membership_id: uuid.UUID) -> uuid.UUID:
    """Revoke a role; it stops working at the user's next request. Returns the user id."""
    membership = await db.get(Membership, membership_id)
    if membership is None:
        raise NotFound()
    if membership.revoked_at is not None:
        raise Conflict("Rollen är redan borttagen.")
    membership.revoked_at = utcnow()
    membership.revoked_by = actor.user_id
    await audit.record(
        db,
        "membership.revoke",
        actor=actor,
        owner_org_id=membership.organisation_id,
        object_type="membership",
        object_id=membership.id,
        details={"user_id": str(membership.user_id), "role": membership.role},
    )
    return membership.user_id
