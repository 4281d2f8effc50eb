"""/metrics: Prometheus text behind a bearer token, each family measured on a running portal.

Families: requests by method/route template/status and their duration; the outbox backlog and
the age of its oldest mail (read at scrape time); periodic job runs, failures and last success;
signature completions tried, succeeded and failed; object-store errors by operation. Labels
never carry ids or personal data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal import jobs
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.notify.models import OutboxMail
from tests.conftest import make_settings
from tests.portal.conftest import RunningPortal, prepare_database
from tests.portal.decisions.helpers import (
    EVA,
    OLOF,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.login import csrf_form, login, through_idp
from tests.servers.portal import serve
from tests.servers.seaweedfs import SeaweedFS

TOKEN = "skrapnyckel-" + "x" * 24
PNR = "191212121212"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metered(database_url: str, tmp_path: Path) -> Iterator[RunningPortal]:
    """The demo portal with a metrics token."""
    from portal.app import create_app

    holder: dict[str, Any] = {}

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path, database_url, public_url=f"http://127.0.0.1:{port}", metrics_token=TOKEN
        )
        asyncio.run(prepare_database(settings))
        holder["settings"], holder["app"] = settings, create_app(settings)
        return holder["app"]

    with serve(factory) as url:
        yield RunningPortal(url, holder["settings"], holder["app"])


def scrape(portal: RunningPortal) -> tuple[str, Samples]:
    """The exposition text and its samples by (name, sorted labels)."""
    answer = httpx.get(f"{portal.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(portal: RunningPortal, check: Any, timeout: float = 30.0) -> Samples:
    """Scrape until `check(samples)` holds (request metrics are recorded after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(portal)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, "the metrics never reached the expected values"
        time.sleep(0.05)


def test_metrics_answer_404_when_no_token_is_configured(portal: RunningPortal) -> None:
    assert httpx.get(f"{portal.url}/metrics").status_code == 404
    assert (
        httpx.get(f"{portal.url}/metrics", headers={"Authorization": "Bearer x"}).status_code == 404
    )
    schema = httpx.get(f"{portal.url}/schema/openapi.json").json()
    assert not any("metrics" in path for path in schema["paths"])


def test_metrics_need_the_bearer_token_and_no_session(metered: RunningPortal) -> None:
    url = f"{metered.url}/metrics"
    for headers in (
        {},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "jourpost_" not in refused.text
    ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in ok.headers or "jp_session" not in ok.headers["set-cookie"]
    schema = httpx.get(f"{metered.url}/schema/openapi.json").json()
    assert not any("metrics" in path for path in schema["paths"])


def test_requests_are_counted_by_route_template_without_ids_or_personal_data(
    metered: RunningPortal,
) -> None:
    record = uuid.uuid4()
    assert httpx.get(f"{metered.url}/advisories/{record}?personnummer={PNR}").status_code in (
        302, 303, 401, 404,
    )  # fmt: skip
    assert httpx.get(f"{metered.url}/{PNR}/Tolvan").status_code == 404
    assert httpx.get(f"{metered.url}/healthz").status_code == 200
    samples = eventually(
        metered,
        lambda s: value(s, "jourpost_http_requests_total", method="GET", route="/healthz",
                        status="200") >= 1
        and value(s, "jourpost_http_requests_total", method="GET", route="<unmatched>",
                  status="404") >= 1,
    )  # fmt: skip
    advisory = [
        key for key in samples
        if key[0] == "jourpost_http_requests_total"
        and ("route", "/advisories/{advisory_id}") in key[1]
    ]  # fmt: skip
    assert len(advisory) == 1
    assert (
        value(
            samples, "jourpost_http_request_duration_seconds_count", method="GET", route="/healthz"
        )
        >= 1
    )
    text, _ = scrape(metered)
    for secret in (str(record), PNR, "Tolvan", "personnummer"):
        assert secret not in text, secret


async def _add_outbox(url: str) -> None:
    engine = make_engine(url)
    try:
        now = utcnow()
        async with make_sessionmaker(engine)() as db, db.begin():
            for age, sent in ((timedelta(hours=2), False), (timedelta(minutes=10), False),
                              (timedelta(hours=5), True)):  # fmt: skip
                db.add(
                    OutboxMail(
                        to_addr="socialjouren@gavle.kommun.example",
                        template="new_report",
                        link_path="/reports/x",
                        created_at=now - age,
                        next_attempt_at=now + timedelta(hours=1),
                        sent_at=now if sent else None,
                    )
                )
    finally:
        await engine.dispose()


def test_outbox_backlog_and_oldest_age_are_read_at_scrape_time(metered: RunningPortal) -> None:
    _, before = scrape(metered)
    pending = value(before, "jourpost_outbox_pending")
    asyncio.run(_add_outbox(metered.settings.database_url))
    _, after = scrape(metered)
    assert value(after, "jourpost_outbox_pending") == pending + 2  # the sent one doesn't count
    age = value(after, "jourpost_outbox_oldest_pending_age_seconds")
    assert 2 * 3600 - 5 <= age < 5 * 3600


def test_periodic_job_runs_and_last_success_are_counted(metered: RunningPortal) -> None:
    started = time.time()
    samples = eventually(
        metered,
        lambda s: all(value(s, "jourpost_job_runs_total", job=j) == 1 for j in jobs.JOB_NAMES)
        and all(value(s, "jourpost_job_last_success_timestamp_seconds", job=j) > 0
                for j in jobs.JOB_NAMES),
    )  # fmt: skip
    for job in jobs.JOB_NAMES:
        assert value(samples, "jourpost_job_failures_total", job=job) == 0
        last = value(samples, "jourpost_job_last_success_timestamp_seconds", job=job)
        assert started - 120 < last <= time.time()


def test_signing_attempts_successes_and_failures_are_counted(metered: RunningPortal) -> None:
    known = roster_with_olof(metered)
    jonna = jour_client(metered)
    decision = jonna.post("/api/v1/decisions", json=draft_body(known)).json()["id"]
    assert jonna.post(f"/api/v1/decisions/{decision}/submit").status_code == 200
    olof, _ = login(metered.url, OLOF)
    start = olof.post(f"/decisions/{decision}/sign", data=csrf_form(olof))
    assert through_idp(olof, start.headers["location"], EVA).status_code == 403  # wrong person
    retry = olof.post(f"/decisions/{decision}/sign", data=csrf_form(olof))
    done = through_idp(olof, retry.headers["location"], OLOF)
    assert done.headers["location"] == f"/decisions/{decision}/sign"
    _, samples = scrape(metered)
    assert value(samples, "jourpost_signing_attempts_total") == 2
    assert value(samples, "jourpost_signing_failures_total") == 1
    assert value(samples, "jourpost_signing_successes_total") == 1


def test_the_jour_s_own_signing_of_a_police_request_is_counted(metered: RunningPortal) -> None:
    """Under delegation the jour worker signs the request as they make it: counted as the
    chair's completions are. A failing TSA is a failed attempt; a repeat of the same
    submission (Idempotency-Key) signs nothing and is not counted."""
    from dataclasses import replace

    from tests.portal.advisories.helpers import HANNA, JONNA
    from tests.portal.placements.helpers import register
    from tests.portal.police.helpers import org_id, request_body
    from tests.portal.sessions import client_as

    register(client_as(metered.url, metered.settings, HANNA))
    hud = org_id(metered, "Hudiksvall")
    jonna = client_as(metered.url, metered.settings, JONNA)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    made = jonna.post("/api/v1/police-requests", json=request_body(hud), headers=key)
    assert made.status_code == 201 and made.json()["status"] == "signed", made.text
    again = jonna.post("/api/v1/police-requests", json=request_body(hud), headers=key)
    assert again.status_code == 200, again.text
    state = metered.app.state.portal
    real = state.signing
    state.signing = replace(real, timestamp_url="http://127.0.0.1:9/tsa")
    try:
        form = {**request_body(hud), "_csrf_token": jonna.cookies["csrftoken"]}
        failed = jonna.post("/police-requests/new", data=form)
    finally:
        state.signing = real
    assert failed.status_code == 503, failed.text
    _, samples = scrape(metered)
    assert value(samples, "jourpost_signing_attempts_total") == 2
    assert value(samples, "jourpost_signing_successes_total") == 1
    assert value(samples, "jourpost_signing_failures_total") == 1


def test_object_store_errors_are_counted_by_operation(metered: RunningPortal) -> None:
    _, before = scrape(metered)
    assert value(before, "jourpost_object_store_errors_total", operation="ping") == 0
    break_store_root(metered.settings.object_root / "objects")
    ready = httpx.get(f"{metered.url}/readyz").json()  # the probe pings the store
    assert ready["status"] != "ok"
    _, after = scrape(metered)
    assert value(after, "jourpost_object_store_errors_total", operation="ping") >= 1


def break_store_root(objects: Path) -> None:
    """Put a file where the store's object directory is. The portal's jobs keep running
    (the audit anchor writes an object), so a put may recreate the directory between the
    removal and the write: a file is renamed into place, which fails on a directory."""
    broken = objects.with_name("objects.broken")
    broken.write_bytes(b"not a directory")
    for _ in range(100):
        shutil.rmtree(objects, ignore_errors=True)
        try:
            os.rename(broken, objects)
        except OSError:  # a job made the directory again in between
            continue
        return
    raise AssertionError("the object directory kept coming back")


def test_the_portal_s_filesystem_store_keeps_its_file_path(metered: RunningPortal) -> None:
    """The error-counting wrapper must not hide the filesystem store's file methods: without
    them every upload and download would take the slower streamed path."""
    from storage.protocol import file_store

    files = metered.app.state.portal.object_store
    assert file_store(files.store) is files.store


async def test_file_path_failures_are_counted_as_put_and_get(tmp_path: Path) -> None:
    from portal.metrics import Metrics, instrumented
    from storage import FilesystemStore
    from storage.errors import ObjectNotFound
    from storage.protocol import file_store, reader_store

    metrics = Metrics()
    store = instrumented(FilesystemStore(tmp_path), metrics)

    async def broken_fill(file: Any) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await store.put_file("attachments/x", broken_fill)
    with pytest.raises(ObjectNotFound):  # an answer, not a failure
        await store.open_file("attachments/missing")
    (tmp_path / "objects" / "attachments" / "dir").mkdir(parents=True)
    with pytest.raises(ObjectNotFound):
        await store.open_file("attachments/dir")
    with pytest.raises(ObjectNotFound):
        await store.open_reader("attachments/missing")
    # Downloads read through the wrapper's reader, which counts a read failing after the open.
    assert file_store(store) is store and reader_store(store) is store
    counted = {op: metrics.store_errors.labels(op)._value.get() for op in ("put", "get")}
    assert counted == {"put": 1, "get": 0}


async def test_s3_reads_failing_mid_download_are_counted_as_get(
    seaweed: SeaweedFS, tmp_path: Path
) -> None:
    """The wrapper keeps the S3 store's `open_reader` (the segment-by-segment download) and
    counts a read that fails after the object was opened, as `get` counted it."""
    from portal.metrics import Metrics, instrumented
    from storage import BackendUnavailable, EncryptedObjectStore, Keyring, S3Store
    from storage.protocol import reader_store
    from tests.servers.faulty_proxy import FaultyProxy
    from tests.storage.helpers import chunks, collect, random_bytes, s3_store

    direct = s3_store(seaweed, tmp_path)
    await direct.ensure_bucket()
    keyring = Keyring.from_base64({"k1": Keyring.generate_key()}, "k1")
    data = random_bytes(3 << 20)
    stored = await EncryptedObjectStore(direct, keyring).put("attachments/x", chunks(data))
    host, port = seaweed.endpoint.rsplit(":", 1)
    with FaultyProxy((host, int(port))) as proxy:
        metrics = Metrics()
        store = instrumented(
            S3Store.connect(
                proxy.endpoint,
                seaweed.access_key,
                seaweed.secret_key,
                direct.bucket,
                secure=False,
                region="us-east-1",
                read_timeout=1.0,
                max_attempts=1,
            ),
            metrics,
        )
        assert reader_store(store) is store
        encrypted = EncryptedObjectStore(store, keyring)
        assert await collect(encrypted.get(stored)) == data
        proxy.arm("cut", after=(3 << 20) // 2)
        with pytest.raises(BackendUnavailable):
            await collect(encrypted.get(stored))
    assert metrics.store_errors.labels("get")._value.get() == 1
