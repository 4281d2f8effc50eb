"""Hot-path statements straight on asyncpg: a Core statement compiled once, run on the driver
connection beneath SQLAlchemy's pooled connection (issue 16: the per-request cost).

`AsyncConnection.execute` costs about 0.1 ms of CPU per statement on top of asyncpg's own
`fetch` (the execution context, the greenlet hop into the sync engine and back, the cursor
adapter, the result wrapper). The statements every request runs — the principal's session, user
and roles; the audit append of every audited read — and the lookup's and the night
dashboard's are a tenth of their page each. `Prepared` keeps everything else of SQLAlchemy: the
statement is written and compiled by it (once, at import, for the asyncpg dialect), its bind
and result processors are applied, the connection is checked out from, and returned to,
SQLAlchemy's pool (with the portal's checkout check, portal.db.engine), and the transaction is
the adapter's:

- in a transaction block the adapter's BEGIN is sent first, exactly as its own cursor does
  (`_start_transaction` under its `_execute_mutex`), so a statement runs inside the request's
  transaction and sees (and its writes join) the request's; on an AUTOCOMMIT connection
  nothing is sent;
- a driver error is translated as SQLAlchemy's adapter translates it and raised as
  `sqlalchemy.exc.DBAPIError` (`connection_invalidated` for a broken link, which also
  invalidates the connection), so portal.db.faults answers 503 for an outage exactly as before.

Those two steps use the adapter's private members (`_execute_mutex`, `_transaction`,
`_start_transaction`, `_handle_exception`, `_connection`) of SQLAlchemy 2.1:
tests/portal/test_fast_read.py fails if an upgrade moves them, and checks that every
`Prepared` statement of the portal gives the same rows, types included, as
`AsyncConnection.execute`.

Expanding IN lists (`col.in_(bindparam("ids", expanding=True))`: SQLAlchemy renders one
placeholder per element, so the SQL depends on the list's length) become one array parameter,
`col = ANY($n::type[])` (`NOT IN`: `col <> ALL(...)`) — PostgreSQL plans an IN list as exactly
that; an empty list matches nothing (NOT IN: everything), as SQLAlchemy's empty IN does. For a
new statement check that PostgreSQL settles on a generic plan (decision 0002).

SQLAlchemy's `before_cursor_execute` listeners are called as `execute` calls them (with no
cursor and no execution context), so the tests' and the benches' statement counters still see
every statement.

On SQLite (tests, the demo) `Prepared` is `AsyncConnection.execute`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator, TypeEngine

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

Row = Sequence[Any]
_MISSING = object()
_EXPANDING = re.compile(r"(NOT )?IN \(__\[POSTCOMPILE_(\w+)\]\)")

Process = Callable[[Any], Any] | None


def _element_type(type_: TypeEngine[Any]) -> str:
    """The SQL type of an IN list's array, without a length or precision: a cast to
    `varchar(n)` or `numeric(p, s)` would cut or round the values (a value longer than the
    column would then match its first n characters), which SQLAlchemy's own casts avoid too."""
    base = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if isinstance(base, sqltypes.String):
        return "VARCHAR"
    if isinstance(base, sqltypes.Numeric):
        return "NUMERIC"
    return _DIALECT.type_compiler_instance.process(type_)


class Prepared:
    """A statement compiled once for asyncpg: `await p.all(conn, params)` → its rows;
    `await p.run(conn, params)` for a statement that returns none."""

    __slots__ = ("_binds", "_results", "sql", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        names = list(compiled.positiontup or [])
        binds = compiled.binds
        plain = [n for n in names if not binds[n].expanding]
        expanding = [n for n in names if binds[n].expanding]
        number = {name: len(plain) + k + 1 for k, name in enumerate(expanding)}

        def as_array(match: re.Match[str]) -> str:
            name = match.group(2)
            element = _element_type(binds[name].type)
            operator = "<> ALL" if match.group(1) else "= ANY"
            return f"{operator}(${number[name]}::{element}[])"

        sql = _EXPANDING.sub(as_array, compiled.string)
        if "POSTCOMPILE" in sql:
            raise TypeError("Prepared: a parameter rendered per call other than an IN list")
        self.statement = statement
        self.sql = sql
        self._binds: list[tuple[str, Process, Any, bool]] = [
            (
                name,
                binds[name].type.bind_processor(_DIALECT),
                # a literal's value; the others must be given (as SQLAlchemy requires)
                _MISSING if binds[name].required else binds[name].effective_value,
                binds[name].expanding,
            )
            for name in plain + expanding
        ]
        processors = [
            column.type.result_processor(_DIALECT, None)
            for column in getattr(statement, "selected_columns", ())
        ]
        self._results: list[tuple[int, Callable[[Any], Any]]] = [
            (i, p) for i, p in enumerate(processors) if p is not None
        ]

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        args: list[Any] = []
        for name, process, default, expanding in self._binds:
            if name in params:
                value = params[name]
            elif default is _MISSING:
                raise sa_exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
            else:
                value = default
            if expanding:
                args.append([process(v) for v in value] if process is not None else list(value))
            else:
                args.append(process(value) if process is not None else value)
        return args

    async def _fetch(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        args = self._args(params)
        sync = conn.sync_connection
        assert sync is not None
        dispatch = sync.dispatch
        if dispatch.before_cursor_execute:  # statement counters (tests, bench): as execute does
            dispatch.before_cursor_execute(sync, None, self.sql, args, None, False)
        adapted = sync.connection.dbapi_connection
        try:
            async with adapted._execute_mutex:  # type: ignore[union-attr]
                if adapted._transaction is None:  # type: ignore[union-attr]
                    await adapted._start_transaction()  # type: ignore[union-attr]
                return await adapted._connection.fetch(self.sql, *args)  # type: ignore[union-attr,no-any-return]
        except Exception as error:
            wrapped = await _wrapped(conn, adapted, error, self.sql, args)
            if wrapped is None:
                raise
            raise wrapped from wrapped.orig

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Row]:
        """The statement's rows on `conn` (in its transaction, if it has one)."""
        if conn.dialect.name != "postgresql":
            return list((await conn.execute(self.statement, params)).all())  # type: ignore[call-overload]
        records = await self._fetch(conn, params)
        if not self._results:
            return records
        rows: list[Row] = []
        for record in records:
            row = list(record)
            for i, process in self._results:
                row[i] = process(row[i])
            rows.append(row)
        return rows

    async def run(self, conn: AsyncConnection, params: Mapping[str, Any]) -> None:
        """Execute a statement that returns no rows (in `conn`'s transaction, if it has one)."""
        if conn.dialect.name != "postgresql":
            await conn.execute(self.statement, params)  # type: ignore[call-overload]
            return
        await self._fetch(conn, params)


async def _wrapped(
    conn: AsyncConnection, adapted: Any, error: Exception, sql: str, args: list[Any]
) -> sa_exc.StatementError | None:
    """`error` as SQLAlchemy would have raised it from `conn.execute`, or None where SQLAlchemy
    too would have let it through as it is (an OSError or a timeout inside the driver)."""
    try:
        adapted._handle_exception(error)  # raises the adapter's DB-API exception, or `error`
    except Exception as dbapi_error:
        if not isinstance(dbapi_error, conn.dialect.loaded_dbapi.Error):
            return None
        invalidated = conn.dialect.is_disconnect(dbapi_error, adapted, None)
        if invalidated:
            await conn.invalidate()
        return sa_exc.DBAPIError.instance(
            sql,
            args,
            dbapi_error,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=conn.dialect,
        )
    return None  # pragma: no cover - _handle_exception always raises
