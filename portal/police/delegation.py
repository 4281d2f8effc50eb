"""The delegation matrix (FR-A5) as data, per municipality: who decides a matter.

A cell is (municipality, matter) -> "jour" (the jour staff decide under delegation) or "chair"
(the committee's chair decides; the jour prepares). A municipality without a row for a matter
has the default below — the Gävleborg model, where the jour staff have delegation for
everything but custody and relocations. The cells are set by an administrator
(`PUT /api/v1/delegation/{municipality_id}`, audited) or seeded (`jourpost demo`: Hudiksvall's
chair decides handräckning, as the Nordväst chair did).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal.audit import service as audit
from portal.db.models import Organisation
from portal.errors import AuditNote, Forbidden, InvalidInput, NotFound
from portal.police.models import DelegationRule
from portal.principal import Principal

MATTERS: dict[str, tuple[str, str]] = {
    "handrackning_lvu": ("Begäran om handräckning enligt 43 § LVU", "jour"),
    "handrackning_lvm": ("Begäran om handräckning enligt 45 § LVM", "jour"),
}
"""Matter -> (Swedish label, default decider). Custody and relocation (6 § LVU, 13 § LVM,
11 § LVU) are always the chair's (portal.decisions) and so are not cells here."""
DECIDERS = {"jour": "Socialjouren (delegation)", "chair": "Ordföranden"}
"""Decider -> Swedish label."""


def matter_for(act: str) -> str:
    """The matter of a request under `act` (lvu | lvm)."""
    return f"handrackning_{act}"


async def decider(db: AsyncSession, organisation_id: uuid.UUID, matter: str) -> str:
    """Who decides `matter` in the municipality: jour | chair."""
    rule = await db.scalar(
        select(DelegationRule.decided_by).where(
            DelegationRule.organisation_id == organisation_id, DelegationRule.matter == matter
        )
    )
    return rule or MATTERS[matter][1]


async def matrix(db: AsyncSession, user: Principal, organisation_id: uuid.UUID) -> dict[str, str]:
    """The municipality's matrix (matter -> decider), defaults filled in. Readable by its
    handlers, chairs, its jour's staff and administrators; others 404 (audited)."""
    org = await db.get(Organisation, organisation_id)
    allowed = (
        organisation_id in user.orgs_with(Permission.POST_ADVISORIES)
        or organisation_id in user.orgs_with(Permission.SIGN_DECISIONS)
        or (org is not None and org.jour_id in user.orgs_with(Permission.READ_ADVISORIES))
        or bool(user.orgs_with(Permission.MANAGE_USERS))
    )
    if org is None or org.kind != "municipality" or not allowed:
        raise NotFound(
            audit=AuditNote("delegation.read", "denied" if org else "not_found",
                            org.id if org else None, "organisation", str(organisation_id))
        )  # fmt: skip
    return {m: await decider(db, organisation_id, m) for m in MATTERS}


async def set_rules(
    db: AsyncSession, user: Principal, organisation_id: uuid.UUID, rules: dict[str, str],
    *, now: datetime,
) -> dict[str, str]:  # fmt: skip
    """Set cells of the matrix (administrators only); audited with the old and new values."""
    if not user.orgs_with(Permission.MANAGE_USERS):
        raise Forbidden(
            "Bara en administratör kan ändra delegationsordningen.",
            audit=AuditNote("delegation.change", "denied", organisation_id, "organisation",
                            str(organisation_id)),
        )  # fmt: skip
    org = await db.get(Organisation, organisation_id)
    if org is None or org.kind != "municipality":
        raise NotFound()
    errors = {
        m: "Välj socialjouren eller ordföranden."
        for m, who in rules.items()
        if m in MATTERS and who not in DECIDERS
    }
    errors |= {m: "Okänt ärende." for m in rules if m not in MATTERS}
    if errors:
        raise InvalidInput(errors=errors)
    before = {m: await decider(db, organisation_id, m) for m in MATTERS}
    for matter, who in rules.items():
        row = await db.scalar(
            select(DelegationRule).where(
                DelegationRule.organisation_id == organisation_id, DelegationRule.matter == matter
            )
        )
        if row is None:
            db.add(DelegationRule(organisation_id=organisation_id, matter=matter, decided_by=who,
                                  changed_by=user.user_id, changed_at=now))  # fmt: skip
        else:
            row.decided_by, row.changed_by, row.changed_at = who, user.user_id, now
    await db.flush()
    after = {m: await decider(db, organisation_id, m) for m in MATTERS}
    await audit.record(
        db, "delegation.change", actor=user.actor(), owner_org_id=organisation_id,
        object_type="organisation", object_id=organisation_id,
        details={"before": before, "after": after},
    )  # fmt: skip
    return after


async def seed(db: AsyncSession, organisation_id: uuid.UUID, matter: str, who: str) -> None:
    """Set one cell without an actor (the demo's seed); nothing when the cell exists."""
    exists = await db.scalar(
        select(DelegationRule.id).where(
            DelegationRule.organisation_id == organisation_id, DelegationRule.matter == matter
        )
    )
    if exists is None:
        db.add(DelegationRule(organisation_id=organisation_id, matter=matter, decided_by=who))
        await db.flush()


async def overview(
    db: AsyncSession, user: Principal
) -> list[tuple[uuid.UUID, str, dict[str, str]]]:
    """Every municipality's matrix, by name (administrators only; the admin page)."""
    if not user.orgs_with(Permission.MANAGE_USERS):
        raise Forbidden(
            "Bara en administratör ser delegationsordningarna.",
            audit=AuditNote("delegation.read", "denied"),
        )
    orgs = (
        await db.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.kind == "municipality")
            .order_by(Organisation.name)
        )
    ).all()
    rules = await db.execute(
        select(DelegationRule.organisation_id, DelegationRule.matter, DelegationRule.decided_by)
    )
    cells: dict[tuple[uuid.UUID, str], str] = {(o, m): who for o, m, who in rules}
    return [
        (org_id, name, {m: cells.get((org_id, m), default) for m, (_, default) in MATTERS.items()})
        for org_id, name in orgs
    ]
