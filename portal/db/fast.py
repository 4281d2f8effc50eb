"""Hot-path reads straight on asyncpg: a Core SELECT compiled once, run on the driver connection
beneath SQLAlchemy's pooled connection (issue 16: the per-request cost).

`AsyncConnection.execute` costs about 0.1 ms of CPU per statement on top of asyncpg's own
`fetch` (the execution context, the greenlet hop into the sync engine and back, the cursor
adapter, the result wrapper: `bench/fast_read.py` prints the figures side by side). On the
statement every request runs — the principal's session, user and roles — and on the lookup's,
that is a tenth of the page. `Read` keeps everything else of SQLAlchemy: the statement is
written and compiled by it (once, at import, for the asyncpg dialect), its bind and result
processors are applied, the connection is checked out from, and returned to, SQLAlchemy's pool
(with the portal's checkout check, portal.db.engine), and the transaction is the adapter's:

- in a transaction block the adapter's BEGIN is sent first, exactly as its own cursor does
  (`_start_transaction` under its `_execute_mutex`), so a read runs inside the request's
  transaction and sees its own writes; on an AUTOCOMMIT connection nothing is sent;
- a driver error is translated as SQLAlchemy's adapter translates it and raised as
  `sqlalchemy.exc.DBAPIError` (`connection_invalidated` for a broken link, which also
  invalidates the connection), so portal.db.faults answers 503 for an outage exactly as before.

Those two steps use the adapter's private members (`_execute_mutex`, `_transaction`,
`_start_transaction`, `_handle_exception`, `_connection`) of SQLAlchemy 2.1:
tests/portal/test_fast_read.py fails if an upgrade moves them, and checks that every `Read`
gives the same rows, types included, as `AsyncConnection.execute`.

On SQLite (tests, the demo) `Read` is `AsyncConnection.execute`. Statements with expanding IN
lists (`bindparam(..., expanding=True)`) are refused at construction: their SQL depends on the
list's length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

Row = Sequence[Any]
_MISSING = object()


class Read:
    """A SELECT compiled once for asyncpg; `await read.all(conn, params)` → its rows as tuples."""

    __slots__ = ("_binds", "_results", "sql", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise TypeError("Read: expanding IN lists are rendered per call; use execute")
        self.statement = statement
        self.sql = compiled.string
        names = compiled.positiontup or []
        self._binds: list[tuple[str, Callable[[Any], Any] | None, Any]] = [
            (
                name,
                compiled.binds[name].type.bind_processor(_DIALECT),
                # a literal's value; the others must be given (as SQLAlchemy requires)
                _MISSING if compiled.binds[name].required else compiled.binds[name].effective_value,
            )
            for name in names
        ]
        processors = [
            column.type.result_processor(_DIALECT, None) for column in statement.selected_columns
        ]
        self._results: list[tuple[int, Callable[[Any], Any]]] = [
            (i, p) for i, p in enumerate(processors) if p is not None
        ]

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Row]:
        """The statement's rows on `conn` (in its transaction, if it has one)."""
        if conn.dialect.name != "postgresql":
            return list((await conn.execute(self.statement, params)).all())
        args = []
        for name, process, default in self._binds:
            if name in params:
                value = params[name]
            elif default is _MISSING:
                raise sa_exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
            else:
                value = default
            args.append(process(value) if process is not None else value)
        adapted = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        try:
            async with adapted._execute_mutex:  # type: ignore[union-attr]
                if adapted._transaction is None:  # type: ignore[union-attr]
                    await adapted._start_transaction()  # type: ignore[union-attr]
                records = await adapted._connection.fetch(self.sql, *args)  # type: ignore[union-attr]
        except Exception as error:
            wrapped = await _wrapped(conn, adapted, error, self.sql, args)
            if wrapped is None:
                raise
            raise wrapped from wrapped.orig
        if not self._results:
            return records  # type: ignore[no-any-return]
        rows: list[Row] = []
        for record in records:
            row = list(record)
            for i, process in self._results:
                row[i] = process(row[i])
            rows.append(row)
        return rows


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
