"""Statistics per municipality and period, counted from the incident reports' structured fields.

Only codes, times and flags are read (they are stored in clear for exactly this purpose); no
personal data is decrypted. A period that spans two code-list versions is reported in the codes
of the version valid on the period's last day: older codes are mapped forward through the
stored mappings. A code that was split (2016's "13–20 år" became "13–17 år" and "18–20 år")
cannot be attributed to one of its successors, so it is counted once, in a row of its own that
names both successors — never twice, never guessed. See docs/statistics.md.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission, Role
from portal.codelists import service as codelists
from portal.codelists.service import CodeLists, CodeMapper
from portal.db.models import Organisation
from portal.decisions import records as decisions
from portal.errors import AuditNote, Forbidden, NotFound
from portal.police import records as police
from portal.principal import Principal
from portal.reports import records as reports
from portal.reports.records import StatAction, StatReport
from portal.stats.periods import Period
from portal.timefmt import STOCKHOLM

OTHER = "Annan kommun"
UNKNOWN = "Okänd kommun"
# Actions that are decisions or measures the owners follow per municipality (FR-G5).
DECISION_ACTIONS = (
    ("ordf_besl_6_lvu", "Ordförandebeslut 6 § LVU"),
    ("ordf_besl_13_lvm", "Ordförandebeslut 13 § LVM"),
    ("omplac_11_lvu", "Omplacering 11 § LVU"),
    ("plac_4_kap_1_sol", "Placering 4 kap. 1 § SoL"),
    ("handr_43_lvu", "Handräckning 43 § LVU"),
    ("handr_45_lvm", "Handräckning 45 § LVM"),
    ("handr_aterk", "Handräckning, återförande"),
)
# A visit: staff left the police station to meet someone, or attended a police interview.
VISIT_ACTIONS = frozenset({"tillsyn_individ", "medv_vid_forhor"})
LISTS = ("category", "character", "initiator", "action")
LIST_CAPTIONS = {
    "category": "Ärenden per kategori",
    "character": "Ärenden per karaktär",
    "initiator": "Ärenden per initiativtagare",
    "action": "Åtgärder per typ",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a table."""

    key: str
    """Code (or codes joined by "+" for a split code counted once)."""
    label: str
    """Swedish label."""
    count: int
    """How many."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table of counts with its total."""

    name: str
    """category | character | initiator | action | decisions."""
    caption: str
    """Swedish caption."""
    rows: tuple[Row, ...]
    """The lines, in code-list order (zeros included)."""
    unit: str = "ärenden"
    """What is counted."""

    @property
    def total(self) -> int:
        """Sum of the rows."""
        return sum(r.count for r in self.rows)


@dataclass(frozen=True, slots=True)
class KeyFigure:
    """One figure of the jour's Table 1."""

    key: str
    """Stable name."""
    label: str
    """Swedish label."""
    value: float | None
    """The figure; None when Jourpost does not record it."""
    unit: str
    """ärenden | åtgärder | timmar | procent | besök."""
    is_count: bool = True
    """Counts of cases may be suppressed for political audiences; hours and shares are not."""


@dataclass(frozen=True, slots=True)
class MunicipalityRow:
    """Cases and time per municipality, with the rate per 10,000 inhabitants."""

    name: str
    """Municipality, "Annan kommun" or "Okänd kommun"."""
    org_id: uuid.UUID | None
    """The organisation (None for the two catch-all rows)."""
    cases: int
    """Cases in the period."""
    on_call: int
    """Of which during on-call time."""
    minutes: int
    """Time spent."""
    population: int | None
    """Inhabitants (member municipalities only)."""

    @property
    def per_10000(self) -> float | None:
        """Cases per 10,000 inhabitants, one decimal."""
        if not self.population:
            return None
        return round(self.cases * 10_000 / self.population, 1)


@dataclass(frozen=True, slots=True)
class Statistics:
    """Everything the statistics page and the exports show for one scope and period."""

    period: Period
    """The period."""
    scope_name: str
    """The jour or the municipality."""
    code_version: str
    """Code-list version the tables are reported in."""
    key_figures: tuple[KeyFigure, ...]
    """Table 1."""
    municipalities: tuple[MunicipalityRow, ...]
    """Cases per municipality (one row when the scope is a municipality)."""
    tables: tuple[Table, ...]
    """Category, character, initiator, actions, decisions."""
    jourpost_decisions: tuple[Row, ...]
    """Chair decisions drafted in Jourpost (not cancelled), by kind."""
    jourpost_police: tuple[Row, ...] = ()
    """Requests for police assistance made (signed) in Jourpost, by the "Handr" codes."""
    quality: tuple[str, ...] = field(default_factory=tuple)
    """Data-quality warnings (Swedish)."""

    def table(self, name: str) -> Table:
        """The table called `name`."""
        return next(t for t in self.tables if t.name == name)

    def figure(self, key: str) -> KeyFigure:
        """The key figure called `key`."""
        return next(f for f in self.key_figures if f.key == key)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose statistics a user asked for, and how they may be shown."""

    jour_id: uuid.UUID
    """The jour whose reports are counted."""
    municipality_id: uuid.UUID | None
    """One municipality, or None for the whole jour."""
    name: str
    """Its name."""
    suppress: bool
    """Small counts hidden (a political audience: a chair without another statistics role)."""


def populations() -> dict[str, int]:
    """Inhabitants per municipality name (approximate; data file shipped with the package)."""
    text = resources.files("portal.stats").joinpath("data/populations.csv").read_text("utf-8")
    return {
        row["municipality"]: int(row["population_approx"])
        for row in csv.DictReader(text.splitlines())
    }


async def scopes(db: AsyncSession, user: Principal) -> list[Scope]:
    """Every scope the user may see: a jour (and each of its members), or their municipality."""
    out: list[Scope] = []
    for m in user.memberships:
        if Permission.READ_STATISTICS not in _permissions(user, m.org_id):
            continue
        if any(
            s.municipality_id == m.org_id or (s.jour_id == m.org_id and s.municipality_id is None)
            for s in out
        ):
            continue
        org = await db.get(Organisation, m.org_id)
        if org is None:
            continue
        if org.kind == "jour":
            out.append(Scope(org.id, None, org.name, False))
            members = await db.scalars(
                select(Organisation)
                .where(Organisation.jour_id == org.id, Organisation.kind == "municipality")
                .order_by(Organisation.name)
            )
            out += [Scope(org.id, mm.id, mm.name, False) for mm in members]
        elif org.kind == "municipality" and org.jour_id is not None:
            roles = {x.role for x in user.memberships if x.org_id == org.id}
            political = Role.CHAIR in roles and not (roles - {Role.CHAIR, Role.SUBSTITUTE})
            out.append(Scope(org.jour_id, org.id, org.name, political))
    return out


def _permissions(user: Principal, org_id: uuid.UUID) -> set[Permission]:
    from auth.roles import ROLE_PERMISSIONS

    perms: set[Permission] = set()
    for m in user.memberships:
        if m.org_id == org_id:
            perms |= ROLE_PERMISSIONS[m.role]
    return perms


async def resolve_scope(
    db: AsyncSession, user: Principal, org_id: uuid.UUID | None
) -> tuple[Scope, list[Scope]]:
    """The scope for `org_id` (default: the user's first); NotFound (audited) when not theirs."""
    allowed = await scopes(db, user)
    if not allowed:
        raise Forbidden("Du har inte behörighet att se statistik.")
    if org_id is None:
        return allowed[0], allowed
    for s in allowed:
        if s.municipality_id == org_id or (s.municipality_id is None and s.jour_id == org_id):
            return s, allowed
    raise NotFound(
        audit=AuditNote(
            "stats.read",
            "not_found",
            owner_org_id=org_id,
            object_type="statistics",
            object_id=str(org_id),
        )
    )


async def _target_version(db: AsyncSession, period: Period) -> str:
    last_day = (period.end - timedelta(microseconds=1)).astimezone(STOCKHOLM).date()
    return await codelists.current_version(db, on=last_day)


@dataclass(frozen=True, slots=True)
class _Counted:
    """The reports and actions of one scope and period, read once (codes, times, flags)."""

    reports: list[StatReport]
    """One row per report: id, municipality, code-list version, on_call, codes, minutes."""
    actions: list[StatAction]
    """One row per action: report id, action code, the report's code-list version."""


async def _read(db: AsyncSession, scope: Scope, period: Period) -> _Counted:
    """Step 1: the structured fields of the scope's reports in the period, and their actions."""
    rows, actions = await reports.stat_rows(
        db,
        jour_id=scope.jour_id,
        municipality_id=scope.municipality_id,
        start=period.start,
        end=period.end,
    )
    return _Counted(rows, actions)


async def _old_labels(db: AsyncSession, versions: set[str]) -> dict[tuple[str, str], str]:
    """Labels of older code-list versions, for the rows of split codes."""
    labels: dict[tuple[str, str], str] = {}
    for v in versions:
        older = await codelists.load(db, v)
        for name, entries in older.lists.items():
            labels.update({(name, c.code): c.label for c in entries})
    return labels


def _count_codes(
    data: _Counted, mapper: CodeMapper, old_labels: dict[tuple[str, str], str]
) -> tuple[dict[str, Counter[tuple[str, ...]]], dict[tuple[str, tuple[str, ...]], set[str]]]:
    """Step 2: count each list's codes in the target version; note which old codes were split."""
    counters: dict[str, Counter[tuple[str, ...]]] = {name: Counter() for name in LISTS}
    split_from: dict[tuple[str, tuple[str, ...]], set[str]] = {}

    def count(name: str, version: str, code: str) -> None:
        mapped = mapper(name, version, code)
        counters[name][mapped] += 1
        if len(mapped) > 1:
            split_from.setdefault((name, mapped), set()).add(old_labels.get((name, code), code))

    for r in data.reports:
        count("category", r.code_list_version, r.category_code)
        count("character", r.code_list_version, r.character_code)
        count("initiator", r.code_list_version, r.initiator_code)
    for a in data.actions:
        count("action", a.code_list_version, a.action_code)
    return counters, split_from


def _code_tables(
    lists: CodeLists,
    counters: dict[str, Counter[tuple[str, ...]]],
    split_from: dict[tuple[str, tuple[str, ...]], set[str]],
    quality: list[str],
) -> list[Table]:
    """Step 3: one table per code list in code-list order (zeros included), split codes and
    unknown codes in rows of their own, then the decisions table drawn from the actions."""
    tables: list[Table] = []
    for name in LISTS:
        left = Counter(counters[name])
        rows = [Row(c.code, c.label, left.pop((c.code,), 0)) for c in lists.lists[name]]
        for codes, n in sorted(left.items()):
            if len(codes) > 1:
                labels = " eller ".join(lists.label(name, c) for c in codes)
                old = ", ".join(sorted(split_from[(name, codes)]))
                rows.append(Row("+".join(codes), f"{labels} (kodat som {old} i äldre kodlista)", n))
            else:
                rows.append(Row(codes[0], f"Okänd kod {codes[0]}", n))
                quality.append(
                    f"{n} rader har koden {codes[0]} som saknas i kodlistan {lists.version}."
                )
        unit = "åtgärder" if name == "action" else "ärenden"
        tables.append(Table(name, LIST_CAPTIONS[name], tuple(rows), unit))
    by_action = {r.key: r.count for r in tables[-1].rows}
    tables.append(
        Table(
            "decisions",
            "Beslut och handräckningar (åtgärdskoder i händelserapporterna)",
            tuple(Row(code, label, by_action.get(code, 0)) for code, label in DECISION_ACTIONS),
            "beslut",
        )
    )
    return tables


def _key_figures(data: _Counted, mapper: CodeMapper) -> tuple[KeyFigure, ...]:
    """Step 4: the jour's Table 1."""
    reports, actions = data.reports, data.actions
    actions_per_report = Counter(a.report_id for a in actions)
    visits = {
        a.report_id
        for a in actions
        if mapper("action", a.code_list_version, a.action_code)[0] in VISIT_ACTIONS
    }
    cases = len(reports)
    on_call = sum(1 for r in reports if r.on_call)
    minutes = sum(r.minutes for r in reports)
    return (
        KeyFigure("cases", "Totalt antal ärenden", cases, "ärenden"),
        KeyFigure(
            "cases_without_action",
            "Ärenden utan åtgärder",
            sum(1 for r in reports if not actions_per_report[r.id]),
            "ärenden",
        ),
        KeyFigure("on_call_cases", "Ärenden under beredskapstid", on_call, "ärenden"),
        KeyFigure(
            "on_call_share",
            "Andel ärenden under beredskapstid",
            round(100 * on_call / cases, 1) if cases else 0.0,
            "procent",
            False,
        ),
        KeyFigure("actions", "Totalt antal åtgärder", len(actions), "åtgärder"),
        KeyFigure("phone_contacts", "Telefonkontakter", None, "kontakter"),
        KeyFigure("visits", "Ärenden med besök", len(visits), "ärenden"),
        KeyFigure("admin_hours", "Administrativ tid, timmar", None, "timmar", False),
        KeyFigure(
            "action_hours", "Tid på ärenden, timmar", round(minutes / 60, 1), "timmar", False
        ),
    )


async def _per_municipality(
    db: AsyncSession, scope: Scope, data: _Counted, pop: dict[str, int], quality: list[str]
) -> list[MunicipalityRow]:
    """Step 5: every member municipality (zeros included), then "Annan kommun" and unknown."""
    members = list(
        await db.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.jour_id == scope.jour_id, Organisation.kind == "municipality")
            .order_by(Organisation.name)
        )
    )
    if scope.municipality_id is not None:
        members = [m for m in members if m.id == scope.municipality_id]
    per: dict[uuid.UUID | str, list[int]] = {m.id: [0, 0, 0] for m in members}
    per[OTHER], per[UNKNOWN] = [0, 0, 0], [0, 0, 0]
    for r in data.reports:
        key: uuid.UUID | str = r.municipality_id or (OTHER if r.other_municipality else UNKNOWN)
        acc = per.setdefault(key, [0, 0, 0])
        acc[0] += 1
        acc[1] += 1 if r.on_call else 0
        acc[2] += r.minutes

    def mrow(name: str, org_id: uuid.UUID | None, key: uuid.UUID | str) -> MunicipalityRow:
        n, oc, mins = per[key]
        return MunicipalityRow(name, org_id, n, oc, mins, pop.get(name) if org_id else None)

    rows = [mrow(m.name, m.id, m.id) for m in members]
    if scope.municipality_id is None:
        rows += [mrow(OTHER, None, OTHER), mrow(UNKNOWN, None, UNKNOWN)]
        if per[UNKNOWN][0]:
            quality.append(f"{per[UNKNOWN][0]} ärenden saknar kommun.")
    return rows


def _check_totals(
    data: _Counted, rows_m: list[MunicipalityRow], tables: list[Table], quality: list[str]
) -> None:
    """Step 6: the parts must add up to the totals; populations must be known."""
    cases = len(data.reports)
    if sum(m.cases for m in rows_m) != cases:
        quality.append("Ärenden per kommun summerar inte till totalen.")
    for t in tables:
        expected = len(data.actions) if t.name == "action" else cases
        if t.name != "decisions" and t.total != expected:
            quality.append(f"{t.caption} summerar till {t.total}, inte {expected}.")
    missing_pop = [m.name for m in rows_m if m.org_id is not None and m.population is None]
    if missing_pop:
        quality.append("Folkmängd saknas för " + ", ".join(missing_pop) + ".")


async def _jourpost_decisions(db: AsyncSession, scope: Scope, period: Period) -> tuple[Row, ...]:
    """Step 7: chair decisions drafted in Jourpost (neither drafts nor cancelled), by kind."""
    kinds = await decisions.count_by_kind(
        db,
        jour_id=scope.jour_id,
        municipality_id=scope.municipality_id,
        start=period.start,
        end=period.end,
    )
    return tuple(Row(k, act, n) for k, act, n in kinds)


POLICE_CODES = ("handr_43_lvu", "handr_45_lvm", "handr_aterk")
"""The "Handr" codes of DECISION_ACTIONS that police-assistance requests are counted under."""


async def _jourpost_police(db: AsyncSession, scope: Scope, period: Period) -> tuple[Row, ...]:
    """Step 8: requests for police assistance made in Jourpost, by the "Handr" codes."""
    codes = await police.count_by_code(
        db,
        jour_id=scope.jour_id,
        municipality_id=scope.municipality_id,
        start=period.start,
        end=period.end,
    )
    labels = dict(DECISION_ACTIONS)
    return tuple(Row(c, labels[c], codes.get(c, 0)) for c in POLICE_CODES)


async def compute(
    db: AsyncSession, scope: Scope, period: Period, *, pop: dict[str, int] | None = None
) -> Statistics:
    """Count the reports of `scope` that occurred in `period`."""
    pop = populations() if pop is None else pop
    data = await _read(db, scope, period)
    target = await _target_version(db, period)
    mapper = await codelists.code_mapper(db, target)
    old = await _old_labels(db, {r.code_list_version for r in data.reports} - {target})
    counters, split_from = _count_codes(data, mapper, old)
    quality: list[str] = []
    tables = _code_tables(await codelists.load(db, target), counters, split_from, quality)
    rows_m = await _per_municipality(db, scope, data, pop, quality)
    _check_totals(data, rows_m, tables, quality)
    return Statistics(
        period=period,
        scope_name=scope.name,
        code_version=target,
        key_figures=_key_figures(data, mapper),
        municipalities=tuple(rows_m),
        tables=tuple(tables),
        jourpost_decisions=await _jourpost_decisions(db, scope, period),
        jourpost_police=await _jourpost_police(db, scope, period),
        quality=tuple(quality),
    )


SUPPRESSED = "<5"


def suppress(counts: list[int], threshold: int) -> list[str]:
    """Counts as shown to a political audience: 1..threshold-1 hidden.

    When exactly one count in a group is hidden it could be worked out from the total, so the
    smallest other non-zero count is hidden too (complementary suppression). Zeros are shown.
    """
    hidden = {i for i, n in enumerate(counts) if 0 < n < threshold}
    if len(hidden) == 1:
        others = [(n, i) for i, n in enumerate(counts) if n >= threshold]
        if others:
            hidden.add(min(others)[1])
    return [SUPPRESSED if i in hidden else str(n) for i, n in enumerate(counts)]


def shown(value: int, threshold: int | None) -> str:
    """One count on its own (a total or a key figure)."""
    if threshold is not None and 0 < value < threshold:
        return SUPPRESSED
    return str(value)
