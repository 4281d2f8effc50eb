"""The scaled-out shape for real: two portal processes on one PostgreSQL database and a
multi-node SeaweedFS cluster (master, three volume servers with every file in two copies,
filer, S3 gateway), with one volume server SIGKILLed while uploads and downloads run.

Nothing may be lost: every upload that was answered 2xx downloads from both instances with the
right SHA-256, an upload that failed was answered with a 503 problem and left no row, and the
attachment rows are exactly the objects under `attachments/` in the bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
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


@pytest.fixture
def cluster(pg_server: str, pg_template: str, tmp_path: Path) -> Iterator[Cluster]:
    """Two `jourpost serve` processes on a fresh PostgreSQL database and the SeaweedFS cluster."""
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
            )
            prepare(env)
            with portal_processes(env, tmp_path, count=2) as urls:
                yield Cluster(seaweed, urls, settings_of(env), bucket)
        finally:
            drop_pg_database(name)


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
    answer = client.post(
        f"/api/v1/advisories/{advisory}/attachments",
        files={"attachments": (f"bilaga-{index}.pdf", pdf, "application/pdf")},
    )
    outcome = Outcome(index, answer.status_code, time.monotonic() - started)
    if not answer.is_success:
        outcome.problem_type = answer.headers.get("content-type", "")
        return outcome
    (outcome.attachment_id,) = answer.json()["ids"]
    got = other.get(f"/api/v1/advisories/{advisory}/attachments/{outcome.attachment_id}")
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


def _run_with_kill(
    c: Cluster, clients: list[httpx.Client], advisories: list[str], pdfs: list[bytes]
) -> tuple[list[Outcome], float]:
    """Run every upload (WORKERS at a time); SIGKILL a volume server after KILL_AFTER finished.
    Returns the outcomes and how long the master took to drop the dead server."""
    outcomes: list[Outcome] = []
    noticed = -1.0
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
                killed_at = time.monotonic()
                c.seaweed.kill_volume(victim)
                noticed = _wait_until_dropped(c.seaweed, killed_at)
    refused = c.seaweed.refused_writes(victim)
    print(f"\ngateway log: {refused} refused writes to the killed volume server (retried)")
    return sorted(outcomes, key=lambda o: o.index), noticed


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


def test_two_instances_lose_nothing_when_a_volume_server_dies(cluster: Cluster) -> None:
    clients = [client_as(url, cluster.settings, HANNA) for url in cluster.urls]
    advisories = []
    for i in range(ADVISORIES):
        created = clients[i % 2].post(
            "/api/v1/advisories", json=body(valid_until=iso(timedelta(days=5)))
        )
        assert created.status_code == 201, created.text
        advisories.append(str(created.json()["id"]))
    pdfs = [_payload(i) for i in range(UPLOADS)]

    outcomes, noticed = _run_with_kill(cluster, clients, advisories, pdfs)

    ok = [o for o in outcomes if 200 <= o.status < 300]
    failed = [o for o in outcomes if o not in ok]
    latencies = sorted(o.seconds for o in outcomes)
    print(
        f"\n{len(ok)} uploads ok, {len(failed)} failed "
        f"({sorted({o.status for o in failed})}); dead server dropped after {noticed:.2f} s; "
        f"p50 {latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s; "
        f"downloads right after upload not ok: "
        f"{[o.download_status for o in ok if not o.download_ok]}"
    )
    assert len(cluster.seaweed.live_volume_servers()) == 2
    for o in failed:  # a failure is a clear answer, never a hang or a 500
        assert o.status == 503 and o.problem_type.startswith("application/problem+json"), o
    assert all(o.download_ok for o in ok), [o for o in ok if not o.download_ok]

    # Nothing lost: every 2xx upload is there, from both instances, byte for byte.
    for o in ok:
        for client in clients:
            advisory = advisories[o.index % ADVISORIES]
            got = client.get(f"/api/v1/advisories/{advisory}/attachments/{o.attachment_id}")
            assert got.status_code == 200, (o, got.status_code)
            assert _sha(got.content) == _sha(pdfs[o.index]), o

    # Nothing half-stored: rows are exactly the 2xx uploads and exactly the bucket's objects.
    rows = asyncio.run(_attachment_rows(cluster.settings.database_url))
    assert set(rows) == {uuid.UUID(str(o.attachment_id)).hex for o in ok}
    objects = _bucket_objects(cluster.seaweed, cluster.bucket)
    assert sorted(objects) == sorted(rows.values())
