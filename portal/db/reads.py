"""Several independent reads of plain columns in one statement on PostgreSQL (one per read on
SQLite), for pages that show several lists at once (the jour's night dashboard).

Each read stays its owning feature's statement, built once there with its visibility rule and
bound parameters; this module only puts them side by side. On PostgreSQL every read becomes one
column of a single row, `ARRAY(SELECT ROW(q.*) FROM (<the read>) AS q)`: asyncpg decodes the
array of anonymous records into a list of tuples of the read's columns, in the read's order
(each read keeps its ORDER BY and LIMIT inside its subquery, and an ordered read also numbers
its rows in that order, by which the array is ordered). Each read's bound parameters are
renamed with a prefix of its own (two reads may use the same name for different values), and
its lists are written out as one parameter per element (`_renamed`). On SQLite the reads run
one after the other as they are (`core_execute`); the rows are the same tuples of plain
columns either way, so the features parse them with one function whichever database ran them.

What differs: on PostgreSQL the values inside the records are asyncpg's (no SQLAlchemy result
processing): timestamps are aware UTC datetimes, ids `uuid.UUID`s (asyncpg's subclass), bytea
`bytes`, as the columns' own result processing gives on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, false, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse, traverse

from portal.db.engine import core_execute
from portal.db.fast import Prepared

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
    lists = [_lists_of(r.statement) for r in reads]
    lengths = tuple(
        tuple((k, len(v)) for k, v in r.params.items() if k in names)
        for r, names in zip(reads, lists, strict=True)
    )
    key = (tuple(r.statement for r in reads), lengths)
    combined = _COMBINED.get(key)
    if combined is None:
        if len(_COMBINED) >= _COMBINED_MAX:
            _COMBINED.clear()
        combined = _COMBINED[key] = Prepared(_combine(reads))
    params: dict[str, Any] = {}
    for i, (r, names) in enumerate(zip(reads, lists, strict=True)):
        for name, value in r.params.items():
            if name in names:
                params.update((f"q{i}_{name}_{j}", v) for j, v in enumerate(value))
            else:
                params[f"q{i}_{name}"] = value
    (row,) = await combined.all(await db.connection(), params)
    return [list(rows) for rows in row]


_COMBINED: dict[tuple[tuple[AnySelect, ...], tuple[tuple[tuple[str, int], ...], ...]], Prepared]
_COMBINED = {}
"""The combined statements, compiled on first use per combination of reads and lengths of their
list parameters (a handful: the statements are module-level constants, the lists are a user's
organisations), as `portal.db.fast.Prepared`: run on asyncpg directly, with the columns' bind
processing. Through `AsyncConnection.execute` SQLAlchemy would also hash the large statement's
cache key on every execution (a quarter of its client CPU)."""
_LISTS: dict[AnySelect, frozenset[str]] = {}


def _lists_of(statement: AnySelect) -> frozenset[str]:
    """The names of `statement`'s expanding (IN list) parameters: only those are written out
    one parameter per element (an array-valued parameter of another kind stays one value)."""
    names = _LISTS.get(statement)
    if names is None:
        names = _LISTS[statement] = frozenset(
            b.key for b in _binds(statement) if isinstance(b, BindParameter) and b.expanding
        )
    return names


def _binds(statement: AnySelect) -> list[BindParameter[Any]]:
    found: list[BindParameter[Any]] = []
    traverse(statement, {}, {"bindparam": found.append})
    return found


_COMBINED_MAX = 256
"""Beyond this many variants the cache starts again (it never grows without bound)."""


def _combine(reads: Sequence[Read]) -> AnySelect:
    columns = []
    for i, r in enumerate(reads):
        read = _renamed(r.statement, f"q{i}_", r.params)
        order = read._order_by_clauses
        if not order:
            sub = read.subquery(f"q{i}")
            rows = select(func.row(*sub.c)).select_from(sub).scalar_subquery()
        else:
            # An ordered read keeps its order in the array by its rows' positions in that order
            # (a window over the same ORDER BY, computed before the LIMIT), not by trusting a
            # subquery's output order to survive the outer SELECT, which PostgreSQL does not
            # promise.
            positioned = read.add_columns(func.row_number().over(order_by=order).label(_POS))
            sub = positioned.subquery(f"q{i}")
            shown = [c for c in sub.c if c.key != _POS]
            rows = select(func.row(*shown)).select_from(sub).order_by(sub.c[_POS]).scalar_subquery()
        columns.append(func.array(rows).label(f"q{i}"))
    return select(*columns)


_POS = "read_position"


def _renamed(statement: AnySelect, prefix: str, params: Mapping[str, Any]) -> AnySelect:
    """`statement` with its named parameters prefixed, and every expanding IN written out for
    the lengths of this execution's lists: `x IN (:q0_jours_0, :q0_jours_1)` for a named list,
    `x IN ('sent', 'accepted')` as bound literals for a literal one, false for an empty list
    (NOT IN the same, true for an empty list).

    SQLAlchemy would otherwise render each expanding IN into the SQL on every execution (a
    quarter of the combined read's client CPU). Written as `= ANY(array)` instead, the SQL was
    the same on every execution but PostgreSQL, estimating ten elements per array, re-planned
    the statement every time with a custom plan instead of reusing a generic one: 1.0 ms of
    server CPU per execution instead of 0.33 (docs/night-shift.md). With one parameter per
    element PostgreSQL knows each list's length and settles on a generic plan."""

    def replace(element: ExternallyTraversible, **_kw: Any) -> Any:
        if (
            isinstance(element, BinaryExpression)
            and element.operator in (operators.in_op, operators.not_in_op)
            and isinstance(element.right, BindParameter)
            and element.right.expanding
        ):
            right = element.right
            if right.key in params:
                count = len(params[right.key])
                items = [
                    bindparam(f"{prefix}{right.key}_{j}", type_=right.type) for j in range(count)
                ]
            else:
                items = [literal(v, right.type) for v in right.value or ()]
            if element.operator is operators.not_in_op:
                return element.left.not_in(items) if items else true()
            return element.left.in_(items) if items else false()
        if isinstance(element, BindParameter) and element.key in params:
            if element.expanding:
                raise ValueError(f"list parameter {element.key!r} outside IN")
            return bindparam(prefix + element.key, type_=element.type)
        return None

    opts: dict[str, Any] = {}
    renamed = replacement_traverse(statement, opts, replace)
    assert isinstance(renamed, Select)
    return renamed
