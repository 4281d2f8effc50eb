"""Placement register changes: register and amend (each a new immutable version).

An amendment names the version it was based on; a stale one is refused (409), checked by a
conditional UPDATE on `current_version`, so two concurrent amendments can't both win. Ending a
placement is an amendment that sets `ends_on`. Reads are in `portal.placements.queries`,
who-may-what in `portal.placements.access`. Every change is audited in the request's
transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import service as audit
from portal.db.models import Organisation
from portal.errors import Conflict, InvalidInput
from portal.lookup import names
from portal.pii import Vault, field_context
from portal.placements import access
from portal.placements.content import PlacementContent, PlacementDraft, to_blob, validate
from portal.placements.models import Placement, PlacementVersion
from portal.principal import Principal

STALE = (
    "Placeringen har ändrats av någon annan sedan du öppnade den (nu version {n}). "
    "Öppna den igen och gör om din ändring."
)


def _apply(pl: Placement, content: PlacementContent, now: datetime) -> None:
    pl.legal_basis, pl.legal_section = content.legal_basis, content.legal_section
    pl.starts_on, pl.ends_on, pl.changed_at = content.starts_on, content.ends_on, now


async def _add_version(
    db: AsyncSession,
    vault: Vault,
    pl: Placement,
    number: int,
    kind: str,
    content: PlacementContent,
    user_id: uuid.UUID,
    now: datetime,
) -> None:
    version_id = uuid.uuid4()
    db.add(
        PlacementVersion(
            id=version_id,
            placement_id=pl.id,
            version=number,
            kind=kind,
            created_by=user_id,
            created_at=now,
            legal_basis=content.legal_basis,
            legal_section=content.legal_section,
            starts_on=content.starts_on,
            ends_on=content.ends_on,
            pnr_index=vault.index(content.personnummer),
            pnr_enc=vault.encrypt(
                content.personnummer, field_context(PlacementVersion.pnr_enc, version_id)
            ),
            content_enc=vault.encrypt(
                to_blob(content), field_context(PlacementVersion.content_enc, version_id)
            ),
        )
    )
    await db.flush()
    # Findable by name too: the new (current) version's name (portal.lookup.names).
    await names.index_names(db, vault, access.OBJECT_TYPE, pl.id, [content.name])


async def create(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    draft: PlacementDraft,
    *,
    now: datetime,
    organisation_id: uuid.UUID | None = None,
    errors: dict[str, str] | None = None,
) -> uuid.UUID:
    """Register a placement of the caller's municipality; returns its id."""
    org_id = access.keeper_org(user, organisation_id)
    content = validate(draft, errors=errors)
    org = await db.get(Organisation, org_id)
    if org is None or org.jour_id is None:
        raise InvalidInput(
            errors={"organisation_id": "Kommunen är inte ansluten till en socialjour."}
        )
    pl = Placement(
        organisation_id=org_id,
        jour_id=org.jour_id,
        created_by=user.user_id,
        created_at=now,
        current_version=1,
    )
    _apply(pl, content, now)
    db.add(pl)
    await db.flush()
    await _add_version(db, vault, pl, 1, "created", content, user.user_id, now)
    await audit.record(
        db, "placement.create", actor=user.actor(org_id), owner_org_id=org_id,
        object_type=access.OBJECT_TYPE, object_id=pl.id, details={"version": 1},
    )  # fmt: skip
    return pl.id


async def amend(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    placement_id: uuid.UUID,
    draft: PlacementDraft,
    *,
    base_version: int | None,
    now: datetime,
    errors: dict[str, str] | None = None,
) -> int:
    """Save a new version (a correction, a move, a new legal basis, an end date)."""
    pl = await access.get_for_keeper(db, user, placement_id, "placement.amend")
    if base_version != pl.current_version:
        raise Conflict(STALE.format(n=pl.current_version))
    content = validate(draft, errors=errors)
    claimed = await db.execute(
        update(Placement)
        .where(Placement.id == pl.id, Placement.current_version == base_version)
        .values(current_version=base_version + 1)
        .returning(Placement.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.first() is None:
        raise Conflict(STALE.format(n=base_version + 1))
    number = pl.current_version = base_version + 1
    await _add_version(db, vault, pl, number, "amended", content, user.user_id, now)
    _apply(pl, content, now)
    await audit.record(
        db, "placement.amend", actor=access.actor_for(user, pl), owner_org_id=pl.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=pl.id, details={"version": number},
    )  # fmt: skip
    return number
