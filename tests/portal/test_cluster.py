"""The scaled-out shape for real: two portal processes on one PostgreSQL database and a
multi-node SeaweedFS cluster (master, three volume servers with every file in two copies,
filer, S3 gateway), with one volume server SIGKILLed — or frozen with SIGSTOP, a hung machine
whose connections stay open — while uploads and downloads run.

Nothing may be lost: every upload that was answered 2xx downloads from both instances with the
right SHA-256, an upload that failed was answered with a 503 problem and left no row, and the
attachment rows are exactly the objects under `attachments/` in the bucket (after a frozen
server, once `jourpost storage sweep` has removed the objects of the uploads that failed).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from portal.settings import Settings
from tests.conftest import drop_pg_database, make_pg_database
from tests.portal.advisories.helpers import HANNA, body, iso, pdf_bytes
from tests.portal.sessions import client_as
from tests.servers.portal_process import portal_processes, prepare, settings_of, shared_environment
from tests.servers.seaweed_cluster import SeaweedCluster, seaweed_cluster

pytestmark = pytest.mark.postgres

UPLOADS = 60
"""Attachments uploaded in the run (spread evenly over both instances)."""
WORKERS = 12
"""Uploads in flight at once."""
KILL_AFTER = 20
"""Uploads finished before a volume server is killed (the rest run during and after)."""
ADVISORIES = 4
"""Advisories the attachments are spread over."""
MULTIPART_EVERY = 15
"""Every so many uploads is above minio's 5 MiB part size (a multipart upload to S3)."""
FROZEN_READ_TIMEOUT = 5
"""s3_read_timeout_seconds of the portals in the frozen-server test."""
FROZEN_ATTEMPTS = 2
"""s3_max_attempts of the portals in the frozen-server test."""
CLIENT_TIMEOUT = 60.0
"""Seconds the test's HTTP clients wait for any answer (a hung request fails the test)."""
NO_ANSWER = 0
"""Outcome status of an upload that got no answer within CLIENT_TIMEOUT."""
CUT_OFF = -1
"""Download status of a response whose body stopped short (or never came)."""


@dataclass
class Outcome:
    """What happened to one upload and the download that followed it."""

    index: int
    status: int
    seconds: float
    attachment_id: str | None = None
    problem_type: str = ""
    download_status: int | None = None
    download_ok: bool | None = None


@dataclass
class Cluster:
    """The running shape the test works on."""

    seaweed: SeaweedCluster
    urls: list[str]
    settings: Settings
    bucket: str
    env: dict[str, str]
    """The JOURPOST_* environment both instances run with (for `jourpost` commands)."""


@contextmanager
def _running(
    pg_server: str, pg_template: str, tmp_path: Path, **settings: str
) -> Iterator[Cluster]:
    """Two `jourpost serve` processes on a fresh PostgreSQL database and the SeaweedFS cluster,
    with extra `settings` (lower-case names) for both."""
    bucket = f"jp-{uuid.uuid4().hex[:12]}"
    with seaweed_cluster() as seaweed:
        name, url = make_pg_database(pg_server, template=pg_template)
        try:
            env = shared_environment(
                tmp_path,
                url,
                storage_backend="s3",
                s3_endpoint=seaweed.endpoint,
                s3_access_key=seaweed.access_key,
                s3_secret_key=seaweed.secret_key,
                s3_bucket=bucket,
                s3_secure="false",
                **settings,
            )
            prepare(env)
            with portal_processes(env, tmp_path, count=2) as urls:
                yield Cluster(seaweed, urls, settings_of(env), bucket, env)
        finally:
            drop_pg_database(name)


@pytest.fixture
def cluster(pg_server: str, pg_template: str, tmp_path: Path) -> Iterator[Cluster]:
    """The shape with the default S3 timeouts."""
    with _running(pg_server, pg_template, tmp_path) as running:
        yield running


@pytest.fixture
def cluster_short_timeouts(pg_server: str, pg_template: str, tmp_path: Path) -> Iterator[Cluster]:
    """The shape with S3 calls bounded to FROZEN_READ_TIMEOUT × FROZEN_ATTEMPTS."""
    with _running(
        pg_server,
        pg_template,
        tmp_path,
        s3_read_timeout_seconds=str(FROZEN_READ_TIMEOUT),
        s3_max_attempts=str(FROZEN_ATTEMPTS),
    ) as running:
        yield running


def _payload(index: int) -> bytes:
    """A valid PDF with random padding: 16-540 KiB, or 6 MiB for every MULTIPART_EVERY-th."""
    if index % MULTIPART_EVERY == MULTIPART_EVERY - 1:
        return pdf_bytes(f"Bilaga {index}", padding=6 << 20)
    return pdf_bytes(f"Bilaga {index}", padding=(16 << 10) + (index * 9173) % (524 << 10))


def _upload_then_download(
    clients: list[httpx.Client], advisory: str, index: int, pdf: bytes
) -> Outcome:
    """Upload through instance index % 2, then download through the other one."""
    client, other = clients[index % 2], clients[(index + 1) % 2]
    started = time.monotonic()
    try:
        answer = client.post(
            f"/api/v1/advisories/{advisory}/attachments",
            files={"attachments": (f"bilaga-{index}.pdf", pdf, "application/pdf")},
        )
    except httpx.TimeoutException:
        return Outcome(index, NO_ANSWER, time.monotonic() - started)
    outcome = Outcome(index, answer.status_code, time.monotonic() - started)
    if not answer.is_success:
        outcome.problem_type = answer.headers.get("content-type", "")
        return outcome
    (outcome.attachment_id,) = answer.json()["ids"]
    try:
        got = other.get(f"/api/v1/advisories/{advisory}/attachments/{outcome.attachment_id}")
    except httpx.TransportError:
        # The download is streamed: when the store stalls mid-file the portal can only cut
        # the connection (the 200 and Content-Length are already sent); the client sees a
        # short body. Allowed while a volume server is frozen, never after.
        outcome.download_status, outcome.download_ok = CUT_OFF, False
        return outcome
    outcome.download_status = got.status_code
    outcome.download_ok = got.status_code == 200 and _sha(got.content) == _sha(pdf)
    return outcome


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _busiest_volume_server(seaweed: SeaweedCluster, bucket: str) -> int:
    """Index of the volume server holding the most copies of the bucket's volumes."""
    counts = {f"127.0.0.1:{v.http_port}": 0 for v in seaweed.volumes}
    for holders in seaweed.replica_locations(bucket).values():
        for holder in holders:
            counts[holder] += 1
    busiest = max(counts, key=lambda holder: counts[holder])
    return [f"127.0.0.1:{v.http_port}" for v in seaweed.volumes].index(busiest)


def _assert_two_copies_on_different_servers(seaweed: SeaweedCluster, bucket: str) -> None:
    locations = seaweed.replica_locations(bucket)
    assert locations, "the bucket's collection has no volumes"
    for volume, holders in locations.items():
        assert len(set(holders)) == 2, f"volume {volume} is on {holders}, not on two servers"


def _run_with_fault(
    c: Cluster,
    clients: list[httpx.Client],
    advisories: list[str],
    pdfs: list[bytes],
    fault: Callable[[int], None],
) -> tuple[list[Outcome], int]:
    """Run every upload (WORKERS at a time); after KILL_AFTER finished, call `fault` with the
    index of the volume server holding most copies. Returns the outcomes and that index."""
    outcomes: list[Outcome] = []
    victim = -1
    with ThreadPoolExecutor(WORKERS) as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(_upload_then_download, clients, advisories[i % ADVISORIES], i, pdf)
            for i, pdf in enumerate(pdfs)
        ]
        for future in as_completed(futures):
            outcomes.append(future.result())
            if len(outcomes) == KILL_AFTER:
                _assert_two_copies_on_different_servers(c.seaweed, c.bucket)
                victim = _busiest_volume_server(c.seaweed, c.bucket)
                fault(victim)
    return sorted(outcomes, key=lambda o: o.index), victim


def _wait_until_dropped(seaweed: SeaweedCluster, since: float) -> float:
    """Seconds until the master lists only the two live volume servers (polled, bounded)."""
    deadline = since + 30
    while len(seaweed.live_volume_servers()) != 2:
        assert time.monotonic() < deadline, "the master never noticed the dead volume server"
        time.sleep(0.05)
    return time.monotonic() - since


async def _attachment_rows(database_url: str) -> dict[str, str]:
    """Attachment row id (hex) -> object id, straight from PostgreSQL."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT id, object_id FROM attachments")
    finally:
        await conn.close()
    return {row["id"].hex: row["object_id"] for row in rows}


def _bucket_objects(seaweed: SeaweedCluster, bucket: str) -> list[str]:
    """Every version of every object under attachments/ (a key twice means a stray version)."""
    return [
        o.object_name or ""
        for o in seaweed.client().list_objects(
            bucket, prefix="attachments/", recursive=True, include_version=True
        )
        if not o.is_delete_marker
    ]


def _start(c: Cluster) -> tuple[list[httpx.Client], list[str], list[bytes]]:
    """Clients logged in at both instances, ADVISORIES advisories, UPLOADS payloads."""
    clients = [client_as(url, c.settings, HANNA) for url in c.urls]
    for client in clients:
        client.timeout = httpx.Timeout(CLIENT_TIMEOUT)
    advisories = []
    for i in range(ADVISORIES):
        created = clients[i % 2].post(
            "/api/v1/advisories", json=body(valid_until=iso(timedelta(days=5)))
        )
        assert created.status_code == 201, created.text
        advisories.append(str(created.json()["id"]))
    return clients, advisories, [_payload(i) for i in range(UPLOADS)]


def _summary(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    """Print the figures; return the successful and the failed uploads."""
    ok = [o for o in outcomes if 200 <= o.status < 300]
    failed = [o for o in outcomes if o not in ok]
    latencies = sorted(o.seconds for o in outcomes)
    print(
        f"\n{len(ok)} uploads ok, {len(failed)} failed ({sorted({o.status for o in failed})}); "
        f"p50 {latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s; "
        f"downloads right after upload not ok: "
        f"{[o.download_status for o in ok if not o.download_ok]}"
    )
    hung = [o.index for o in failed if o.status == NO_ANSWER]
    assert not hung, f"uploads {hung} got no answer within {CLIENT_TIMEOUT} s"
    for o in failed:  # a failure is a clear answer, never a hang or a 500
        assert o.status == 503 and o.problem_type.startswith("application/problem+json"), o
    return ok, failed


def _assert_all_there(
    c: Cluster, clients: list[httpx.Client], advisories: list[str], pdfs: list[bytes],
    ok: list[Outcome],
) -> dict[str, str]:  # fmt: skip
    """Every 2xx upload downloads from both instances byte for byte, and has its row (and no
    failed upload has one). Returns the rows (id hex -> object id)."""
    for o in ok:
        for client in clients:
            advisory = advisories[o.index % ADVISORIES]
            got = client.get(f"/api/v1/advisories/{advisory}/attachments/{o.attachment_id}")
            assert got.status_code == 200, (o, got.status_code)
            assert _sha(got.content) == _sha(pdfs[o.index]), o
    rows = asyncio.run(_attachment_rows(c.settings.database_url))
    assert set(rows) == {uuid.UUID(str(o.attachment_id)).hex for o in ok}
    return rows


def test_two_instances_lose_nothing_when_a_volume_server_dies(cluster: Cluster) -> None:
    clients, advisories, pdfs = _start(cluster)
    dropped: list[float] = []

    def kill(victim: int) -> None:
        killed_at = time.monotonic()
        cluster.seaweed.kill_volume(victim)
        dropped.append(_wait_until_dropped(cluster.seaweed, killed_at))

    outcomes, victim = _run_with_fault(cluster, clients, advisories, pdfs, kill)

    refused = cluster.seaweed.refused_writes(victim)
    print(f"\ndead server dropped by the master after {dropped[0]:.2f} s; gateway log: {refused} "
          "refused writes to it (retried by the gateway)")  # fmt: skip
    ok, _ = _summary(outcomes)
    assert len(cluster.seaweed.live_volume_servers()) == 2
    assert all(o.download_ok for o in ok), [o for o in ok if not o.download_ok]
    rows = _assert_all_there(cluster, clients, advisories, pdfs, ok)
    # Nothing half-stored: the rows are exactly the bucket's objects, one version each.
    objects = _bucket_objects(cluster.seaweed, cluster.bucket)
    assert sorted(objects) == sorted(rows.values())


def test_a_frozen_volume_server_costs_bounded_503s_and_the_sweep_clears_their_objects(
    cluster_short_timeouts: Cluster,
) -> None:
    c = cluster_short_timeouts
    clients, advisories, pdfs = _start(c)

    outcomes, victim = _run_with_fault(c, clients, advisories, pdfs, c.seaweed.freeze_volume)

    ok, failed = _summary(outcomes)
    print(f"master still counts the frozen server: {len(c.seaweed.live_volume_servers()) == 3}")
    # While frozen a download may fail (503, or cut off mid-stream) but never be wrong.
    assert {o.download_status for o in ok if not o.download_ok} <= {503, CUT_OFF}
    # And the instances stay in the load balancer: one hung volume server must not take the
    # whole portal out (the probe has its own thread; the store only makes it "degraded").
    for url in c.urls:
        probe = httpx.get(f"{url}/readyz", timeout=10)
        assert probe.status_code == 200 and probe.json()["checks"]["database"] == "ok", url
    c.seaweed.thaw_volume(victim)
    rows = _assert_all_there(c, clients, advisories, pdfs, ok)
    # The PUTs the portal gave up on may still land inside SeaweedFS: objects with no row.
    # `jourpost storage sweep` (daily with a 24 h grace in production) removes them.
    _wait_until_settled(c)
    swept = _storage_sweep(c)
    print(f"storage sweep: {swept}")
    versions = _bucket_objects(c.seaweed, c.bucket)
    assert set(versions) == set(rows.values())
    extra = len(versions) - len(set(versions))
    print(f"{len(failed)} failed uploads; {extra} extra versions of recorded objects remain")


def _wait_until_settled(c: Cluster, quiet_for: float = 3.0, limit: float = 30.0) -> None:
    """Poll until the bucket's listing stays the same for `quiet_for` seconds (bounded)."""
    last, since = _bucket_objects(c.seaweed, c.bucket), time.monotonic()
    deadline = since + limit
    while time.monotonic() - since < quiet_for:
        assert time.monotonic() < deadline, "the bucket kept changing after the thaw"
        time.sleep(0.5)
        now = _bucket_objects(c.seaweed, c.bucket)
        if sorted(now) != sorted(last):
            last, since = now, time.monotonic()


def _storage_sweep(c: Cluster) -> str:
    """Run `jourpost storage sweep --grace-hours 0` with the instances' settings."""
    jourpost = str(Path(sys.executable).parent / "jourpost")
    done = subprocess.run(
        [jourpost, "storage", "sweep", "--grace-hours", "0"],
        env={**os.environ, **c.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return done.stdout.strip()
