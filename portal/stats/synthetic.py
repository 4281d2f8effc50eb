"""A year of synthetic jour activity for the demo, following the Gävleborg 2017 figures.

Distributions come from the jour's annual report tables shipped in portal/stats/data (cases per
municipality incl. "Annan kommun", per category, character and initiator; actions per type) and
from Table 1 (172 of 2,383 cases without action, 3,900 actions, 253 cases during on-call time,
902 hours on actions). Every person is fictitious: personnummer are generated with valid check
digits from random birth dates and serial numbers, and no name is stored. Reports are written
under the code list valid today, encrypted like real ones (narrative, assessment, subjects), and
inserted in bulk so the demo starts in seconds.

Idempotent: nothing is generated when the jour already has reports (a demo restart, or a jour
that was used by hand).
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.codelists import service as codelists
from portal.codelists.standard import slug
from portal.db.models import Membership, Organisation, Unit, User
from portal.pii import Vault
from portal.reports import records as reports_records

CASES_PER_YEAR = 2383
NO_ACTION = 172 / 2383
ON_CALL = 253 / 2383
MEAN_EXTRA_ACTIONS = 3900 / (2383 - 172) - 1
MEAN_MINUTES = 902 * 60 / 2383
AGES = {
    "0_12_ar": (0, 12),
    "13_17_ar": (13, 17),
    "18_20_ar": (18, 20),
    "man": (21, 80),
    "kvinna": (21, 80),
    "familj": (25, 60),
    "kvinna_med_barn": (20, 50),
    "man_med_barn": (20, 55),
}
NARRATIVE = "Syntetiskt ärende för demonstrationen. Inga verkliga personer."


def _weights(filename: str, label_column: str) -> dict[str, int]:
    text = resources.files("portal.stats").joinpath(f"data/{filename}").read_text("utf-8")
    out: dict[str, int] = {}
    for row in csv.DictReader(text.splitlines()):
        value = (row.get("y2017") or "").strip()
        if value.isdigit() and int(value) > 0:
            out[row[label_column]] = int(value)
    return out


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _luhn(digits: str) -> int:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def fictitious_pnr(rng: random.Random, born: datetime) -> str:
    """A 12-digit personnummer with a valid check digit for a random serial on `born`."""
    serial = f"{rng.randint(0, 999):03d}"
    ten = born.strftime("%y%m%d") + serial
    return born.strftime("%Y%m%d") + serial + str(_luhn(ten))


@dataclass(frozen=True, slots=True)
class _Year:
    """What the generated reports are drawn from: the code list valid today, the weights of
    each code (from the 2017 tables), and where the jour's reports can belong."""

    version: str
    """Code-list version the reports are written under."""
    categories: dict[str, int]
    characters: dict[str, int]
    initiators: dict[str, int]
    actions: dict[str, int]
    municipalities: dict[str, int]
    """Weights per municipality name ("Annan kommun" included)."""
    child: set[str]
    """Category codes that involve a child (an assessment is written)."""
    members: dict[str, uuid.UUID]
    """The jour's organisations by name."""
    units: dict[tuple[uuid.UUID, str], uuid.UUID]
    """Units by (organisation, name)."""


async def _year(db: AsyncSession, jour_id: uuid.UUID, now: datetime) -> _Year:
    """Step 1: the distributions in today's codes, and the jour's municipalities and units."""
    version = await codelists.current_version(db, on=now.date())
    lists = await codelists.load(db, version)
    valid = {name: {c.code for c in codes} for name, codes in lists.lists.items()}

    def coded(filename: str, column: str, list_name: str) -> dict[str, int]:
        w = {slug(label): n for label, n in _weights(filename, column).items()}
        return {code: n for code, n in w.items() if code in valid[list_name]}

    members = {
        name: oid
        for oid, name in await db.execute(
            select(Organisation.id, Organisation.name).where(Organisation.jour_id == jour_id)
        )
    }
    units = {
        (org, name): uid
        for uid, org, name in await db.execute(select(Unit.id, Unit.organisation_id, Unit.name))
    }
    return _Year(
        version=version,
        categories=coded("gavleborg_t3_cases_per_category.csv", "category_sv", "category"),
        characters=coded("gavleborg_t6_cases_by_character.csv", "character_sv", "character"),
        initiators=coded("gavleborg_t7_cases_by_initiator.csv", "initiator_sv", "initiator"),
        actions=coded("gavleborg_t4_actions_per_type.csv", "action_sv", "action"),
        municipalities=_weights("gavleborg_t2_cases_per_municipality.csv", "municipality"),
        child={c.code for c in lists.lists["category"] if c.involves_child},
        members=members,
        units=units,
    )


def _report(
    rng: random.Random,
    vault: Vault,
    year: _Year,
    *,
    jour_id: uuid.UUID,
    author: uuid.UUID,
    now: datetime,
) -> tuple[dict[str, object], dict[str, object], list[dict[str, object]]]:
    """Step 2: one report's row, its subject's row and its action rows (drawn in this order from
    `rng`, so a seed gives the same year)."""
    row, rid, category, occurred = _report_row(
        rng, vault, year, jour_id=jour_id, author=author, now=now
    )
    return row, _subject(rng, vault, rid, category, occurred), _actions(rng, year, rid)


def _report_row(
    rng: random.Random,
    vault: Vault,
    year: _Year,
    *,
    jour_id: uuid.UUID,
    author: uuid.UUID,
    now: datetime,
) -> tuple[dict[str, object], uuid.UUID, str, datetime]:
    """The report (when, where, its codes and time; an assessment when a child is involved),
    with its id, category and time for the subject."""
    rid = uuid.uuid4()
    occurred = now - timedelta(seconds=rng.randint(3600, 365 * 86400))
    category = _pick(rng, year.categories)
    muni = _pick(rng, year.municipalities)
    org_id = year.members.get(muni)
    is_child = category in year.child
    unit = (
        year.units.get((org_id, "IFO barn och unga" if is_child else "IFO vuxen"))
        if org_id
        else None
    )
    row: dict[str, object] = {
        "id": rid,
        "jour_id": jour_id,
        "author_id": author,
        "municipality_id": org_id,
        "unit_id": unit,
        "other_municipality": None if org_id else "Uppsala",
        "code_list_version": year.version,
        "occurred_at": occurred,
        "on_call": rng.random() < ON_CALL,
        "initiator_code": _pick(rng, year.initiators),
        "category_code": category,
        "character_code": _pick(rng, year.characters),
        "minutes": max(5, 5 * round(rng.expovariate(1 / MEAN_MINUTES) / 5)),
        "child_involved": is_child,
        "assessment": None,
        "assessment_facts": None,
        "assessed_at": None,
        "assessed_by": None,
        "narrative": NARRATIVE,
        "follow_up_requested": False,
        "follow_up_urgency": None,
        "created_at": occurred + timedelta(minutes=45),
        "changed_at": occurred + timedelta(minutes=45),
        "acknowledged_at": occurred + timedelta(hours=20)
        if occurred < now - timedelta(days=2)
        else None,
    }
    if is_child:
        row["assessment"] = "Barnet bedöms inte vara i akut fara."
        row["assessment_facts"] = "Syntetiska uppgifter."
        row["assessed_at"] = occurred + timedelta(minutes=30)
        row["assessed_by"] = "Jourens socialsekreterare"
    return row, rid, category, occurred


def _subject(
    rng: random.Random, vault: Vault, rid: uuid.UUID, category: str, occurred: datetime
) -> dict[str, object]:
    """The report's one subject: a fictitious personnummer of an age that fits the category."""
    low, high = AGES.get(category, (21, 80))
    born = occurred - timedelta(days=rng.randint(low * 365 + 1, high * 365 + 300))
    pnr = fictitious_pnr(rng, born)
    sid = uuid.uuid4()
    return {
        "id": sid,
        "report_id": rid,
        "position": 0,
        "identity_unknown": False,
        "pnr_index": vault.index(pnr),
        "pnr": pnr,
        "name": None,
    }


def _actions(rng: random.Random, year: _Year, rid: uuid.UUID) -> list[dict[str, object]]:
    """The report's actions: none for about 7 %, otherwise one to four different codes."""
    if rng.random() < NO_ACTION:
        return []
    n = 1
    while n < 4 and rng.random() < MEAN_EXTRA_ACTIONS / (1 + MEAN_EXTRA_ACTIONS):
        n += 1
    chosen: set[str] = set()
    while len(chosen) < n:
        chosen.add(_pick(rng, year.actions))
    return [{"report_id": rid, "action_code": code} for code in sorted(chosen)]


async def generate_year(
    db: AsyncSession, vault: Vault, *, now: datetime, seed: int = 2017, cases: int = CASES_PER_YEAR
) -> int:
    """Insert a year of reports ending at `now` for the first jour; return how many."""
    jour = await db.scalar(select(Organisation).where(Organisation.kind == "jour").limit(1))
    if jour is None:
        return 0
    if await reports_records.has_reports(db, jour.id):
        return 0
    author = await db.scalar(
        select(Membership.user_id)
        .where(Membership.organisation_id == jour.id, Membership.role == "jour_staff")
        .limit(1)
    ) or await db.scalar(select(User.id).limit(1))
    assert author is not None
    rng = random.Random(seed)  # noqa: S311  (reproducible demo data, not a secret)
    year = await _year(db, jour.id, now)
    reports: list[dict[str, object]] = []
    subjects: list[dict[str, object]] = []
    action_rows: list[dict[str, object]] = []
    for _ in range(cases):
        row, subject, actions = _report(rng, vault, year, jour_id=jour.id, author=author, now=now)
        reports.append(row)
        subjects.append(subject)
        action_rows += actions
    await reports_records.insert_bulk(db, vault, reports, subjects, action_rows)
    return len(reports)
