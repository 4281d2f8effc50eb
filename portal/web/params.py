"""Typed path and query parameters shared by controllers, and the API's paged list response.

A path integer is bounded by the database column it ends up compared with: Python parses any
number of digits, but SQLite (OverflowError) and PostgreSQL (int4) can't take them, and that
error surfaced as a 500. Out of range is the client's mistake: 400 with the parameter named.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar import Response
from litestar.params import PathParameter, QueryParameter

from portal.paging import MAX_PAGE_SIZE, Page

T = TypeVar("T")
R = TypeVar("R")

INT32_MAX = 2**31 - 1

PositiveInt = Annotated[int, PathParameter(ge=1, le=INT32_MAX)]
"""A 1-based number in the path (a version, a file number)."""


PageLimit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)]
"""Rows per page of an API list (keyset paging, portal.paging)."""


def paged(page: Page[T], rows: list[R], path: str, params: dict[str, Any]) -> Response[list[R]]:
    """An API list page: the rows, `X-Total-Count` when the list counts, and
    `Link: <…>; rel="next"` (the same query with the next cursor) while there is more."""
    headers: dict[str, str] = {}
    if page.total is not None:
        headers["X-Total-Count"] = str(page.total)
    if page.next_cursor:
        kept = {k: v for k, v in params.items() if v is not None and v != ""}
        query = urlencode({**kept, "before": page.next_cursor}, doseq=True)
        headers["Link"] = f'<{path}?{query}>; rel="next"'
    return Response(rows, headers=headers)


def list_query(**values: object) -> dict[str, str]:
    """A list's filters as its links keep them: empty ones and the default "all" left out."""
    return {k: str(v) for k, v in values.items() if v not in (None, "", "all")}
