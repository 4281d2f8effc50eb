"""Cost allocation of a jour between its member municipalities, per invoicing period.

The key is configuration: `cost_population_percent` of the cost is shared by population, the
rest by the time the jour spent on each municipality's cases (minutes in the incident reports
that occurred in the period). Population per municipality is data (portal/stats/data). Time spent
on "Annan kommun" and on reports without a municipality is not attributed to a member: shares
are computed over the members only. When no time was recorded at all, the time part follows the
population too. Amounts are whole kronor, rounded so that they add up exactly to the period's
cost (largest remainder).

A period is locked when it has closed: the basis as it stood is stored and shown from then on,
so a report registered late never changes an invoice already sent. A lock is never undone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import service as audit
from portal.db.models import Organisation
from portal.errors import Conflict
from portal.people import user_names
from portal.pii import Vault
from portal.principal import Principal
from portal.reports import records as reports
from portal.stats.models import CostPeriodLock
from portal.stats.periods import Period


@dataclass(frozen=True, slots=True)
class CostRow:
    """One municipality's part of the period's cost."""

    municipality: str
    """Name."""
    org_id: str
    """Organisation id."""
    population: int
    """Inhabitants used for the key."""
    minutes: int
    """Time the jour spent on the municipality's cases in the period."""
    population_share: float
    """Share of the members' population (0–1)."""
    time_share: float
    """Share of the members' time (0–1)."""
    share: float
    """Weighted share of the cost (0–1)."""
    amount_sek: int | None
    """Whole kronor (None when no annual cost is configured)."""

    def as_json(self) -> dict[str, Any]:
        """For the frozen basis of a locked period."""
        return {
            "municipality": self.municipality,
            "org_id": self.org_id,
            "population": self.population,
            "minutes": self.minutes,
            "population_share": self.population_share,
            "time_share": self.time_share,
            "share": self.share,
            "amount_sek": self.amount_sek,
        }


@dataclass(frozen=True, slots=True)
class CostBasis:
    """The invoice basis of a period, live or frozen."""

    period: Period
    """The invoicing period."""
    population_percent: int
    """The key: percent shared by population."""
    period_sek: int | None
    """The period's cost (annual cost × months / 12), or None."""
    rows: tuple[CostRow, ...]
    """One per member municipality."""
    locked_at: datetime | None = None
    """When the period was locked (None: live figures)."""
    locked_by: str | None = None
    """Who locked it."""


def allocate(
    members: list[tuple[str, str, int]],
    minutes: dict[str, int],
    population_percent: int,
    period_sek: int | None,
) -> tuple[CostRow, ...]:
    """Shares and amounts for members given as (org_id, name, population)."""
    total_pop = sum(p for _, _, p in members)
    total_min = sum(minutes.get(oid, 0) for oid, _, _ in members)
    weight = population_percent / 100
    raw: list[tuple[str, str, int, int, float, float, float]] = []
    for oid, name, pop in members:
        pop_share = pop / total_pop if total_pop else 0.0
        used = minutes.get(oid, 0)
        time_share = used / total_min if total_min else pop_share
        raw.append(
            (
                oid,
                name,
                pop,
                used,
                pop_share,
                time_share,
                weight * pop_share + (1 - weight) * time_share,
            )
        )
    amounts: list[int | None] = [None] * len(raw)
    if period_sek is not None:
        exact = [r[6] * period_sek for r in raw]
        floors = [int(x) for x in exact]
        left = period_sek - sum(floors)
        by_remainder = sorted(range(len(raw)), key=lambda i: (-(exact[i] - floors[i]), raw[i][1]))
        for i in by_remainder[:left]:
            floors[i] += 1
        amounts = list(floors)
    return tuple(
        CostRow(name, oid, pop, used, round(ps, 6), round(ts, 6), round(sh, 6), amounts[i])
        for i, (oid, name, pop, used, ps, ts, sh) in enumerate(raw)
    )


async def basis(
    db: AsyncSession,
    vault: Vault,
    jour_id: uuid.UUID,
    period: Period,
    *,
    population_percent: int,
    annual_sek: int,
    populations: dict[str, int],
) -> CostBasis:
    """The frozen basis when the period is locked, else the live one from today's reports."""
    lock = await db.scalar(
        select(CostPeriodLock).where(
            CostPeriodLock.jour_id == jour_id, CostPeriodLock.period_key == period.key
        )
    )
    if lock is not None:
        names = await user_names(db, vault, [lock.locked_by])
        return CostBasis(
            period,
            lock.population_percent,
            _period_sek(lock.annual_sek, period),
            tuple(CostRow(**row) for row in lock.basis),
            lock.locked_at,
            names.get(lock.locked_by, ""),
        )
    members = list(
        await db.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.jour_id == jour_id, Organisation.kind == "municipality")
            .order_by(Organisation.name)
        )
    )
    minutes = await reports.minutes_per_municipality(
        db, jour_id=jour_id, start=period.start, end=period.end
    )
    used = {str(m): n for m, n in minutes.items()}
    rows = allocate(
        [(str(m.id), m.name, populations.get(m.name, 0)) for m in members],
        used,
        population_percent,
        _period_sek(annual_sek, period),
    )
    return CostBasis(period, population_percent, _period_sek(annual_sek, period), rows)


def _period_sek(annual_sek: int, period: Period) -> int | None:
    return round(annual_sek * period.months / 12) if annual_sek else None


async def lock(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    jour_id: uuid.UUID,
    period: Period,
    *,
    now: datetime,
    population_percent: int,
    annual_sek: int,
    populations: dict[str, int],
) -> CostBasis:
    """Freeze the period's basis; Conflict when it has not closed yet or is already locked."""
    if period.end > now:
        raise Conflict("Perioden är inte avslutad än och kan inte låsas.")
    exists = await db.scalar(
        select(CostPeriodLock.id).where(
            CostPeriodLock.jour_id == jour_id, CostPeriodLock.period_key == period.key
        )
    )
    if exists is not None:
        raise Conflict("Perioden är redan låst.")
    live = await basis(
        db,
        vault,
        jour_id,
        period,
        population_percent=population_percent,
        annual_sek=annual_sek,
        populations=populations,
    )
    row = CostPeriodLock(
        jour_id=jour_id,
        period_key=period.key,
        locked_by=user.user_id,
        population_percent=population_percent,
        annual_sek=annual_sek,
        basis=[r.as_json() for r in live.rows],
    )
    db.add(row)
    await db.flush()
    await audit.record(
        db,
        "costs.lock",
        actor=user.actor(jour_id),
        owner_org_id=jour_id,
        object_type="cost_period",
        object_id=row.id,
        details={"period": period.key},
    )
    return await basis(
        db,
        vault,
        jour_id,
        period,
        population_percent=population_percent,
        annual_sek=annual_sek,
        populations=populations,
    )


def to_csv(b: CostBasis) -> str:
    """The invoice basis, semicolon-separated."""
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow([f"Fakturaunderlag {b.period.label}"])
    w.writerow(
        [
            f"Fördelning: {b.population_percent} % efter folkmängd, "
            f"{100 - b.population_percent} % efter använd tid"
        ]
    )
    w.writerow(["Låst" if b.locked_at else "Preliminärt (perioden är inte låst)"])
    w.writerow(
        [
            "Kommun",
            "Folkmängd",
            "Minuter",
            "Andel folkmängd %",
            "Andel tid %",
            "Andel %",
            "Belopp kr",
        ]
    )
    for r in b.rows:
        w.writerow(
            [
                r.municipality,
                r.population,
                r.minutes,
                f"{100 * r.population_share:.2f}".replace(".", ","),
                f"{100 * r.time_share:.2f}".replace(".", ","),
                f"{100 * r.share:.2f}".replace(".", ","),
                "" if r.amount_sek is None else r.amount_sek,
            ]
        )
    return out.getvalue()
