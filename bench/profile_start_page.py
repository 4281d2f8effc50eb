"""Where the authenticated start page's time goes: SQL statements per page and a profile.

Runs the demo portal in this process and thread (httpx's ASGI transport: no server, no
network) on
SQLite or on a fresh PostgreSQL database, opens a session for the demo's jour worker (the night
dashboard) and for a handler, and prints for each start page:
- the SQL statements one GET executes, grouped by their first words;
- the mean time per GET over `--requests` sequential GETs, beside a bare "hello" route in the
  same app (the ratio is what bench_login.py measures with wrk, without the server and client);
- the process CPU time per GET with the app called directly as an ASGI callable (no HTTP
  client in the process: what one portal process spends per page; the database's own work runs
  in PostgreSQL and is not included), hello, handler and jour interleaved in rounds so all
  three see the same machine;
- with `--profile`, cProfile over the jour page's GETs (`--who handler`: the handler's; the app
  called directly; own time per package, then per function sorted by `--sort`).

Usage: .venv/bin/python bench/profile_start_page.py [--db sqlite|postgres] [--requests 300]
    [--profile [--top 60] [--who jour|handler]]
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
import statistics
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


def _by_package(stats: pstats.Stats, requests: int, who: str) -> None:
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
    print(f"own CPU time per {who} page by package (cProfile, {requests} GETs), ms per request:")
    for package, seconds in totals.most_common(25):
        print(f"  {seconds * 1000 / requests:6.2f}  {package}")


async def _mean_ms(client: httpx.AsyncClient, path: str, cookie: str | None, n: int) -> float:
    headers = {"Cookie": cookie} if cookie else {}
    t0 = time.perf_counter()
    for _ in range(n):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, answer.status_code
    return (time.perf_counter() - t0) * 1000 / n


async def _asgi_get(app: Any, path: str, cookie: str | None) -> int:
    """One GET through the ASGI app itself; its status."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/html")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _cpu_ms(app: Any, path: str, cookie: str | None, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        status = await _asgi_get(app, path, cookie)
        assert status == 200, status
    return (time.process_time() - t0) * 1000 / n


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--who", choices=["jour", "handler"], default="jour")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (cumulative, ...)")
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
            rounds = 5
            cpu: dict[str, list[float]] = {"hello": [], "handler": [], "jour": []}
            for _ in range(rounds):
                cpu["hello"].append(await _cpu_ms(app, "/bench/hello", None, args.requests))
                for who in ("handler", "jour"):
                    cpu[who].append(await _cpu_ms(app, "/", people[who], args.requests))
            hello_cpu = statistics.median(cpu["hello"])
            print(f"process CPU per GET, ASGI app called directly, median of {rounds} rounds:")
            for who, values in cpu.items():
                mid = statistics.median(values)
                low = min(values)
                print(
                    f"  {who:8} median {mid:6.3f} ms, min {low:6.3f} ms"
                    f"  (rounds {' '.join(f'{v:.3f}' for v in values)})"
                    f"   hello / page {hello_cpu / mid:.3f} (min {min(cpu['hello']) / low:.3f})"
                )
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _cpu_ms(app, "/", people[args.who], args.requests)  # no client
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                _by_package(stats, args.requests, args.who)
                stats.sort_stats(args.sort).print_stats(args.top)
                print(out.getvalue())


if __name__ == "__main__":
    asyncio.run(main())
