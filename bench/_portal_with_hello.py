"""Serve the demo portal plus a bare "hello" route in the same process (for bench_login.py).

Usage: _portal_with_hello.py DATA_DIR PORT [DATABASE_URL]
Without DATABASE_URL the demo's SQLite file in DATA_DIR; with one (an empty PostgreSQL
database) the same demo data there. `GET /bench/sql` answers the SQL statements this process
executed since the previous call (count and text), for counting the statements of one page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import uvicorn
from litestar import get
from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal.account.service import LoginStartLimiter
from portal.app import create_app
from portal.cli import _prepare
from portal.demo import demo_settings

_statements: list[str] = []


@event.listens_for(Engine, "before_cursor_execute")
def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    _statements.append(statement)


@get("/bench/hello", include_in_schema=False)
async def hello() -> str:
    return "hello"


@get("/bench/sql", include_in_schema=False)
async def sql() -> dict[str, Any]:
    seen = list(_statements)
    _statements.clear()
    return {"count": len(seen), "statements": seen}


def main() -> None:
    data, port = Path(sys.argv[1]), int(sys.argv[2])
    settings = demo_settings(data, "127.0.0.1", port)
    if len(sys.argv) > 3:
        settings = dataclasses.replace(settings, database_url=sys.argv[3])
    asyncio.run(_prepare(settings, seed_demo=True))
    app = create_app(settings)
    app.register(hello)
    app.register(sql)
    # Every bench login comes from 127.0.0.1: lift the per-address limit on login starts.
    app.state["login_start_limiter"] = LoginStartLimiter(limit=10**9)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
