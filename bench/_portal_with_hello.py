"""Serve the demo portal plus a bare "hello" route in the same process (for bench_login.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn
from litestar import get

from portal.account.service import LoginStartLimiter
from portal.app import create_app
from portal.cli import _prepare
from portal.demo import demo_settings


@get("/bench/hello", include_in_schema=False)
async def hello() -> str:
    return "hello"


def main() -> None:
    data, port = Path(sys.argv[1]), int(sys.argv[2])
    settings = demo_settings(data, "127.0.0.1", port)
    asyncio.run(_prepare(settings, seed_demo=True))
    app = create_app(settings)
    app.register(hello)
    # Every bench login comes from 127.0.0.1: lift the per-address limit on login starts.
    app.state["login_start_limiter"] = LoginStartLimiter(limit=10**9)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
