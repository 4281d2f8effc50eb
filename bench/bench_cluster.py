"""Benchmark: 200 concurrent attachment uploads over two portal instances on a multi-node
SeaweedFS cluster, with one volume server SIGKILLed part-way, beside baselines in the same run.

    .venv/bin/python bench/bench_cluster.py [--uploads 200] [--size-kb 256] [--kill-after 50]
                                            [--no-mini] [--freeze]

Two `jourpost serve` processes (separate OS processes, one PostgreSQL database on 127.0.0.1:5432,
the same keys and bucket) per object store. Rounds, in this order:
    mini          single-node `weed mini` (what the test suite uses), no fault
    cluster       master + three volume servers (replication 001: two copies on two servers)
                  + filer + S3 gateway, no fault
    cluster-kill  the same cluster and portals, a second round; the volume server holding most
                  copies of the bucket's volumes is SIGKILLed once --kill-after uploads finished
    cluster-freeze  (with --freeze) a fresh cluster, that server SIGSTOPped instead: a hung
                  machine whose connections stay open (resumed with SIGCONT at the end)
A round starts every upload at once (asyncio, one connection each, alternating instances) and
times each from request to answer. Afterwards every 2xx upload is downloaded from the *other*
instance and its SHA-256 compared ("lost" counts those that fail), and the `attachments` rows
are compared with the object versions under attachments/ in the bucket (cumulative per store).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script
from tests.conftest import drop_pg_database, make_pg_database
from tests.portal.advisories.helpers import HANNA, body, iso, pdf_bytes
from tests.portal.sessions import client_as
from tests.servers.portal_process import (
    portal_processes,
    prepare,
    settings_of,
    shared_environment,
)
from tests.servers.seaweed_cluster import SeaweedCluster, seaweed_cluster
from tests.servers.seaweedfs import seaweedfs

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
ADVISORIES = 8
WARM_UP = 20
"""Uploads of the unreported first round on each pair of portals."""


@dataclass
class Round:
    """Figures of one round of uploads."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    wall: float = 0.0
    lost: int = 0
    rows: int = 0
    objects: int = 0
    killed_in_flight: int = 0
    uploaded: list[tuple[int, str, str]] = field(default_factory=list)
    """(payload index, advisory id, attachment id) of every 2xx upload."""

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Portals:
    """Two running instances and what a round needs to talk to them."""

    urls: list[str]
    cookies: list[httpx.Cookies]
    headers: list[dict[str, str]]
    database_url: str
    bucket: str
    list_versions: Callable[[], list[str]]
    env: dict[str, str]
    advisories: list[str] = field(default_factory=list)


@contextmanager
def two_portals(endpoint: str, access: str, secret: str, tmp: Path) -> Iterator[Portals]:
    """Two `jourpost serve` processes on a fresh PostgreSQL database and this S3 endpoint."""
    bucket = f"jp-bench-{uuid.uuid4().hex[:8]}"
    name, url = make_pg_database(PG)
    try:
        env = shared_environment(
            tmp,
            url,
            storage_backend="s3",
            s3_endpoint=endpoint,
            s3_access_key=access,
            s3_secret_key=secret,
            s3_bucket=bucket,
            s3_secure="false",
        )
        prepare(env)
        with portal_processes(env, tmp, count=2) as urls:
            settings = settings_of(env)
            sync = [client_as(u, settings, HANNA) for u in urls]
            portals = Portals(
                urls,
                [c.cookies for c in sync],
                [dict(c.headers) for c in sync],
                url,
                bucket,
                lambda: [],
                env,
            )
            for i in range(ADVISORIES):
                made = sync[i % 2].post(
                    "/api/v1/advisories", json=body(valid_until=iso(timedelta(days=5)))
                )
                made.raise_for_status()
                portals.advisories.append(str(made.json()["id"]))
            yield portals
    finally:
        drop_pg_database(name)


def _clients(p: Portals) -> list[httpx.AsyncClient]:
    return [
        httpx.AsyncClient(
            base_url=u,
            cookies=c,
            headers=h,
            timeout=300,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=0),
        )
        for u, c, h in zip(p.urls, p.cookies, p.headers, strict=True)
    ]


async def upload_round(
    name: str, p: Portals, pdfs: list[bytes], kill: Callable[[], None] | None, kill_after: int
) -> Round:
    """Start every upload at once; call `kill` when `kill_after` have been answered."""
    result = Round(name)
    clients = _clients(p)
    answered = 0

    async def one(i: int) -> None:
        nonlocal answered
        advisory = p.advisories[i % ADVISORIES]
        started = time.perf_counter()
        try:
            answer = await clients[i % 2].post(
                f"/api/v1/advisories/{advisory}/attachments",
                files={"attachments": (f"bilaga-{i}.pdf", pdfs[i], "application/pdf")},
            )
            status = answer.status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        result.latencies.append(time.perf_counter() - started)
        result.statuses[status] += 1
        if 200 <= status < 300:
            result.uploaded.append((i, advisory, str(answer.json()["ids"][0])))
        answered += 1
        if kill is not None and answered == kill_after:
            result.killed_in_flight = len(pdfs) - answered
            kill()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(pdfs))))
    result.wall = time.perf_counter() - started
    result.lost = await _count_lost(clients, result.uploaded, pdfs)
    for c in clients:
        await c.aclose()
    result.rows = await _count_rows(p.database_url)
    result.objects = len(p.list_versions())
    return result


async def _count_lost(
    clients: list[httpx.AsyncClient], uploaded: list[tuple[int, str, str]], pdfs: list[bytes]
) -> int:
    """2xx uploads that don't download (through the other instance) with the right SHA-256."""
    gate = asyncio.Semaphore(16)

    async def check(i: int, advisory: str, attachment: str) -> bool:
        async with gate:
            got = await clients[(i + 1) % 2].get(
                f"/api/v1/advisories/{advisory}/attachments/{attachment}"
            )
        same = hashlib.sha256(got.content).digest() == hashlib.sha256(pdfs[i]).digest()
        return got.status_code == 200 and same

    checks = await asyncio.gather(*(check(*u) for u in uploaded))
    return sum(1 for good in checks if not good)


async def _count_rows(database_url: str) -> int:
    return len(await _row_keys(database_url))


async def _row_keys(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""), timeout=5)
    try:
        return {row["object_id"] for row in await conn.fetch("SELECT object_id FROM attachments")}
    finally:
        await conn.close()


def census(p: Portals) -> str:
    """Rows, keys in the bucket with no row (orphans), and extra versions of a key."""
    rows = asyncio.run(_row_keys(p.database_url))
    versions = Counter(p.list_versions())
    orphans = len(set(versions) - rows)
    extra = sum(n - 1 for n in versions.values())
    missing = len(rows - set(versions))
    return f"rows {len(rows)}, orphan keys {orphans}, extra versions {extra}, missing {missing}"


def _settled(p: Portals, quiet_for: float = 5.0, limit: float = 60.0) -> None:
    """Wait until the bucket's listing stops changing (writes the gateway still finishes)."""
    last, since, deadline = p.list_versions(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet_for and time.monotonic() < deadline:
        time.sleep(1)
        now = p.list_versions()
        if sorted(now) != sorted(last):
            last, since = now, time.monotonic()


def storage_sweep(p: Portals) -> str:
    """`jourpost storage sweep --grace-hours 0` with the portals' settings; its summary line."""
    jourpost = str(Path(sys.executable).parent / "jourpost")
    done = subprocess.run(
        [jourpost, "storage", "sweep", "--grace-hours", "0"],
        env={**os.environ, **p.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    said = done.stdout.strip().splitlines()[0] if done.stdout.strip() else done.stderr[-300:]
    return f"exit {done.returncode}: {said}"


def _versions(client: Any, bucket: str) -> list[str]:
    return [
        o.object_name
        for o in client.list_objects(
            bucket, prefix="attachments/", recursive=True, include_version=True
        )
        if not o.is_delete_marker
    ]


def _busiest(cluster: SeaweedCluster, bucket: str) -> int:
    urls = [f"127.0.0.1:{v.http_port}" for v in cluster.volumes]
    copies = Counter(h for hs in cluster.replica_locations(bucket).values() for h in hs)
    return urls.index(max(urls, key=lambda u: copies[u]))


def warm_up(p: Portals, pdfs: list[bytes]) -> None:
    """A first small round, not reported: connection pools, imports, the bucket's volumes."""
    asyncio.run(upload_round("warm-up", p, pdfs[:WARM_UP], None, 0))


def run_mini(pdfs: list[bytes], tmp: Path) -> Round:
    with seaweedfs() as s3, two_portals(s3.endpoint, s3.access_key, s3.secret_key, tmp) as p:
        p.list_versions = lambda: _versions(s3.client(), p.bucket)
        warm_up(p, pdfs)
        return asyncio.run(upload_round("mini", p, pdfs, None, 0))


def run_cluster(pdfs: list[bytes], tmp: Path, kill_after: int) -> tuple[Round, Round, str]:
    with ExitStack() as stack:
        cluster = stack.enter_context(seaweed_cluster())
        p = stack.enter_context(
            two_portals(cluster.endpoint, cluster.access_key, cluster.secret_key, tmp)
        )
        p.list_versions = lambda: _versions(cluster.client(), p.bucket)
        warm_up(p, pdfs)
        quiet = asyncio.run(upload_round("cluster", p, pdfs, None, 0))
        placement = sorted(cluster.replica_locations(p.bucket).items())
        victim = _busiest(cluster, p.bucket)
        faulty = asyncio.run(
            upload_round("cluster-kill", p, pdfs, lambda: cluster.kill_volume(victim), kill_after)
        )
        layout = ", ".join(f"v{vid}: {len(set(hs))} servers" for vid, hs in placement)
        layout += f"; gateway log: {cluster.refused_writes(victim)} refused writes to the victim"
        return quiet, faulty, layout


def run_freeze(pdfs: list[bytes], tmp: Path, freeze_after: int) -> tuple[Round, float, list[str]]:
    """On a fresh cluster: SIGSTOP the busiest volume server part-way (thawed at the end).
    Returns the round, how long the master took to drop the frozen server, and the state of
    the bucket against the rows after the thaw and after a storage sweep."""
    with ExitStack() as stack:
        cluster = stack.enter_context(seaweed_cluster())
        p = stack.enter_context(
            two_portals(cluster.endpoint, cluster.access_key, cluster.secret_key, tmp)
        )
        p.list_versions = lambda: _versions(cluster.client(), p.bucket)
        warm_up(p, pdfs)
        victim = _busiest(cluster, p.bucket)
        frozen_at = [0.0]

        def freeze() -> None:
            frozen_at[0] = time.monotonic()
            cluster.freeze_volume(victim)

        frozen = asyncio.run(upload_round("cluster-freeze", p, pdfs, freeze, freeze_after))
        while len(cluster.live_volume_servers()) == 3 and time.monotonic() - frozen_at[0] < 300:
            time.sleep(0.5)
        dropped = time.monotonic() - frozen_at[0]
        cluster.thaw_volume(victim)
        _settled(p)
        notes = [f"after the thaw: {census(p)}"]
        notes.append(f"storage sweep --grace-hours 0: {storage_sweep(p)}")
        notes.append(f"after the sweep: {census(p)}")
        return frozen, dropped, notes


def portal_warnings(logs: Path) -> list[str]:
    """The portals' WARNING/ERROR lines in `logs`, counted by kind (ids and times removed)."""
    kinds: Counter[str] = Counter()
    for log in sorted(logs.glob("portal*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if " WARNING " in line or " ERROR " in line:
                kind = line.split(" ", 2)[-1]
                kind = re.sub(r"\[[0-9a-f-]+\] ", "", kind)
                kind = re.sub(r"[0-9a-f]{32}|jp-bench-[0-9a-f]+", "…", kind)
                kind = re.sub(r"read timeout=[0-9.]+|total=\d+|port=\d+", "…", kind)
                kinds[kind[:160]] += 1
    return [f"{n:4} × {kind}" for kind, n in kinds.most_common(6)]


def _line(r: Round) -> str:
    errors = {s: n for s, n in r.statuses.items() if not 200 <= s < 300}
    return (
        f"{r.name:<13} {r.ok:>4} ok  errors {errors or 0!s:<12} p50 {r.pct(0.5):7.0f} ms  "
        f"p95 {r.pct(0.95):7.0f} ms  max {r.pct(1.0):7.0f} ms  wall {r.wall:6.1f} s  "
        f"lost {r.lost}  rows {r.rows} = objects {r.objects}: {r.rows == r.objects}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=256, help="random padding per PDF")
    parser.add_argument("--kill-after", type=int, default=50, help="answered before the kill")
    parser.add_argument("--no-mini", action="store_true", help="skip the single-node baseline")
    parser.add_argument(
        "--freeze", action="store_true", help="also a round with a volume server SIGSTOPped"
    )
    parser.add_argument("--logs", help="keep the portals' logs under this directory")
    args = parser.parse_args()
    pdfs = [pdf_bytes(f"Bilaga {i}", padding=args.size_kb << 10) for i in range(args.uploads)]
    with ExitStack() as stack:
        if args.logs:
            tmp = str(Path(args.logs).resolve())
            Path(tmp).mkdir(parents=True, exist_ok=True)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cluster-"))
        mini = None if args.no_mini else run_mini(pdfs, Path(tmp) / "mini")
        quiet, faulty, layout = run_cluster(pdfs, Path(tmp) / "cluster", args.kill_after)
        freeze = run_freeze(pdfs, Path(tmp) / "freeze", args.kill_after) if args.freeze else None
        warnings = {
            store: portal_warnings(Path(tmp) / store)
            for store in ("mini", "cluster", "freeze")
            if (Path(tmp) / store).is_dir()
        }

    print(
        f"{args.uploads} concurrent uploads of {len(pdfs[0]) >> 10} KiB PDFs over two "
        f"`jourpost serve` processes (PostgreSQL):"
    )
    for r in (mini, quiet, faulty, freeze[0] if freeze else None):
        if r is not None:
            print("  " + _line(r))
    print(f"  cluster placement before the kill: {layout}")
    print(
        f"  volume server SIGKILLed after {args.kill_after} answers, "
        f"{faulty.killed_in_flight} uploads in flight"
    )
    ratio = f"cluster-kill / cluster: p50 {faulty.pct(0.5) / quiet.pct(0.5):.2f}, "
    ratio += f"p95 {faulty.pct(0.95) / quiet.pct(0.95):.2f}"
    if mini is not None:
        ratio += f"; cluster / mini: p50 {quiet.pct(0.5) / mini.pct(0.5):.2f}, "
        ratio += f"p95 {quiet.pct(0.95) / mini.pct(0.95):.2f}"
    print("  " + ratio)
    if freeze is not None:
        print(
            f"  cluster-freeze (a fresh cluster): volume server SIGSTOPped after "
            f"{args.kill_after} answers; the master dropped it after {freeze[1]:.0f} s"
        )
        for note in freeze[2]:
            print(f"    {note}")
    for store, lines in warnings.items():
        print(
            f"  portal warnings ({store}):" + "".join(f"\n    {line}" for line in lines or ["none"])
        )


if __name__ == "__main__":
    main()
