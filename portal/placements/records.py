"""The one interface other features use to read placements (lookup, police requests).

Other features never import portal.placements.models; they go through these functions, which
apply the caller's visibility. The caller writes the audit entry of the search (the lookup
audits the blind index, never the number).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from portal.pii import Vault
from portal.placements import queries
from portal.placements.content import LEGAL_BASES, PLACE_KINDS, SECTIONS, STATUS_LABELS
from portal.placements.queries import Summary
from portal.principal import Principal

__all__ = ["Summary", "describe_section", "find_by_person", "place_kind_label", "status_label"]


async def find_by_person(
    db: AsyncSession, vault: Vault, p: Principal, pnr_index: str, *, now: datetime
) -> list[Summary]:
    """Planned, current and recently ended (30 days) placements of the person with this blind
    index that the caller may see, latest start first (not audited: the caller audits)."""
    return await queries.find_by_pnr_index(db, vault, p, pnr_index, now=now)


def describe_section(code: str) -> str:
    """The Swedish label of a legal section code ("3 § LVU – eget beteende")."""
    return SECTIONS[code][1] if code in SECTIONS else code


def legal_basis_label(code: str) -> str:
    """The Swedish label of a legal basis (sol | lvu | lvm)."""
    return LEGAL_BASES.get(code, code)


def place_kind_label(code: str) -> str:
    """The Swedish label of a kind of home or institution."""
    return PLACE_KINDS.get(code, code)


def status_label(code: str) -> str:
    """The Swedish label of planned | active | ended."""
    return STATUS_LABELS.get(code, code)
