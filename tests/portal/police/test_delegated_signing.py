"""The jour's own signing under delegation holds no transaction or pooled connection while it
talks to the TSA and the object store, and a failure on the way leaves no request behind.

The request is signed before it is recorded (docs/signing.md): its inputs are checked and its
document rendered in the request's transaction, which is then released; the PDF is signed and
stored with nothing open; the request goes in, already signed, in one short transaction.

- With ONE pooled connection (`one_connection`; PostgreSQL — SQLite has no pool, but there the
  old single transaction held the database's write lock), while the request waits on a TSA
  that has not answered, or in a store that hangs after taking the file, another session of
  the jour lists the requests (the new one is not there: nothing is recorded yet) and makes an
  audited legal-basis check; both must finish while the request is still blocked.
- A TSA that can't be reached or a store that refuses: 503 with the Swedish message (problem+json
  on the API; on the page, the form again with what was typed and its submission key), no
  request, no event, no `police_request.create` entry; the check's audit entry stays (the person
  was looked up). The form sent again as it came back goes through.
- A PDF stored for a request that was never recorded (the store took the file, then the answer
  was lost — as when the process dies between storing and recording) is a locked orphan that
  `jourpost storage sweep` reports; a recorded request's PDF is not an orphan.
- The happy path ends with a verifiable PAdES-B-LTA PDF in the jour worker's name, its two
  events and one audit entry.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from portal.db.base import utcnow
from portal.db.models import AuditEntry
from portal.police.models import PoliceRequest, PoliceRequestEvent
from portal.sweep import SweepReport, sweep
from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import HANNA, JONNA
from tests.portal.conftest import RunningPortal
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as
from tests.portal.signing_helpers import (
    WAIT,
    HangingTsa,
    HangsAfterStoring,
    Refuses,
    run_db,
    still_blocked,
)


def _ready(portal: RunningPortal) -> tuple[str, httpx.Client]:
    """Hudiksvall (the jour decides handräckning, the default), a boy placed under 3 § LVU
    there, and a session of Jonna at the jour."""
    register(client_as(portal.url, portal.settings, HANNA))
    return org_id(portal, "Hudiksvall"), client_as(portal.url, portal.settings, JONNA)


def _recorded(portal: RunningPortal) -> tuple[int, int, list[AuditEntry], list[AuditEntry]]:
    """Requests, events, the `police_request.create` and `police_request.check` entries."""

    async def read(db: Any) -> tuple[int, int, list[AuditEntry], list[AuditEntry]]:
        requests = await db.scalar(select(func.count()).select_from(PoliceRequest))
        events = await db.scalar(select(func.count()).select_from(PoliceRequestEvent))
        entries = list(
            await db.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["police_request.create", "police_request.check"]))
                .order_by(AuditEntry.seq)
            )
        )
        created = [e for e in entries if e.action == "police_request.create"]
        checks = [e for e in entries if e.action == "police_request.check"]
        return int(requests), int(events), created, checks

    return run_db(portal, read)


def _verified(portal: RunningPortal, jonna: httpx.Client, rid: str) -> dict[str, Any]:
    pdf = jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-"), pdf.text
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    report = asyncio.run(verify_pdf(pdf.content, trust_roots=[root])).to_json()
    assert report["valid"] is True, report
    [sig] = report["signatures"]
    assert sig["personal_identity_number"] == JONNA and sig["pades_level"] == "B-LTA"
    return dict(report)


@pytest.mark.parametrize("held_up_at", ["tsa", "store"])
def test_the_jour_s_signing_held_up_at_the_tsa_or_the_store_blocks_no_one_else(
    one_connection: RunningPortal, held_up_at: str
) -> None:
    portal = one_connection
    hud, jonna = _ready(portal)
    maker = client_as(portal.url, portal.settings, JONNA)  # the session making the request
    state = portal.app.state.portal
    real_store, real_signing = state.object_store, state.signing
    tsa = HangingTsa(real_signing.timestamp_url)
    store = HangsAfterStoring(real_store)
    held = tsa if held_up_at == "tsa" else store
    (store if held_up_at == "tsa" else tsa).go.set()  # only one of them holds the request up
    with tsa.serving():
        state.signing = replace(real_signing, timestamp_url=tsa.url)
        state.object_store = store
        try:
            with ThreadPoolExecutor(1) as pool:
                making = pool.submit(
                    maker.post, "/api/v1/police-requests", json=request_body(hud), timeout=WAIT
                )
                assert held.entered.wait(WAIT), f"the request never reached the {held_up_at}"
                try:
                    listed = jonna.get("/api/v1/police-requests", timeout=WAIT)
                    assert listed.status_code == 200 and listed.json() == [], listed.text
                    page = jonna.get("/police-requests", timeout=WAIT)
                    assert page.status_code == 200, page.text
                    # An audited person lookup: it needs a connection and the audit chain.
                    check = jonna.post(
                        "/api/v1/police-requests/check", json=request_body(hud), timeout=WAIT
                    )
                    assert check.status_code == 200 and check.json()["outcome"] == "allowed"
                    still_blocked(making)
                    requests, events, created, _ = _recorded(portal)
                    assert (requests, events, created) == (0, 0, [])  # nothing half-stored
                    still_blocked(making)
                finally:
                    held.go.set()
                made = making.result(timeout=WAIT)
        finally:
            state.object_store, state.signing = real_store, real_signing
    assert made.status_code == 201 and made.json()["status"] == "signed", made.text
    rid = made.json()["id"]
    _verified(portal, jonna, rid)

    async def read(db: Any) -> tuple[PoliceRequest, list[str]]:
        r = await db.get(PoliceRequest, uuid.UUID(rid))
        events = await db.scalars(
            select(PoliceRequestEvent.status)
            .where(PoliceRequestEvent.request_id == uuid.UUID(rid))
            .order_by(PoliceRequestEvent.at)
        )
        return r, list(events)

    r, events = run_db(portal, read)
    assert r.status == "signed" and r.signed_object_id == store.keys[0]
    assert r.signed_at is not None and r.signed_at >= r.created_at
    assert events == ["created", "signed"]
    _, _, [entry], checks = _recorded(portal)
    assert entry.outcome == "ok" and entry.object_id == rid
    assert entry.details["status"] == "signed" and entry.details["decided_by"] == "jour"
    assert entry.details["sha256"] == r.signed_sha256
    assert len(checks) == 2  # the request's own check and the lookup made meanwhile


@pytest.mark.parametrize("failing", ["tsa", "store"])
def test_a_failing_tsa_or_store_leaves_no_request_and_says_so(
    portal: RunningPortal, failing: str
) -> None:
    hud, jonna = _ready(portal)
    state = portal.app.state.portal
    real_store, real_signing = state.object_store, state.signing
    if failing == "tsa":
        state.signing = replace(real_signing, timestamp_url="http://127.0.0.1:9/tsa")
        message = "Tidsstämpel eller spärrkontroll kunde inte hämtas, så inget har skrivits under."
    else:
        state.object_store = Refuses(real_store)
        message = "Den underskrivna begäran kunde inte sparas just nu."
    try:
        api = jonna.post("/api/v1/police-requests", json=request_body(hud))
        form = {**request_body(hud), "_csrf_token": jonna.cookies["csrftoken"]}
        page = jonna.post("/police-requests/new", data=form)
    finally:
        state.object_store, state.signing = real_store, real_signing
    assert api.status_code == 503, api.text
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.json()["title"] == "Underskriften kunde inte slutföras"
    assert message in api.json()["detail"]
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert message in page.text and "Ingen begäran har skapats" in page.text
    # The form comes back as it was typed, to send again with one click.
    for field in ("personal_identity_number", "name", "destination", "police_station",
                  "contact_phone"):  # fmt: skip
        assert f'value="{form[field]}"' in page.text, field
    for field in ("whereabouts", "grounds"):
        assert f">{form[field]}</textarea>" in page.text, field
    assert f'<option value="{hud}" selected>' in page.text
    assert '<option value="lvu" selected>' in page.text
    assert '<option value="return" selected>' in page.text
    [key] = re.findall(r'name="submission_key" value="([0-9a-f]{32})"', page.text)
    requests, events, created, checks = _recorded(portal)
    assert (requests, events, created) == (0, 0, [])
    assert [c.outcome for c in checks] == ["ok", "ok"]  # the lookups stay on record

    # The form, sent again as it came back (its key too) once the service answers.
    again = jonna.post("/police-requests/new", data={**form, "submission_key": key})
    assert again.status_code == 303, again.text
    rid = again.headers["location"].removeprefix("/police-requests/").removesuffix("?saved=1")
    assert jonna.get(f"/api/v1/police-requests/{rid}").json()["request"]["status"] == "signed"
    _verified(portal, jonna, rid)
    requests, events, created, _ = _recorded(portal)
    assert (requests, events, len(created)) == (1, 2, 1)


def test_a_pdf_stored_for_a_request_never_recorded_is_a_locked_orphan_for_the_sweep(
    portal: RunningPortal,
) -> None:
    hud, jonna = _ready(portal)
    state = portal.app.state.portal
    real = state.object_store
    lost = Refuses(real, after=True)  # stores the PDF, then the answer is lost
    state.object_store = lost
    try:
        failed = jonna.post("/api/v1/police-requests", json=request_body(hud))
    finally:
        state.object_store = real
    assert failed.status_code == 503, failed.text
    (orphan,) = lost.keys
    assert asyncio.run(real.store.exists(orphan))
    requests, events, created, _ = _recorded(portal)
    assert (requests, events, created) == (0, 0, [])  # no request claims to be signed

    made = jonna.post("/api/v1/police-requests", json=request_body(hud))
    assert made.status_code == 201, made.text

    async def swept(db: Any) -> SweepReport:
        return await sweep(db, real.store, now=utcnow() + timedelta(days=2), dry_run=True)

    report = run_db(portal, swept)
    # The orphan is reported with its lock (ten years); the recorded request's PDF is named by
    # its row, so neither an orphan nor missing.
    assert [o.key for o in report.locked] == [orphan]
    assert report.removed == () and not report.alarm and report.rows == 1


def test_a_placement_gone_while_the_request_was_signed_is_a_conflict(
    portal: RunningPortal,
) -> None:
    """The request refers to the person's placement; the placement is deleted (say, culled)
    while the TSA holds the signing up: the insert is refused by its foreign key and the answer
    is 409 with a Swedish message, not a 500; no request is recorded, and the PDF stored for it
    is a locked orphan for the sweep."""
    hud, jonna = _ready(portal)
    state = portal.app.state.portal
    real_signing = state.signing
    tsa = HangingTsa(real_signing.timestamp_url)

    async def drop_placements(db: Any) -> None:
        await db.execute(text("DELETE FROM placement_versions"))
        await db.execute(text("DELETE FROM placements"))

    with tsa.serving():
        state.signing = replace(real_signing, timestamp_url=tsa.url)
        try:
            with ThreadPoolExecutor(1) as pool:
                making = pool.submit(
                    jonna.post, "/api/v1/police-requests", json=request_body(hud), timeout=WAIT
                )
                assert tsa.entered.wait(WAIT), "the request never reached the TSA"
                try:
                    run_db(portal, drop_placements)
                finally:
                    tsa.go.set()
                made = making.result(timeout=WAIT)
        finally:
            state.signing = real_signing
    assert made.status_code == 409, made.text
    assert made.headers["content-type"].startswith("application/problem+json")
    assert "ändrades medan den signerades" in made.json()["detail"]
    requests, events, created, _ = _recorded(portal)
    assert (requests, events, created) == (0, 0, [])
