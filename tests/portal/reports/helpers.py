"""Helpers for report tests: unit ids, a valid report payload, direct database reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Organisation, Unit
from portal.settings import Settings

T = TypeVar("T")
BARN = "IFO barn och unga"


def with_db(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the portal's database (from a synchronous test)."""

    async def run() -> T:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                return await work(db)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def unit_ids(settings: Settings) -> dict[tuple[str, str], str]:
    """(municipality, unit name) -> unit id, for every unit."""

    async def work(db: AsyncSession) -> dict[tuple[str, str], str]:
        rows = await db.execute(
            select(Organisation.name, Unit.name, Unit.id).join(
                Unit, Unit.organisation_id == Organisation.id
            )
        )
        return {(m, u): str(i) for m, u, i in rows}

    return with_db(settings, work)


def audit_entries(settings: Settings, action: str | None = None) -> list[AuditEntry]:
    """Audit entries, oldest first, optionally of one action."""

    async def work(db: AsyncSession) -> list[AuditEntry]:
        stmt = select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(await db.scalars(stmt))

    return with_db(settings, work)


def recent(minutes: int = 60) -> str:
    """An ISO time `minutes` ago, UTC."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def report_payload(unit_id: str | None, /, **overrides: Any) -> dict[str, Any]:
    """A valid report about a 15-year-old boy, child involved, follow-up next weekday."""
    body: dict[str, Any] = {
        "unit_id": unit_id,
        "occurred_at": recent(90),
        "on_call": True,
        "initiator": "polisen",
        "category": "13_17_ar",
        "character": "barn_ungdom",
        "actions": ["skyddsbedomning", "information"],
        "minutes": 75,
        "subjects": [{"personal_identity_number": "20110305-9893", "name": "Pelle Testsson"}],
        "child_involved": True,
        "assessment": {
            "assessment": "Pojken bedöms inte vara i akut fara i natt.",
            "facts": "Samtal med pojken och modern på plats; polisens uppgifter.",
            "assessed_at": recent(60),
            "assessed_by": "Jonna Jourström, socialsekreterare",
        },
        "narrative": "Polisen ringde 22:10 om en orolig pojke vid Resecentrum. Hemskjuts ordnad.",
        "follow_up_requested": True,
        "follow_up_urgency": "nasta_vardag",
    }
    body.update(overrides)
    return body
