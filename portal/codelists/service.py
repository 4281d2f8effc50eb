"""Read the versioned code lists; validate codes against the version a report is written under."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.codelists.models import CodeEntry, CodeListVersion, CodeMapping
from portal.codelists.schemas import CodeListsOut, CodeListVersionOut, CodeMappingOut, CodeOut
from portal.codelists.standard import LISTS, display_name
from portal.db.base import utcnow
from portal.errors import NotFound


@dataclass(frozen=True, slots=True)
class Code:
    """One code as callers see it."""

    list_name: str
    """category | action | character | initiator."""
    code: str
    """Stable identifier."""
    label: str
    """Swedish name as people read it (abbreviations of the published list written out)."""
    definition: str | None
    """Optional Swedish definition."""
    valid_from: date
    """First day the code applies."""
    valid_to: date | None
    """Last day, or None while current."""
    involves_child: bool
    """A category about a child or young person (protection assessment required)."""
    short_label: str = ""
    """The label as published in the statistics' code list (e.g. "Handr Återk")."""


@dataclass(frozen=True, slots=True)
class CodeLists:
    """All four lists of one version."""

    version: str
    """The version name."""
    valid_from: date
    """First day of the version."""
    valid_to: date | None
    """Last day, or None while current."""
    description: str
    """What changed (Swedish)."""
    lists: dict[str, tuple[Code, ...]]
    """Codes per list name, in display order."""

    def get(self, list_name: str, code: str) -> Code | None:
        """The code, or None when this version has no such code in that list."""
        return next((c for c in self.lists.get(list_name, ()) if c.code == code), None)

    def label(self, list_name: str, code: str) -> str:
        """The label of a code (the code itself when unknown, never an error)."""
        found = self.get(list_name, code)
        return found.label if found else code


@dataclass(frozen=True, slots=True)
class Mapping:
    """Code `from_code` of `from_version` corresponds to `to_code` of `to_version`."""

    list_name: str
    """The list."""
    from_version: str
    """Older version."""
    from_code: str
    """Code in the older version."""
    to_version: str
    """Newer version."""
    to_code: str
    """Corresponding code in the newer version (a split gives several rows)."""


async def versions(db: AsyncSession) -> list[CodeListVersion]:
    """Every version, oldest first."""
    return list(await db.scalars(select(CodeListVersion).order_by(CodeListVersion.valid_from)))


async def current_version(db: AsyncSession, on: date | None = None) -> str:
    """The version valid on `on` (default today, UTC date)."""
    day = on or utcnow().date()
    found = await db.scalar(
        select(CodeListVersion.version)
        .where(
            CodeListVersion.valid_from <= day,
            or_(CodeListVersion.valid_to.is_(None), CodeListVersion.valid_to >= day),
        )
        .order_by(CodeListVersion.valid_from.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound("Det finns ingen giltig kodlista.")
    return found


# Published versions never change (standard.py is append-only; see its docstring), so a version
# read once is kept for the life of the process: statistics and exports read thousands of reports.
_LOADED: dict[str, CodeLists] = {}


async def load(db: AsyncSession, version: str) -> CodeLists:
    """All lists of `version`; NotFound when there is no such version."""
    if version in _LOADED:
        return _LOADED[version]
    lists = await _load(db, version)
    _LOADED[version] = lists
    return lists


async def _load(db: AsyncSession, version: str) -> CodeLists:
    v = await db.get(CodeListVersion, version)
    if v is None:
        raise NotFound("Kodlistversionen finns inte.")
    rows = await db.scalars(
        select(CodeEntry)
        .where(CodeEntry.version == version)
        .order_by(CodeEntry.list_name, CodeEntry.position)
    )
    lists: dict[str, list[Code]] = {name: [] for name in LISTS}
    for r in rows:
        lists.setdefault(r.list_name, []).append(
            Code(
                r.list_name,
                r.code,
                display_name(r.label),
                r.definition,
                r.valid_from,
                r.valid_to,
                r.involves_child,
                r.label,
            )
        )
    return CodeLists(
        v.version,
        v.valid_from,
        v.valid_to,
        v.description,
        {k: tuple(c) for k, c in lists.items()},
    )


async def mappings(db: AsyncSession) -> list[Mapping]:
    """Every mapping between versions."""
    rows = await db.scalars(
        select(CodeMapping).order_by(
            CodeMapping.list_name, CodeMapping.from_version, CodeMapping.from_code
        )
    )
    return [
        Mapping(m.list_name, m.from_version, m.from_code, m.to_version, m.to_code) for m in rows
    ]


class CodeMapper:
    """Maps a code of any version to a target version, through every version between.

    The one code-mapping rule: statistics count old reports in the target version's codes with
    it. A code that was split maps to several codes; an unmapped code maps to itself.
    """

    def __init__(self, order: list[str], rows: list[CodeMapping], target: str) -> None:
        self.order = order
        """Versions, oldest first."""
        self.target = target
        """The version codes are mapped to."""
        self._step: dict[tuple[str, str, str], list[str]] = {}
        for m in rows:
            if order.index(m.to_version) == order.index(m.from_version) + 1:
                self._step.setdefault((m.list_name, m.from_version, m.from_code), []).append(
                    m.to_code
                )
        self._cache: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def __call__(self, list_name: str, version: str, code: str) -> tuple[str, ...]:
        """The target version's codes that `code` of `version` corresponds to (sorted)."""
        key = (list_name, version, code)
        if key not in self._cache:
            codes = [code]
            i = self.order.index(version)
            while i < self.order.index(self.target):
                mapped: list[str] = []
                for c in codes:
                    mapped += self._step.get((list_name, self.order[i], c), [c])
                codes, i = sorted(set(mapped)), i + 1
            self._cache[key] = tuple(codes)
        return self._cache[key]


async def code_mapper(db: AsyncSession, target: str) -> CodeMapper:
    """A mapper to `target` built from the stored versions and mappings."""
    order = [v.version for v in await versions(db)]
    return CodeMapper(order, list(await db.scalars(select(CodeMapping))), target)


async def overview(db: AsyncSession) -> CodeListsOut:
    """Every version with its lists, the current version, and the mappings (for the API)."""
    out: list[CodeListVersionOut] = []
    for v in await versions(db):
        lists = await load(db, v.version)
        out.append(
            CodeListVersionOut(
                version=lists.version,
                valid_from=lists.valid_from,
                valid_to=lists.valid_to,
                description=lists.description,
                lists={
                    name: [
                        CodeOut(
                            c.code,
                            c.label,
                            c.definition,
                            c.valid_from,
                            c.valid_to,
                            c.involves_child,
                            c.short_label,
                        )
                        for c in codes
                    ]
                    for name, codes in lists.lists.items()
                },
            )
        )
    return CodeListsOut(
        current_version=await current_version(db),
        versions=out,
        mappings=[
            CodeMappingOut(m.list_name, m.from_version, m.from_code, m.to_version, m.to_code)
            for m in await mappings(db)
        ],
    )
