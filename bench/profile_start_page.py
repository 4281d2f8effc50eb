"""Where the authenticated start page's time goes: SQL statements per page and a profile.

Runs the demo portal in this process and thread (httpx's ASGI transport: no server, no
network) on
SQLite or on a fresh PostgreSQL database, opens a session for the demo's jour worker (the night
dashboard) and for a handler, and prints for each start page:
- the SQL statements one GET executes, grouped by their first words;
- the mean time per GET over `--requests` sequential GETs, beside a bare "hello" route in the
  same app (the ratio is what bench_login.py measures with wrk, without the server and client);
- with `--profile`, cProfile over the jour page's GETs (cumulative time per function: the
  handler's share, the middleware's, the template's, the driver's).

Usage: .venv/bin/python bench/profile_start_page.py [--db sqlite|postgres] [--requests 300]
    [--profile [--top 60]]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import dataclasses
import io
import pstats
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from litestar import get
from sqlalchemy import event
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auth.sessions import cookie_name
from portal.account.service import LoginStartLimiter
from portal.app import create_app
from portal.cli import _prepare
from portal.demo import demo_settings
from portal.settings import Settings
from tests.portal.sessions import open_session

JONNA = "197803129829"  # jour staff, Socialjouren Gävleborg: the night dashboard
HANNA = "196901159803"  # handler, Hudiksvall
PG = "postgresql://postgres@127.0.0.1:5432"

_statements: list[str] = []


@event.listens_for(Engine, "before_cursor_execute")
def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    _statements.append(statement)


@get("/bench/hello", include_in_schema=False)
async def hello() -> str:
    return "hello"


@contextlib.contextmanager
def _settings(db: str) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory() as tmp:
        # No periodic jobs: their statements would be counted with the page's.
        settings = dataclasses.replace(
            demo_settings(Path(tmp), "127.0.0.1", 8000), run_periodic_jobs=False
        )
        if db != "postgres":
            yield settings
            return
        name = f"jourpost_profile_{secrets.token_hex(4)}"
        subprocess.run(["psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            yield dataclasses.replace(settings, database_url=url)
        finally:
            subprocess.run(
                ["psql", f"{PG}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                check=False,
            )


def _shape(statement: str) -> str:
    words = re.sub(r"\s+", " ", statement).strip()
    table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", words)
    return f"{words.split(' ', 1)[0]} {table.group(1) if table else ''}".strip()


def _by_package(stats: pstats.Stats, requests: int) -> None:
    """Own time (cProfile's tottime) per package, in ms per request."""
    totals: collections.Counter[str] = collections.Counter()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (path, _, func), (_, _, tottime, *_) in raw.items():
        if "site-packages/" in path:
            package = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/portal/" in path or "/auth/" in path:
            package = "portal (this project)"
        elif path == "~":
            package = f"builtins ({func.split(' of ')[0].strip('<>{}')[:30]})"
        else:
            package = "python stdlib " + Path(path).stem
        totals[package] += tottime
    print(f"own CPU time per jour page by package (cProfile, {requests} GETs), ms per request:")
    for package, seconds in totals.most_common(25):
        print(f"  {seconds * 1000 / requests:6.2f}  {package}")


async def _mean_ms(client: httpx.AsyncClient, path: str, cookie: str | None, n: int) -> float:
    headers = {"Cookie": cookie} if cookie else {}
    t0 = time.perf_counter()
    for _ in range(n):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, answer.status_code
    return (time.perf_counter() - t0) * 1000 / n


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    with _settings(args.db) as settings:
        await _prepare(settings, seed_demo=True)
        app = create_app(settings)
        app.register(hello)
        app.state["login_start_limiter"] = LoginStartLimiter(limit=10**9)
        name = cookie_name(settings.https)
        people = {
            "jour": f"{name}={await open_session(settings, JONNA)}",
            "handler": f"{name}={await open_session(settings, HANNA)}",
        }
        transport = httpx.ASGITransport(app=app)  # in this thread: the profile sees the app
        async with (
            app.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client,
        ):
            for who, cookie in people.items():
                page = await client.get("/", headers={"Cookie": cookie})
                assert page.status_code == 200 and "Välkommen" in page.text
                _statements.clear()
                await client.get("/", headers={"Cookie": cookie})
                shapes = collections.Counter(_shape(s) for s in _statements)
                print(f"{who}'s start page: {len(_statements)} SQL statements")
                for shape, count in sorted(shapes.items(), key=lambda kv: -kv[1]):
                    print(f"  {count:3} × {shape}")
            hello_ms = await _mean_ms(client, "/bench/hello", None, args.requests)
            print(f"{args.db}, {args.requests} sequential GETs in process:")
            print(f"  hello            {hello_ms:7.2f} ms")
            for who, cookie in people.items():
                ms = await _mean_ms(client, "/", cookie, args.requests)
                print(f"  {who:8} start  {ms:7.2f} ms   hello / page {hello_ms / ms:.3f}")
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _mean_ms(client, "/", people["jour"], args.requests)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                _by_package(stats, args.requests)
                stats.sort_stats("tottime").print_stats(args.top)
                print(out.getvalue())


if __name__ == "__main__":
    asyncio.run(main())
