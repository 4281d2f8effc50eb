"""Keyset (seek) paging for the lists that grow: pages newest first by (time, id).

A page is the rows strictly after a key (time, id) in descending order, so rows inserted while
someone pages (newer than the first page) never shift or repeat what the next page shows, and
the database seeks in an index on (…, time, id) instead of counting past an OFFSET.

The cursor is opaque to clients: URL-safe base64 of the last row's key and how many rows came
before the next page (only used to say "Visar 51–100"; it is not trusted for anything else).
It holds no personal data: a timestamp, a record id and a number. A cursor that does not decode
is the client's mistake (`BadCursor`: 400 with a Swedish message), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, or_, true

from portal.errors import BadCursor
from portal.timefmt import STOCKHOLM

PAGE_SIZE = 50
"""Rows per page of a list page (and the API's default `limit`)."""
MAX_PAGE_SIZE = 200
"""The largest `limit` the API accepts."""

Key = tuple[datetime, uuid.UUID]
"""A row's place in a list: (time, id), both descending."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: after `key`, with `offset` rows shown before it."""

    key: Key
    """The last row of the previous page."""
    offset: int
    """Rows on the previous pages (for "Visar 51–100")."""


def encode(key: Key, offset: int) -> str:
    """The opaque cursor of the page after the row `key`, `offset` rows in."""
    at, rid = key
    raw = f"{at.isoformat()}|{rid.hex}|{offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, field: str = "before") -> Cursor | None:
    """The cursor given by a client; None for the first page; BadCursor when it is not one."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text, offset_text = raw.split("|")
        at, rid, offset = datetime.fromisoformat(at_text), uuid.UUID(hex=id_text), int(offset_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadCursor(field) from None
    if at.tzinfo is None or offset < 0:
        raise BadCursor(field)
    return Cursor((at, rid), offset)


def encode_seq(seq: int, offset: int) -> str:
    """The cursor of a list ordered by a sequence number alone (the audit log: `seq` is its
    order, assigned as entries are chained), after the row `seq`, `offset` rows in."""
    return base64.urlsafe_b64encode(f"seq|{seq}|{offset}".encode()).decode().rstrip("=")


def decode_seq(cursor: str | None, field: str = "before") -> tuple[int, int] | None:
    """(seq, offset) from a cursor of `encode_seq`; None for the first page; BadCursor else."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, seq_text, offset_text = raw.split("|")
        seq, offset = int(seq_text), int(offset_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadCursor(field) from None
    if tag != "seq" or offset < 0:
        raise BadCursor(field)
    return seq, offset


def count_text(n: int) -> str:
    """A count as Swedish pages print it: a space between thousands ("1 055", "12 345 678").
    The `num` filter of the templates: the paging summary's numbers, the retention plan's."""
    return f"{n:,}".replace(",", " ")


def after(time_col: Any, id_col: Any, cursor: Cursor | Key | None) -> ColumnElement[bool]:
    """SQL: rows after the cursor in (time, id) descending order; every row without one."""
    if cursor is None:
        return true()
    at, rid = cursor.key if isinstance(cursor, Cursor) else cursor
    return or_(time_col < at, (time_col == at) & (id_col < rid))


def later(time_col: Any, id_col: Any, key: Key | None) -> ColumnElement[bool]:
    """SQL: rows after the key in (time, id) ascending order (a list oldest first, such as the
    retention plan's); every row without one."""
    if key is None:
        return true()
    at, rid = key
    return or_(time_col > at, (time_col == at) & (id_col > rid))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first."""

    rows: list[T]
    """The page's rows."""
    next_cursor: str | None
    """Where the next (older) page starts; None on the last page."""
    first: int
    """The number of the page's first row in the whole list, from 1."""
    total: int | None = None
    """Rows in the whole (filtered) list, where the list counts them."""

    @property
    def last(self) -> int:
        """The number of the page's last row."""
        return self.first + len(self.rows) - 1


def page_of(
    shown: Sequence[T],
    *,
    more: bool,
    cursor: Cursor | None,
    key: Callable[[T], Key],
    total: int | None = None,
) -> Page[T]:
    """The page of `shown` rows (read with `limit(size + 1)`: `more` when the extra row came)."""
    rows = list(shown)
    offset = cursor.offset if cursor else 0
    return Page(
        rows=rows,
        next_cursor=encode(key(rows[-1]), offset + len(rows)) if more and rows else None,
        first=offset + 1,
        total=total,
    )


def period(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """A date-range filter's [since, until) in UTC: whole Stockholm days, `date_to` included."""
    since = datetime.combine(date_from, time(), STOCKHOLM) if date_from else None
    until = datetime.combine(date_to + timedelta(days=1), time(), STOCKHOLM) if date_to else None
    return since, until
