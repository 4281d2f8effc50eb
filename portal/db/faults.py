"""Tell a database outage (answer 503, retry later) from a programming error (answer 500).

An outage is anything that says "the database can't be reached or didn't answer in time",
whatever layer noticed it first:

    sqlalchemy.exc.TimeoutError            no pooled connection within pool_timeout
    sqlalchemy.exc.DBAPIError              with connection_invalidated (the link broke)
    ├── OperationalError, InterfaceError   connection closed/reset, server gone (PostgreSQL);
    │                                      a locked or unopenable file (SQLite)
    └── any, SQLSTATE class 08/53/57       connection exception, too many connections,
                                           statement timeout (57014), admin/crash shutdown
    ConnectionError, OSError, TimeoutError raised inside the driver or the pool: refused or
                                           reset while connecting, connect or command timeout

Everything else (integrity, syntax, data errors, bugs) is not an outage.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
"""connection_exception, insufficient_resources, operator_intervention (query_canceled too)."""
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite")
_SQLITE_OUTAGES = ("database is locked", "database is busy", "unable to open database")


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or what it was raised from) means the database is unavailable."""
    return any(_is_outage_one(e) for e in _causes(exc))


def outage_kind(exc: BaseException) -> str:
    """The innermost exception type name, for logs ("ConnectionRefusedError", ...)."""
    return type(list(_causes(exc))[-1]).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    # Only explicit causes (`raise ... from`): SQLAlchemy wraps driver errors that way, while an
    # implicit __context__ may be an unrelated error that was already handled.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _is_outage_one(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return _dbapi_outage(exc)
    if isinstance(exc, OSError | TimeoutError):  # ConnectionError is an OSError
        return _raised_in_driver(exc)
    return False


def _dbapi_outage(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if type(orig).__module__ == "sqlite3":
        return any(text in str(orig) for text in _SQLITE_OUTAGES)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES


def _raised_in_driver(exc: BaseException) -> bool:
    # A refused connection elsewhere (SMTP, the identity provider) is not a database outage.
    return any(
        str(frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )
