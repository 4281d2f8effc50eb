"""Cost allocation of a jour between its member municipalities, per invoicing period.

The key is data per jour (FR-G6; `CostKey`, edited by the jour's unit head on the cost page or
through the API, audited with the old and new values): `population_percent` of the cost is shared
by population, the rest by the time the jour spent on each municipality's cases (minutes in the
incident reports that occurred in the period); the annual cost; and the invoicing period (tertial,
quarter or year). A jour without a key of its own uses the instance's settings
(`cost_population_percent`, `cost_annual_sek`, `cost_period`) as its default. Population per
municipality is data (portal/stats/data). Time spent on "Annan kommun" and on reports without a
municipality is not attributed to a member: shares are computed over the members only. When no
time was recorded at all, the time part follows the population too. Amounts are whole kronor,
rounded so that they add up exactly to the period's cost (largest remainder).

A period is locked when it has closed: the basis as it stood is stored and shown from then on,
with the key that was used, so neither a report registered late nor a later change of the key
changes an invoice already sent. A lock is never undone.
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
from portal.errors import Conflict, InvalidInput
from portal.people import user_names
from portal.pii import Vault
from portal.principal import Principal
from portal.reports import records as reports
from portal.settings import Settings
from portal.stats.models import CostKey, CostPeriodLock
from portal.stats.periods import KINDS, Period

PERIOD_KINDS = ("tertial", "quarter", "year")
"""Invoicing periods a key may name."""
ANNUAL_SEK_MAX = 1_000_000_000
"""The largest annual cost a key takes (a jour's budget is millions; this bounds typing errors)."""


@dataclass(frozen=True, slots=True)
class Key:
    """A jour's cost-allocation key, its own or the instance's default."""

    population_percent: int
    """Percent of the cost shared by population (0–100); the rest by time used."""
    annual_sek: int
    """The jour's annual cost in whole kronor (0: shares only, no amounts)."""
    period: str
    """Invoicing period: tertial, quarter or year."""
    own: bool = False
    """The jour's own key (False: the instance's default from the settings)."""
    updated_at: datetime | None = None
    """When the jour's key was last changed."""
    updated_by: str = ""
    """Who changed it (name)."""

    @property
    def period_label(self) -> str:
        """Swedish: Tertial, Kvartal or Helår."""
        return KINDS[self.period]

    def as_json(self) -> dict[str, Any]:
        """The key's values (for audit entries and the API)."""
        return {
            "population_percent": self.population_percent,
            "annual_sek": self.annual_sek,
            "invoicing_period": self.period,
        }


def default_key(settings: Settings) -> Key:
    """The instance's key, for a jour with none of its own."""
    return Key(settings.cost_population_percent, settings.cost_annual_sek, settings.cost_period)


async def key_for(db: AsyncSession, vault: Vault, jour_id: uuid.UUID, default: Key) -> Key:
    """The jour's own key, or `default`."""
    row = await db.get(CostKey, jour_id)
    if row is None:
        return default
    names = await user_names(db, vault, [row.updated_by])
    return Key(
        row.population_percent,
        row.annual_sek,
        row.period_kind,
        own=True,
        updated_at=row.updated_at,
        updated_by=names.get(row.updated_by, "") if row.updated_by else "",
    )


def _whole(value: object) -> int | None:
    """An integer from a form ("7 714 000", "50") or JSON (50); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not text or not text.lstrip("-").isdigit() or len(text) > 12:
        return None
    return int(text)


def parse_key(population_percent: object, annual_sek: object, period: object) -> Key:
    """A key from what a person typed or an API client sent; InvalidInput (Swedish, per field)
    when any part is wrong, so nothing is stored half."""
    errors: dict[str, str] = {}
    percent = _whole(population_percent)
    if percent is None or not 0 <= percent <= 100:
        errors["population_percent"] = (
            "Ange andelen som fördelas efter folkmängd som ett heltal från 0 till 100."
        )
    annual = _whole(annual_sek)
    if annual is None or not 0 <= annual <= ANNUAL_SEK_MAX:
        errors["annual_sek"] = (
            "Ange årskostnaden i hela kronor, från 0 till 1 000 000 000 (0: bara andelar)."
        )
    if period not in PERIOD_KINDS:
        errors["invoicing_period"] = "Välj faktureringsperiod: tertial, kvartal eller helår."
    if errors:
        raise InvalidInput(errors=errors)
    assert percent is not None and annual is not None
    return Key(percent, annual, str(period))


async def set_key(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    jour_id: uuid.UUID,
    new: Key,
    *,
    default: Key,
    now: datetime,
) -> Key:
    """Make `new` the jour's own key; audited (`costs.key`) with the old and new values. Locked
    periods keep the key they were locked with."""
    before = await key_for(db, vault, jour_id, default)
    row = await db.get(CostKey, jour_id)
    if row is None:
        row = CostKey(jour_id=jour_id)
        db.add(row)
    row.population_percent = new.population_percent
    row.annual_sek = new.annual_sek
    row.period_kind = new.period
    row.updated_at, row.updated_by = now, user.user_id
    await db.flush()
    await audit.record(
        db,
        "costs.key",
        actor=user.actor(jour_id),
        owner_org_id=jour_id,
        object_type="cost_key",
        object_id=jour_id,
        details={
            "before": {**before.as_json(), "own": before.own},
            "after": {**new.as_json(), "own": True},
        },
    )
    return await key_for(db, vault, jour_id, default)


async def seed_key(db: AsyncSession, jour_id: uuid.UUID, key: Key) -> bool:
    """Give the jour `key` unless it has one of its own (the demo); True when it was added."""
    if await db.get(CostKey, jour_id) is not None:
        return False
    db.add(
        CostKey(
            jour_id=jour_id,
            population_percent=key.population_percent,
            annual_sek=key.annual_sek,
            period_kind=key.period,
        )
    )
    await db.flush()
    await audit.record(
        db,
        "costs.key",
        owner_org_id=jour_id,
        object_type="cost_key",
        object_id=jour_id,
        details={"before": None, "after": {**key.as_json(), "own": True}, "source": "demo"},
    )
    return True


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
    annual_sek: int
    """The key: the annual cost the period's cost was taken from (0: none)."""
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
    key: Key,
    populations: dict[str, int],
) -> CostBasis:
    """The frozen basis (with the key it was locked with) when the period is locked, else the
    live one from today's reports and `key`."""
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
            lock.annual_sek,
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
    period_sek = _period_sek(key.annual_sek, period)
    rows = allocate(
        [(str(m.id), m.name, populations.get(m.name, 0)) for m in members],
        used,
        key.population_percent,
        period_sek,
    )
    return CostBasis(period, key.population_percent, key.annual_sek, period_sek, rows)


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
    key: Key,
    populations: dict[str, int],
) -> CostBasis:
    """Freeze the period's basis with `key`; Conflict when it has not closed yet or is already
    locked."""
    if period.end > now:
        raise Conflict("Perioden är inte avslutad än och kan inte låsas.")
    exists = await db.scalar(
        select(CostPeriodLock.id).where(
            CostPeriodLock.jour_id == jour_id, CostPeriodLock.period_key == period.key
        )
    )
    if exists is not None:
        raise Conflict("Perioden är redan låst.")
    live = await basis(db, vault, jour_id, period, key=key, populations=populations)
    row = CostPeriodLock(
        jour_id=jour_id,
        period_key=period.key,
        locked_by=user.user_id,
        population_percent=key.population_percent,
        annual_sek=key.annual_sek,
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
        details={"period": period.key, "key": key.as_json()},
    )
    return await basis(db, vault, jour_id, period, key=key, populations=populations)


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
