"""Several independent reads of plain columns in one statement on PostgreSQL (one per read on
SQLite), for pages that show several lists at once (the jour's night dashboard).

Each read stays its owning feature's statement, built once there with its visibility rule and
bound parameters; this module only puts them side by side. On PostgreSQL every read becomes one
column of a single row, `ARRAY(SELECT ROW(q.*) FROM (<the read>) AS q)`: asyncpg decodes the
array of anonymous records into a list of tuples of the read's columns, in the read's order
(each read keeps its ORDER BY and LIMIT inside its subquery). Each read's bound parameters are
renamed with a prefix of its own (two reads may use the same name for different values). On
SQLite the reads run one after the other as they are (`core_execute`); the rows are the same
tuples of plain columns either way, so the features parse them with one function whichever
database ran them.

What differs: on PostgreSQL the values inside the records are asyncpg's (no SQLAlchemy result
processing): timestamps are aware UTC datetimes, ids `uuid.UUID`s (asyncpg's subclass), bytea
`bytes`, as the columns' own result processing gives on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse

from portal.db.engine import core_execute

AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Read:
    """One read: a statement built once (module level, bound parameters by name) and the values
    of its parameters for this execution."""

    statement: AnySelect
    params: Mapping[str, Any]


Rows = Sequence[Sequence[Any]]
"""A read's rows: tuples of its columns, in its order."""


async def read_together(db: AsyncSession, reads: Sequence[Read]) -> list[Rows]:
    """The rows of every read, in the order of `reads`: one statement on PostgreSQL, one per
    read on SQLite; in the session's transaction (or autocommit) as `core_execute`."""
    if not reads:
        return []
    if db.get_bind().dialect.name != "postgresql":
        return [(await core_execute(db, r.statement, r.params)).all() for r in reads]
    key = tuple(r.statement for r in reads)
    combined = _COMBINED.get(key)
    if combined is None:
        combined = _COMBINED[key] = _combine([(r.statement, set(r.params)) for r in reads])
    params = {
        f"q{i}_{name}": value for i, r in enumerate(reads) for name, value in r.params.items()
    }
    row = (await core_execute(db, combined, params)).one()
    return [list(rows) for rows in row]


_COMBINED: dict[tuple[AnySelect, ...], AnySelect] = {}
"""The combined statements, built on first use per combination of reads (a handful: the
statements are module-level constants)."""


def _combine(reads: Sequence[tuple[AnySelect, Collection[str]]]) -> AnySelect:
    columns = []
    for i, (statement, names) in enumerate(reads):
        sub = _renamed(statement, f"q{i}_", names).subquery(f"q{i}")
        rows = select(func.row(*sub.c)).select_from(sub).scalar_subquery()
        columns.append(func.array(rows).label(f"q{i}"))
    return select(*columns)


def _renamed(statement: AnySelect, prefix: str, names: Collection[str]) -> AnySelect:
    """`statement` with its named parameters prefixed (literal values' anonymous parameters are
    left as they are).

    An expanding IN stays one: the SQL then varies with the lengths of the lists (a handful of
    variants per user shape, each prepared once by asyncpg) and PostgreSQL knows each list's
    length when it plans. As `= ANY(array)` the SQL was the same on every execution (0.07 ms
    less client CPU per page) but PostgreSQL, estimating ten elements per array, kept
    re-planning the statement with custom plans instead of reusing a generic one: 1.0 ms of
    server CPU per execution instead of 0.33 (docs/night-shift.md)."""

    def replace(element: ExternallyTraversible, **_kw: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in names:
            return bindparam(prefix + element.key, type_=element.type, expanding=element.expanding)
        return None

    opts: dict[str, Any] = {}
    renamed = replacement_traverse(statement, opts, replace)
    assert isinstance(renamed, Select)
    return renamed
