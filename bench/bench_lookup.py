"""Personnummer lookup latency through the HTTP API: 10,000 vs 1,000,000 advisories.

For each archive size a fresh PostgreSQL database is migrated, demo-seeded and filled with N
advisories (one version and one subject each) by COPY. Filler rows carry random blind indexes
and one placeholder ciphertext: they never match a lookup, so they are never decrypted. 50
probe persons get 3 real, encrypted advisories each (one of them expired 10 days ago). The
portals (one per size) then run in their own processes (uvicorn, one worker each) and a jour
worker's session posts `POST /api/v1/lookup` for random probe persons, alternating between the
two so background load hits both alike: p50/p95 side by side, with the lookup's query plan.

With `--baseline DIR` (another checkout, e.g. a `git worktree add --detach /tmp/base main`),
a second portal per size runs that checkout's code on the same database, and all four are
measured in the same alternation: this code and the baseline side by side, in the same run.

Usage: .venv/bin/python bench/bench_lookup.py [--sizes 10000 1000000] [--lookups 500]
           [--baseline DIR]
Needs PostgreSQL on 127.0.0.1:5432 (trust auth), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG = "postgresql://postgres@127.0.0.1:5432"
JONNA, HANNA = "197803129829", "196901159803"
PROBES = 50
BATCH = 100_000


def _b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _probe_pnrs() -> list[str]:
    from personnummer import personnummer as pnr_lib

    found: list[str] = []
    rng = random.Random(7)
    while len(found) < PROBES:
        base = f"19{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        for tail in range(10):
            candidate = f"{base}{rng.randint(0, 999):03d}{tail}"
            if pnr_lib.valid(candidate):
                found.append(candidate)
                break
    return found


async def _fill(env: dict[str, str], size: int, probes: list[str]) -> float:
    """Migrate, seed and COPY `size` advisories; returns seconds spent inserting."""
    import asyncpg

    from portal.advisories.content import AdvisoryContent, Subject, to_blob
    from portal.pii import Vault
    from portal.settings import load_settings
    from tests.portal.conftest import prepare_database

    settings = load_settings(environ=env)
    await prepare_database(settings)
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    conn = await asyncpg.connect(env["JOURPOST_DATABASE_URL"].replace("+asyncpg", ""))
    try:
        jour = await conn.fetchval("SELECT id FROM organisations WHERE kind = 'jour'")
        towns = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM organisations WHERE jour_id IS NOT NULL")
        ]
        users = await conn.fetch("SELECT id, pnr_index FROM users")
        author = next(u["id"] for u in users if u["pnr_index"] == vault.index(HANNA))
        started = time.perf_counter()
        # Bulk-load practice: drop the secondary indexes, COPY, rebuild them (timed too).
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_%' AND "
            "tablename IN ('advisories', 'advisory_versions', 'advisory_subjects')"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        now = datetime.now(UTC)
        placeholder = vault.encrypt("{}", "bench:placeholder")
        rng = random.Random(1)
        done = 0
        while done < size:
            n = min(BATCH, size - done)
            adv, ver, sub = [], [], []
            for _ in range(n):
                aid, created = uuid.uuid4(), now - timedelta(minutes=rng.randint(0, 500_000))
                until = created + timedelta(days=14)
                town = rng.choice(towns)
                adv.append(
                    (
                        aid,
                        town,
                        jour,
                        author,
                        created,
                        "active",
                        1,
                        1,
                        created,
                        created,
                        until,
                        "sol",
                    )
                )
                ver.append(
                    (uuid.uuid4(), aid, 1, "created", author, created, until, "sol", placeholder)
                )
                sub.append((uuid.uuid4(), aid, 1, 0, secrets.token_hex(32), placeholder))
            await _copy(conn, adv, ver, sub)
            done += n
        adv, ver, sub = [], [], []
        for pnr in probes:
            for k in range(3):
                aid, vid, sid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                until = now + timedelta(days=7) if k else now - timedelta(days=10)
                content = AdvisoryContent(
                    (Subject(pnr, "Bench Person", ""),), "Plan", "", "Bevilja inte akutboende.",
                    "lvu", "Hanna Hedlund", "0650-190 00", until,
                )  # fmt: skip
                blob = vault.encrypt(to_blob(content), f"advisory_versions.content:{vid}")
                adv.append(
                    (aid, towns[k], jour, author, now, "active", 1, 1, now, now, until, "lvu")
                )
                ver.append((vid, aid, 1, "created", author, now, until, "lvu", blob))
                pnr_enc = vault.encrypt(pnr, f"advisory_subjects.pnr:{sid}")
                sub.append((sid, aid, 1, 0, vault.index(pnr), pnr_enc))
        await _copy(conn, adv, ver, sub)
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        elapsed = time.perf_counter() - started
        await conn.execute("ANALYZE")
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) SELECT a.id FROM advisories a "
            "JOIN advisory_subjects s ON s.advisory_id = a.id AND s.version = a.current_version "
            "WHERE s.pnr_index = $1 AND a.status = 'active' "
            "AND a.valid_until > now() - interval '30 days'",
            vault.index(probes[0]),
        )
        print(f"\n{size:,} advisories: lookup query plan")
        print("\n".join("  " + r[0] for r in plan))
        return elapsed
    finally:
        await conn.close()


async def _copy(conn: Any, adv: list[Any], ver: list[Any], sub: list[Any]) -> None:
    await conn.copy_records_to_table(
        "advisories",
        records=adv,
        columns=["id", "organisation_id", "jour_id", "created_by", "created_at", "status",
                 "current_version", "content_version", "changed_at", "confirmed_at",
                 "valid_until", "legal_basis"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "advisory_versions",
        records=ver,
        columns=["id", "advisory_id", "version", "kind", "created_by", "created_at",
                 "valid_until", "legal_basis", "content_enc"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "advisory_subjects",
        records=sub,
        columns=["id", "advisory_id", "version", "position", "pnr_index", "pnr_enc"],
    )


async def _session(env: dict[str, str]) -> str:
    from sqlalchemy import select

    from auth.sessions import new_token
    from portal.db.base import utcnow
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.db.models import User, WebSession
    from portal.pii import Vault
    from portal.settings import load_settings

    settings = load_settings(environ=env)
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            user = await db.scalar(select(User).where(User.pnr_index == vault.index(JONNA)))
            assert user is not None
            token, key = new_token()
            db.add(
                WebSession(
                    id=key, user_id=user.id, authenticated_at=utcnow(), last_seen_at=utcnow()
                )
            )
        return token
    finally:
        await engine.dispose()


def serve() -> None:
    """Subprocess entry: the portal from JOURPOST_* settings, without the login machinery."""
    import uvicorn

    from portal.app import create_app
    from portal.settings import load_settings

    class NoLogin:
        """The bench opens its session directly; no identity provider is needed."""

    settings = load_settings()
    app = create_app(settings, relying_party=NoLogin())
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", access_log=False)


def _client(url: str, token: str) -> httpx.Client:
    from auth.sessions import cookie_name

    client = httpx.Client(base_url=url, timeout=30)
    client.cookies.set(cookie_name(False), token)
    client.get("/healthz")
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def _measure(
    clients: list[httpx.Client], probes: list[str], lookups: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Alternate between the portals, so background load hits every archive size alike; after
    each lookup the same client also gets `/healthz` (no session, no database): the floor of
    any request through this client, the network stack and the framework on this machine."""
    rng = random.Random(3)
    times: list[list[float]] = [[] for _ in clients]
    floors: list[list[float]] = [[] for _ in clients]
    for i in range(lookups + 50):
        pnr = rng.choice(probes)
        for k, client in enumerate(clients):
            t0 = time.perf_counter()
            r = client.post("/api/v1/lookup", json={"personal_identity_number": pnr})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200 and len(r.json()["advisories"]) == 3, r.text[:300]
            t1 = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            floor = time.perf_counter() - t1
            if i >= 50:  # warm-up excluded
                times[k].append(elapsed * 1000)
                floors[k].append(floor * 1000)
    return times, floors


def _start(
    size: int, probes: list[str], stack: contextlib.ExitStack, trees: list[Path]
) -> tuple[list[str], str, float]:
    """A filled database and a portal process on it per checkout in `trees`: (urls, session
    token, insert seconds)."""
    from tests.servers.net import free_port

    name = f"jourpost_bench_{size}_{secrets.token_hex(4)}"
    subprocess.run(["psql", PG + "/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
    stack.callback(
        subprocess.run,
        ["psql", PG + "/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        check=False,
    )
    ports = [free_port() for _ in trees]
    port = ports[0]
    env = {
        **os.environ,
        "JOURPOST_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        "JOURPOST_KEKS": f"k1:{_b64()}",
        "JOURPOST_CURRENT_KEK": "k1",
        "JOURPOST_BLIND_INDEX_KEY": _b64(),
        "JOURPOST_SECRET_KEY": _b64(),
        "JOURPOST_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "JOURPOST_PORT": str(port),
        "JOURPOST_DATA_DIR": tempfile.mkdtemp(prefix=name),
        "JOURPOST_OIDC_ISSUER": "http://127.0.0.1:9/unused",
        "JOURPOST_MODE": "development",
        # One session makes every lookup: lift the per-user rate limit (30 per 10 minutes).
        "JOURPOST_LOOKUP_LIMIT": "1000000",
    }
    insert_s = asyncio.run(_fill(env, size, probes))
    token = asyncio.run(_session(env))
    urls = []
    for tree, tree_port in zip(trees, ports, strict=True):
        url = f"http://127.0.0.1:{tree_port}"
        tree_env = {**env, "JOURPOST_PORT": str(tree_port), "JOURPOST_PUBLIC_URL": url}
        script = tree / "bench" / "bench_lookup.py"
        proc = subprocess.Popen([sys.executable, str(script), "serve"], env=tree_env, cwd=tree)
        stack.callback(proc.wait, 10)
        stack.callback(proc.terminate)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("portal did not start") from None
                time.sleep(0.2)
        urls.append(url)
    return urls, token, insert_s


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alongside")
    args = parser.parse_args()
    probes = _probe_pnrs()
    small, large = args.sizes
    trees = [Path(__file__).resolve().parents[1]]
    if args.baseline:
        trees.append(args.baseline.resolve())
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        started = [_start(size, probes, stack, trees) for size in (small, large)]
        # Portal order: (size small, this), (small, baseline), (large, this), (large, baseline).
        clients = [_client(url, token) for urls, token, _ in started for url in urls]
        for client in clients:
            stack.callback(client.close)
        measured, floors = _measure(clients, probes, args.lookups)
        times = [sorted(t) for t in measured]
    load_after = os.getloadavg()
    stats = [
        {
            "p50": statistics.median(t),
            "p95": t[int(len(t) * 0.95) - 1],
            "mean": statistics.fmean(t),
            "floor50": statistics.median(f),
            "floor95": sorted(f)[int(len(f) * 0.95) - 1],
        }
        for t, f in zip(times, floors, strict=True)
    ]
    print(f"\nPOST /api/v1/lookup, {args.lookups} lookups per portal (alternating, after 50")
    print("warm-up each), one uvicorn worker per portal, PostgreSQL; load average")
    print(f"{' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after")  # fmt: skip
    n = len(trees)
    for k, tree in enumerate(trees):
        label = "this checkout" if k == 0 else f"baseline {tree}"
        print(f"\n{label}")
        print(f"{'advisories':<22}{small:>14,}{large:>14,}{'ratio':>10}")
        for key, row in (
            ("p50", "p50 latency (ms)"),
            ("p95", "p95 latency (ms)"),
            ("mean", "mean (ms)"),
            ("floor50", "GET /healthz p50"),
            ("floor95", "GET /healthz p95"),
        ):
            a, b = stats[k][key], stats[n + k][key]
            print(f"{row:<22}{a:>14.2f}{b:>14.2f}{b / a:>10.2f}")
    if n == 2:
        print("\nthis / baseline")
        print(f"{'advisories':<22}{small:>14,}{large:>14,}")
        for key in ("p50", "p95", "mean"):
            r = [stats[i][key] / stats[i + 1][key] for i in (0, 2)]
            print(f"{key:<22}{r[0]:>14.2f}{r[1]:>14.2f}")
    print(f"\n{'insert time (s)':<22}{started[0][2]:>14.1f}{started[1][2]:>14.1f}")


if __name__ == "__main__":
    main()
