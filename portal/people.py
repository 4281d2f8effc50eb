"""Display names of users: decrypted only for the request that shows them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.models import User
from portal.pii import Vault, field_context


async def user_names(
    db: AsyncSession, vault: Vault, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """Names of the given users (unknown ids are simply absent)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = (await db.execute(select(User.id, User.name_enc).where(User.id.in_(wanted)))).all()
    return {r.id: vault.decrypt(r.name_enc, field_context(User.name_enc, r.id)) for r in rows}
