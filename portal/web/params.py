"""Typed path parameters shared by controllers.

A path integer is bounded by the database column it ends up compared with: Python parses any
number of digits, but SQLite (OverflowError) and PostgreSQL (int4) can't take them, and that
error surfaced as a 500. Out of range is the client's mistake: 400 with the parameter named.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

INT32_MAX = 2**31 - 1

PositiveInt = Annotated[int, PathParameter(ge=1, le=INT32_MAX)]
"""A 1-based number in the path (a version, a file number)."""
