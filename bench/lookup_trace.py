"""What one `POST /api/v1/lookup` costs, round trip by round trip, and each statement's plan.

A fresh PostgreSQL database is filled as bench_lookup.py fills it (default 10,000 advisories),
the portal runs in this process and thread (httpx's ASGI transport: no network, no test-client
thread between client and portal), and every call the asyncpg driver makes to the server during
one lookup is recorded with its wall time: the pool's pre-ping, BEGIN, each prepared statement
(and a prepare when the statement was not yet cached), COMMIT. The handler's whole time is
measured around the request, so what is not a round trip is Python (Litestar, SQLAlchemy,
decryption, rendering). Then each recorded statement runs again under EXPLAIN (ANALYZE) with
the same parameters, in a transaction that is rolled back, and its plan's execution time is
printed.

With `--profile`, cProfile over `--lookups` more lookups: own CPU time per package and the
functions with the most own time, in ms per lookup (the client's share included: it runs in
the same process, so read the portal's rows).

Usage: .venv/bin/python bench/lookup_trace.py [--size 10000] [--lookups 200] [--profile [--top 40]]
Run from any checkout (the portal imported is the one this file sits in), so the same script
measures two branches: copy it into the other checkout's bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import os
import pstats
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lookup

Call = tuple[str, str, tuple[Any, ...], float]
"""(kind, SQL, arguments, seconds)."""


@contextlib.contextmanager
def _recording(calls: list[Call], on: Callable[[], bool]) -> Iterator[None]:
    """Record every asyncpg call that is a round trip to the server, while `on()`."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, kind: str, sql_of: Callable[..., str]) -> None:
        original = getattr(owner, name)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not on():
                return await original(self, *args, **kwargs)
            started = time.perf_counter()
            try:
                return await original(self, *args, **kwargs)
            finally:
                sql = sql_of(self, *args)
                calls.append(
                    (kind, sql, tuple(args[1:] if kind in ("query", "fetch") else args), 0.0)
                )
                calls[-1] = (*calls[-1][:3], time.perf_counter() - started)

        originals.append((owner, name, original))
        setattr(owner, name, wrapper)

    wrap(asyncpg.Connection, "execute", "simple", lambda self, q, *a: q)
    wrap(asyncpg.Connection, "fetchrow", "query", lambda self, q, *a: q)
    wrap(asyncpg.Connection, "fetch", "fetch", lambda self, q, *a: q)  # portal.db.fast
    wrap(asyncpg.Connection, "prepare", "prepare", lambda self, q, *a: q)
    wrap(PreparedStatement, "fetch", "execute", lambda self, *a: self.get_query())
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def _explain(dsn: str, calls: list[Call]) -> list[tuple[str, str]]:
    """(first plan line, execution time) of each executed statement, rolled back."""
    import asyncpg

    out: list[tuple[str, str]] = []
    conn = await asyncpg.connect(dsn)
    try:
        for kind, sql, args, _ in calls:
            if kind not in ("execute", "fetch"):
                continue
            tr = conn.transaction()
            await tr.start()
            try:
                plan = [
                    r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, *args)
                ]
            except asyncpg.PostgresError as exc:  # e.g. an insert of a seq claimed before
                plan = [f"({type(exc).__name__})"]
            finally:
                await tr.rollback()
            timing = next((p for p in plan if p.startswith("Execution Time")), "")
            out.append((plan[0].strip()[:60], timing.replace("Execution Time: ", "")))
    finally:
        await conn.close()
    return out


def _by_package(stats: Any, lookups: int) -> None:
    """Own time (cProfile's tottime) and function calls per package, per lookup (calls do not
    depend on the machine's load; the time does)."""
    totals: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (path, _, func), (_, ncalls, tottime, *_) in stats.stats.items():
        if "site-packages/" in path:
            package = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/portal/" in path or "/auth/" in path:
            package = "portal (this project)"
        elif path == "~":
            package = f"builtins ({func.split(' of ')[0].strip('<>{}')[:30]})"
        else:
            package = "python stdlib " + Path(path).stem
        totals[package] += tottime
        calls[package] += ncalls
    print(f"own CPU time and calls per lookup by package (cProfile, {lookups} lookups):")
    print(f"  {'ms':>7} {'calls':>7}  package")
    for package, seconds in totals.most_common(25):
        print(f"  {seconds * 1000 / lookups:7.3f} {calls[package] / lookups:7.0f}  {package}")
    print(f"  {'':7} {sum(calls.values()) / lookups:7.0f}  all")


async def _run(
    env: dict[str, str], probes: list[str], lookups: int, profile: bool = False, top: int = 40
) -> None:
    import httpx

    from auth.sessions import cookie_name
    from portal.app import create_app
    from portal.settings import load_settings

    class NoLogin:
        """The session is opened directly; no identity provider is needed."""

    settings = load_settings(environ=env)
    token = await bench_lookup._session(env)
    app = create_app(settings, relying_party=NoLogin())  # type: ignore[arg-type]
    calls: list[Call] = []
    recording = False
    rng = random.Random(5)
    # In this thread and event loop (no test client thread between): the profile sees the app.
    transport = httpx.ASGITransport(app=app)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        client.cookies.set(cookie_name(False), token)
        await client.get("/healthz")
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]

        async def one() -> float:
            pnr = rng.choice(probes)
            t0 = time.perf_counter()
            r = await client.post("/api/v1/lookup", json={"personal_identity_number": pnr})
            took = time.perf_counter() - t0
            assert r.status_code == 200 and len(r.json()["advisories"]) == 3, r.text[:300]
            return took

        for _ in range(30):
            await one()
        times = [await one() for _ in range(lookups)]
        with _recording(calls, lambda: recording):
            recording = True
            traced = await one()
            recording = False
        # PostgreSQL's plan cache on a pooled connection after the lookups: a statement planned
        # afresh on every execution (custom plans) pays its planning time each time.
        async with app.state["portal"].engine.connect() as conn:
            cached = (
                await conn.exec_driver_sql(
                    "SELECT generic_plans, custom_plans,"
                    " left(regexp_replace(statement, '\\s+', ' ', 'g'), 70)"
                    " FROM pg_prepared_statements WHERE generic_plans + custom_plans > 20"
                    " ORDER BY custom_plans DESC"
                )
            ).all()
        print("plan cache of one pooled connection (statements executed more than 20 times):")
        for generic, custom, head in cached:
            print(f"  generic {generic:5}  custom {custom:5}  {head}")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(lookups):
                await one()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            _by_package(stats, lookups)
            stats.sort_stats("tottime").print_stats(top)
            print(out.getvalue())
    dsn = env["JOURPOST_DATABASE_URL"].replace("+asyncpg", "")
    plans = iter(await _explain(dsn, calls))
    print(f"\nOne lookup, in process: {traced * 1000:.2f} ms; {len(calls)} round trips")
    print(f"{'#':>3} {'kind':<8}{'ms':>7}  {'server (EXPLAIN ANALYZE)':<26}statement")
    for i, (kind, sql, _, took) in enumerate(calls, 1):
        server = ""
        if kind in ("execute", "fetch"):
            first, timing = next(plans)
            server = f"{timing:<12} {first[:13]}"
        print(f"{i:>3} {kind:<8}{took * 1000:>7.3f}  {server:<26}{' '.join(sql.split())[:90]}")
    in_trips = sum(c[3] for c in calls) * 1000
    print(f"round trips {in_trips:.2f} ms, the rest (Python) {traced * 1000 - in_trips:.2f} ms")
    times.sort()
    print(
        f"{lookups} lookups in process: p50 {statistics.median(times) * 1000:.2f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.2f} ms; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


async def _floor(dsn: str, runs: int = 200) -> None:
    """What any audited request pays at least, raw asyncpg on this server right now: one
    round trip (`SELECT 1`), and BEGIN + a one-row INSERT + COMMIT (the commit waits for the
    WAL flush, as an audited read's does)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS trace_floor (id serial PRIMARY KEY, v text)")
        trips, commits = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            await conn.fetchval("SELECT 1")
            trips.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.execute("INSERT INTO trace_floor (v) VALUES ($1)", "x")
            commits.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    for label, t in (("one round trip", trips), ("BEGIN+INSERT+COMMIT", commits)):
        t.sort()
        print(
            f"floor, {label}: p50 {statistics.median(t) * 1000:.3f} ms, "
            f"p95 {t[int(len(t) * 0.95) - 1] * 1000:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile more lookups")
    parser.add_argument("--top", type=int, default=40, help="functions listed with --profile")
    args = parser.parse_args()
    import portal

    print("portal from", Path(portal.__file__).parent)
    probes = bench_lookup._probe_pnrs()
    name = f"jourpost_trace_{secrets.token_hex(4)}"
    pg = bench_lookup.PG
    subprocess.run(["psql", pg + "/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
    try:
        key = bench_lookup._b64
        env = {
            **os.environ,
            "JOURPOST_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            "JOURPOST_KEKS": f"k1:{key()}",
            "JOURPOST_CURRENT_KEK": "k1",
            "JOURPOST_BLIND_INDEX_KEY": key(),
            "JOURPOST_SECRET_KEY": key(),
            "JOURPOST_PUBLIC_URL": "http://127.0.0.1",
            "JOURPOST_DATA_DIR": tempfile.mkdtemp(prefix=name),
            "JOURPOST_OIDC_ISSUER": "http://127.0.0.1:9/unused",
            "JOURPOST_MODE": "development",
            "JOURPOST_LOOKUP_LIMIT": "1000000",
        }
        asyncio.run(bench_lookup._fill(env, args.size, probes))
        asyncio.run(_run(env, probes, args.lookups, args.profile, args.top))
        asyncio.run(_floor(env["JOURPOST_DATABASE_URL"].replace("+asyncpg", "")))
    finally:
        subprocess.run(
            ["psql", pg + "/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            check=False,
        )


if __name__ == "__main__":
    main()
