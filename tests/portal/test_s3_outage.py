"""An S3 outage must not degrade what doesn't use S3 (issue 12 item 6).

Real PostgreSQL, a real SeaweedFS of the test's own (frozen with SIGSTOP, always resumed in a
`finally`) and a portal with ONE pooled database connection
(`db_pool_size=1`, `db_max_overflow=0`) and short S3 limits. While an upload or download hangs
on the frozen store:

(a) pages and API calls that never touch S3 answer quickly (the hanging request holds no
    pooled connection);
(b) other users change the same advisory or report (no row lock held);
(c) the hanging request ends in 503 (StorageUnavailable) within about
    `s3_max_attempts × (connect + read timeout)`, with no row and no object;

and after S3 resumes an upload works. A request waiting on the frozen server is detected by
its bytes sitting unread in the server's socket (/proc/net/tcp), not by sleeping.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.settings import Settings
from tests.portal.advisories.helpers import HANNA, JONNA, body, pdf_bytes
from tests.portal.conftest import RunningPortal, running_portal
from tests.portal.reports.helpers import BARN, report_payload, unit_ids
from tests.portal.sessions import client_as
from tests.servers.seaweedfs import SeaweedFS, seaweedfs

pytestmark = pytest.mark.postgres

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 6.0
ATTEMPTS = 2
BOUND = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT)
"""How long a request may hang on a frozen S3 before it must have failed (seconds)."""
SLACK = 6.0
"""Allowance on top of BOUND for a loaded 2-core machine (thread hops, pyHanko file checks)."""
FAST = 4.0
"""A request that doesn't touch S3 answers within this (~0.05-0.5 s here); one that waits for
the pool's only connection takes at least db_pool_timeout_seconds (5 s) or the S3 bound."""


@pytest.fixture
def weed() -> Iterator[SeaweedFS]:
    """A SeaweedFS of this test's own: the test freezes or kills it."""
    with seaweedfs() as server:
        yield server


@pytest.fixture
def outage_portal(pg_url: str, tmp_path: Path, weed: SeaweedFS) -> Iterator[RunningPortal]:
    """The portal on S3 with one pooled connection and short S3 timeouts."""
    with running_portal(
        tmp_path,
        pg_url,
        storage_backend="s3",
        s3_endpoint=weed.endpoint,
        s3_access_key=weed.access_key,
        s3_secret_key=weed.secret_key,
        s3_bucket=f"jp-{uuid.uuid4().hex[:12]}",
        s3_secure=False,
        s3_connect_timeout_seconds=CONNECT_TIMEOUT,
        s3_read_timeout_seconds=READ_TIMEOUT,
        s3_max_attempts=ATTEMPTS,
        db_pool_size=1,
        db_max_overflow=0,
        run_periodic_jobs=False,
    ) as portal:
        _until(lambda: _bucket_ready(weed, portal.settings), 30.0, "the bucket was not created")
        yield portal


# -- helpers ----------------------------------------------------------------------------------


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.02)


def _bucket_ready(weed: SeaweedFS, settings: Settings) -> bool:
    try:
        return weed.client().bucket_exists(settings.s3_bucket)
    except Exception:
        return False


def _s3_request_pending(weed: SeaweedFS) -> bool:
    """A request sits unread in a socket of the (frozen) S3 server: someone waits on it."""
    port = int(weed.endpoint.rsplit(":", 1)[1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        established = state == "01"
        if established and int(local.split(":")[1], 16) == port and int(queues[9:], 16) > 0:
            return True
    return False


class Frozen:
    """SIGSTOP the server on entry, SIGCONT on exit (always), then wait until it answers."""

    def __init__(self, weed: SeaweedFS) -> None:
        self.weed = weed

    def __enter__(self) -> Frozen:
        os.kill(self.weed.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.weed.pid, signal.SIGCONT)
        _until(lambda: _answers(self.weed), 30.0, "S3 did not come back after SIGCONT")


def _answers(weed: SeaweedFS) -> bool:
    try:
        weed.client().list_buckets()
        return True
    except Exception:
        return False


def _attachment_objects(weed: SeaweedFS, settings: Settings) -> list[str]:
    listing = weed.client().list_objects(settings.s3_bucket, prefix="attachments/", recursive=True)
    return [o.object_name or "" for o in listing]


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def _fast(
    during: Future[Any], call: Callable[[], httpx.Response], ok: tuple[int, ...] = (200, 201)
) -> None:
    """`call` starts while the `during` request still hangs on S3, and answers quickly."""
    assert not during.done(), "the hanging request ended before this check started"
    response, took = _timed(call)
    assert response.status_code in ok, response.text
    assert took < FAST, f"took {took:.1f} s while S3 hangs"


def _in_background(pool: ThreadPoolExecutor, call: Callable[[], httpx.Response]) -> Future[Any]:
    return pool.submit(_timed, call)


def _hanging(weed: SeaweedFS, pending: Future[Any]) -> None:
    """Wait until the background request waits on the frozen S3 (and hasn't finished)."""
    _until(lambda: _s3_request_pending(weed) or pending.done(), 30.0, "no request reached S3")
    assert not pending.done(), pending.result()[0].text


def _ended_in_503(pending: Future[Any]) -> httpx.Response:
    response, took = pending.result(timeout=BOUND + SLACK + 30)
    assert response.status_code == 503, response.text
    if response.headers["content-type"].startswith("application/"):
        assert response.json()["title"] == "Fillagringen svarar inte"
    assert response.headers["Retry-After"].isdigit()
    assert took < BOUND + SLACK, f"the request hung {took:.1f} s (bound {BOUND} s)"
    return response


def _pdf_file(name: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("attachments", (name, pdf_bytes(name), "application/pdf"))]


def _advisory(portal: RunningPortal) -> str:
    hanna = client_as(portal.url, portal.settings, HANNA)
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    created = hanna.post("/api/v1/advisories", json=body(valid_until=until))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# -- advisories -------------------------------------------------------------------------------


def test_frozen_s3_upload_to_an_advisory_holds_no_connection_or_lock(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    portal = outage_portal
    aid = _advisory(portal)
    uploader = client_as(portal.url, portal.settings, HANNA)
    hanna = client_as(portal.url, portal.settings, HANNA)  # another session of the same unit
    jonna = client_as(portal.url, portal.settings, JONNA)
    with ThreadPoolExecutor(1) as pool:
        with Frozen(weed):
            upload = _in_background(
                pool,
                lambda: uploader.post(
                    f"/api/v1/advisories/{aid}/attachments", files=_pdf_file("plan.pdf")
                ),
            )
            _hanging(weed, upload)
            # (a) what never touches S3 answers quickly: the API, a page, an audited read
            _fast(upload, lambda: jonna.get("/api/v1/advisories"))
            _fast(upload, lambda: jonna.get("/jour/advisories"))
            _fast(upload, lambda: jonna.get(f"/api/v1/advisories/{aid}"))
            # (b) the same advisory changes while its upload hangs: no row lock held
            _fast(
                upload,
                lambda: hanna.post(f"/api/v1/advisories/{aid}/reconfirm", json={"base_version": 1}),
            )
            _fast(
                upload,
                lambda: jonna.post(f"/api/v1/advisories/{aid}/acknowledge", json={"version": 2}),
            )
            # (c) the upload fails within the bound, nothing recorded
            _ended_in_503(upload)
        assert jonna.get(f"/api/v1/advisories/{aid}").json()["attachments"] == []
        assert _attachment_objects(weed, portal.settings) == []

    again = uploader.post(f"/api/v1/advisories/{aid}/attachments", files=_pdf_file("plan.pdf"))
    assert again.status_code == 201, again.text
    (attachment,) = jonna.get(f"/api/v1/advisories/{aid}").json()["attachments"]
    assert attachment["id"] == again.json()["ids"][0]
    assert len(_attachment_objects(weed, portal.settings)) == 1


def test_frozen_s3_new_advisory_with_a_file_blocks_nothing(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    """Posting an advisory with a file (the form) while S3 hangs: no advisory, nothing blocked,
    and the form comes back filled in with what was typed (503, Retry-After).

    The audited read below needs the audit chain's head row, which a request that audits
    before it stores (the advisory's creation) would keep locked while S3 hangs.
    """
    portal = outage_portal
    existing = _advisory(portal)
    poster = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    form = {
        "_csrf_token": poster.cookies["csrftoken"],
        "subjects-0-personal_identity_number": "201103059893",
        "subjects-0-name": "Kalle Klient",
        "plan": "Plan",
        "legal_basis": "none",
        "contact_name": "Hanna",
        "contact_phone": "0650-190 00",
        "valid_until": (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
    }
    before = len(poster.get("/api/v1/advisories?view=sent").json())
    with ThreadPoolExecutor(1) as pool:
        with Frozen(weed):
            post = _in_background(
                pool,
                lambda: poster.post("/advisories/new", data=form, files=_pdf_file("plan.pdf")),
            )
            _hanging(weed, post)
            _fast(post, lambda: jonna.get(f"/api/v1/advisories/{existing}"))  # audited: chain head
            _fast(post, lambda: jonna.post(f"/api/v1/advisories/{existing}/acknowledge", json={}))
            page = _ended_in_503(post).text
        # What the handler typed comes back in the form (only the file must be chosen again)
        assert "fillagringen svarar inte. Ingenting har skickats." in page
        assert 'value="201103059893"' in page and 'value="Kalle Klient"' in page
        assert ">Plan</textarea>" in page and 'value="0650-190 00"' in page
        assert f'value="{form["valid_until"]}"' in page
        assert len(poster.get("/api/v1/advisories?view=sent").json()) == before
        assert _attachment_objects(weed, portal.settings) == []


def test_frozen_s3_download_holds_no_connection(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    portal = outage_portal
    aid = _advisory(portal)
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    content = pdf_bytes("plan.pdf")
    files = [("attachments", ("plan.pdf", content, "application/pdf"))]
    up = hanna.post(f"/api/v1/advisories/{aid}/attachments", files=files)
    assert up.status_code == 201, up.text
    (file_id,) = up.json()["ids"]
    reader = client_as(portal.url, portal.settings, JONNA)
    with ThreadPoolExecutor(1) as pool, Frozen(weed):
        download = _in_background(
            pool, lambda: reader.get(f"/api/v1/advisories/{aid}/attachments/{file_id}")
        )
        _hanging(weed, download)
        _fast(download, lambda: jonna.get("/jour/advisories"))
        _fast(
            download,
            lambda: hanna.post(f"/api/v1/advisories/{aid}/reconfirm", json={"base_version": 1}),
        )
        _ended_in_503(download)
    got = jonna.get(f"/api/v1/advisories/{aid}/attachments/{file_id}")
    assert got.status_code == 200 and got.content == content


# -- reports ----------------------------------------------------------------------------------


def test_frozen_s3_upload_to_a_report_holds_no_connection_or_lock(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    portal = outage_portal
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    jonna = client_as(portal.url, portal.settings, JONNA)
    uploader = client_as(portal.url, portal.settings, JONNA)
    hanna = client_as(portal.url, portal.settings, HANNA)
    rid = jonna.post("/api/v1/reports", json=report_payload(unit)).json()["id"]
    with ThreadPoolExecutor(1) as pool:
        with Frozen(weed):
            upload = _in_background(
                pool,
                lambda: uploader.post(
                    f"/api/v1/reports/{rid}/attachments", files=_pdf_file("underrattelse.pdf")
                ),
            )
            _hanging(weed, upload)
            _fast(upload, lambda: hanna.get("/api/v1/reports?box=inbox"))
            _fast(upload, lambda: hanna.get(f"/api/v1/reports/{rid}"))
            _fast(upload, lambda: hanna.post(f"/api/v1/reports/{rid}/acknowledge", json={}))
            _fast(
                upload,
                lambda: jonna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "Ringt."}),
            )
            _ended_in_503(upload)
        assert hanna.get(f"/api/v1/reports/{rid}").json()["attachments"] == []
        assert _attachment_objects(weed, portal.settings) == []
    again = uploader.post(f"/api/v1/reports/{rid}/attachments", files=_pdf_file("u.pdf"))
    assert again.status_code == 201, again.text
    assert len(hanna.get(f"/api/v1/reports/{rid}").json()["attachments"]) == 1
    assert len(_attachment_objects(weed, portal.settings)) == 1


# -- signing ----------------------------------------------------------------------------------


def test_frozen_s3_while_signing_answers_503_and_signing_again_works(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    """The signed PDF can't be stored: 503 in Swedish within the bound (was 500), nothing
    signed, the decision still awaits signature, and the chair signs once S3 is back.

    (That other requests are not held up meanwhile — no row lock, no pooled connection — is
    tested in tests/portal/decisions/test_signing_concurrency.py.)"""
    from tests.portal.decisions.helpers import OLOF, draft_body, jour_client, roster_with_olof
    from tests.portal.login import csrf_form, login, through_idp

    portal = outage_portal
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    with ThreadPoolExecutor(1) as pool, Frozen(weed):
        done = pool.submit(_timed, lambda: through_idp(olof, start.headers["location"], OLOF))
        response, took = done.result(timeout=BOUND + SLACK + 60)
    assert response.status_code == 503, response.text
    assert "kunde inte sparas just nu" in response.text
    assert took < BOUND + SLACK, f"signing hung {took:.1f} s (bound {BOUND} s)"
    assert jonna.get(f"/api/v1/decisions/{d['id']}").json()["status"] == "awaiting_signature"

    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    assert through_idp(olof, start.headers["location"], OLOF).status_code in (302, 303)
    assert jonna.get(f"/api/v1/decisions/{d['id']}").json()["status"] == "delivered"
    signed = olof.get(f"/decisions/{d['id']}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")


def test_frozen_s3_while_the_jour_signs_a_police_request_leaves_no_request(
    outage_portal: RunningPortal, weed: SeaweedFS
) -> None:
    """The jour's request under delegation, signed and then stuck storing its PDF: what doesn't
    touch S3 answers quickly meanwhile (the request holds no pooled connection), the request
    ends in 503 in Swedish within the bound, and no request, no event and no object is left
    (docs/signing.md); made again once S3 is back, it is signed."""
    from tests.portal.placements.helpers import register
    from tests.portal.police.helpers import org_id, request_body

    portal = outage_portal
    register(client_as(portal.url, portal.settings, HANNA))
    hud = org_id(portal, "Hudiksvall")
    maker = client_as(portal.url, portal.settings, JONNA)
    jonna = client_as(portal.url, portal.settings, JONNA)

    def police_objects() -> list[str]:
        listing = weed.client().list_objects(
            portal.settings.s3_bucket, prefix="police-requests/", recursive=True
        )
        return [o.object_name or "" for o in listing]

    with ThreadPoolExecutor(1) as pool:
        with Frozen(weed):
            making = _in_background(
                pool, lambda: maker.post("/api/v1/police-requests", json=request_body(hud))
            )
            _hanging(weed, making)
            _fast(making, lambda: jonna.get("/api/v1/police-requests"))
            _fast(
                making, lambda: jonna.post("/api/v1/police-requests/check", json=request_body(hud))
            )
            response, took = making.result(timeout=BOUND + SLACK + 30)
        assert response.status_code == 503, response.text
        assert response.json()["title"] == "Underskriften kunde inte slutföras"
        assert "kunde inte sparas just nu" in response.json()["detail"]
        assert response.headers["Retry-After"].isdigit()
        assert took < BOUND + SLACK, f"the request hung {took:.1f} s (bound {BOUND} s)"
        assert jonna.get("/api/v1/police-requests").json() == []
        assert police_objects() == []

    again = maker.post("/api/v1/police-requests", json=request_body(hud))
    assert again.status_code == 201 and again.json()["status"] == "signed", again.text
    assert len(police_objects()) == 1
    signed = jonna.get(f"/api/v1/police-requests/{again.json()['id']}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")
