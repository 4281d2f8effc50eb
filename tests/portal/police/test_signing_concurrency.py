"""The chair's approval of a police request holds no lock or pooled connection while it talks
to the TSA and the object store (as a decision's signature:
tests/portal/decisions/test_signing_concurrency.py; the hanging store, the refusing store and
the `one_connection` fixture are shared: tests/portal/signing_helpers.py, tests/portal/conftest.py).

While a completion waits in a store that hangs after taking the file, the jour reads the
request (an audited read) and lists it as awaiting the chair, (PostgreSQL) its row can be
locked at once with NOWAIT, and the jour can revoke it; every one of these must finish while
the completion is still blocked (bounded waits: on a lock they would not finish until the test
releases the store). Two completions racing keep exactly one signature; the other's stored PDF
is recorded as superseded, as is the PDF of a completion whose request was revoked meanwhile.
An object store that fails answers 503, signs nothing, and the chair approves again.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select, text

from portal.db.models import AuditEntry
from portal.police.models import PoliceRequest, PoliceRequestEvent
from tests.portal.advisories.helpers import JONNA, OLOF
from tests.portal.conftest import RunningPortal
from tests.portal.login import csrf_form, login, through_idp
from tests.portal.police.helpers import awaiting_chair
from tests.portal.sessions import client_as
from tests.portal.signing_helpers import WAIT, HangsAfterStoring, Refuses, run_db, still_blocked


def _started(portal: RunningPortal, rid: str) -> tuple[httpx.Client, str]:
    """A session of the chair that has begun approving: the identity provider URL to go to."""
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    assert start.status_code == 303, start.text
    return olof, start.headers["location"]


def _outcome(
    portal: RunningPortal, rid: str
) -> tuple[PoliceRequest, list[AuditEntry], list[PoliceRequestEvent]]:
    async def read(db: Any) -> tuple[PoliceRequest, list[AuditEntry], list[PoliceRequestEvent]]:
        r = await db.get(PoliceRequest, uuid.UUID(rid))
        entries = await db.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_id == rid, AuditEntry.action.like("police_request.approve%"))
            .order_by(AuditEntry.seq)
        )
        events = await db.scalars(
            select(PoliceRequestEvent).where(PoliceRequestEvent.request_id == uuid.UUID(rid))
        )
        return r, list(entries), list(events)

    return run_db(portal, read)


def test_a_completion_blocked_in_the_store_blocks_no_one_else(
    one_connection: RunningPortal,
) -> None:
    portal = one_connection
    rid = awaiting_chair(portal)
    state = portal.app.state.portal
    real = state.object_store
    olof, authorize = _started(portal, rid)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hanging = HangsAfterStoring(real)
    state.object_store = hanging
    try:
        with ThreadPoolExecutor(1) as pool:
            completion = pool.submit(through_idp, olof, authorize, OLOF)
            assert hanging.entered.wait(WAIT), "the completion never reached the store"
            try:
                read = jonna.get(f"/api/v1/police-requests/{rid}", timeout=WAIT)
                assert read.status_code == 200, read.text
                assert read.json()["request"]["status"] == "awaiting_chair"
                listed = jonna.get("/api/v1/police-requests", timeout=WAIT)
                assert listed.status_code == 200 and rid in listed.text
                still_blocked(completion)
                if portal.settings.database_url.startswith("postgresql"):
                    locked = run_db(
                        portal,
                        lambda db: db.scalar(
                            text("SELECT id FROM police_requests WHERE id = :id FOR UPDATE NOWAIT"),
                            {"id": uuid.UUID(rid)},
                        ),
                    )
                    assert locked is not None
                still_blocked(completion)
            finally:
                hanging.go.set()
            done = completion.result(timeout=WAIT)
    finally:
        state.object_store = real
    assert done.status_code in (302, 303), done.text
    assert done.headers["location"] == f"/police-requests/{rid}?saved=1"
    r, entries, events = _outcome(portal, rid)
    assert r.status == "signed" and r.signed_object_id == hanging.keys[0]
    assert [(e.action, e.outcome) for e in entries] == [("police_request.approve", "ok")]
    assert [e.status for e in events].count("signed") == 1
    signed = jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")


def test_revoking_while_the_chair_s_completion_stores_wins_and_records_its_pdf(
    portal: RunningPortal,
) -> None:
    rid = awaiting_chair(portal)
    state = portal.app.state.portal
    real = state.object_store
    olof, authorize = _started(portal, rid)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hanging = HangsAfterStoring(real)
    state.object_store = hanging
    try:
        with ThreadPoolExecutor(1) as pool:
            completion = pool.submit(through_idp, olof, authorize, OLOF)
            assert hanging.entered.wait(WAIT), "the completion never reached the store"
            try:
                # The jour's revocation locks the row: it must not wait for the completion.
                revoked = jonna.post(
                    f"/api/v1/police-requests/{rid}/status",
                    json={"status": "revoked"},
                    timeout=WAIT,
                )
                assert revoked.status_code == 200, revoked.text
                still_blocked(completion)
            finally:
                hanging.go.set()
            late = completion.result(timeout=WAIT)
    finally:
        state.object_store = real
    assert late.status_code == 409 and "väntar inte på ordförandens beslut" in late.text
    r, entries, events = _outcome(portal, rid)
    assert r.status == "revoked" and r.signed_object_id is None and r.signed_at is None
    assert "signed" not in [e.status for e in events]
    (superseded,) = [e for e in entries if e.action == "police_request.approve_superseded"]
    assert superseded.details["object_id"] == hanging.keys[0]
    assert not [e for e in entries if e.action == "police_request.approve" and e.outcome == "ok"]
    assert asyncio.run(real.store.exists(hanging.keys[0]))  # kept under retention
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").status_code == 404


def test_two_completions_at_once_keep_one_signature_and_record_the_other(
    portal: RunningPortal,
) -> None:
    rid = awaiting_chair(portal)
    state = portal.app.state.portal
    real = state.object_store
    phone, to_phone = _started(portal, rid)
    laptop, to_laptop = _started(portal, rid)
    racing = HangsAfterStoring(real, together=2)  # both have stored before either delivers
    racing.go.set()
    state.object_store = racing
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = [
                pool.submit(through_idp, client, url, OLOF)
                for client, url in ((phone, to_phone), (laptop, to_laptop))
            ]
            done = [a.result(timeout=2 * WAIT) for a in answers]
    finally:
        state.object_store = real
    for answer in done:
        assert answer.status_code in (302, 303), answer.text
        assert answer.headers["location"] == f"/police-requests/{rid}?saved=1"
    assert len(racing.keys) == 2
    r, entries, events = _outcome(portal, rid)
    assert r.status == "signed" and r.signed_object_id in racing.keys
    assert sorted(e.action for e in entries if e.outcome != "denied") == [
        "police_request.approve",
        "police_request.approve_superseded",
    ]
    assert [e.status for e in events].count("signed") == 1
    (superseded,) = [e for e in entries if e.action == "police_request.approve_superseded"]
    (loser,) = [k for k in racing.keys if k != r.signed_object_id]
    assert superseded.details["object_id"] == loser
    assert asyncio.run(real.store.exists(loser))
    signed = client_as(portal.url, portal.settings, JONNA).get(
        f"/api/v1/police-requests/{rid}/signed.pdf"
    )
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")


def test_a_failing_store_answers_503_signs_nothing_and_the_chair_approves_again(
    portal: RunningPortal,
) -> None:
    rid = awaiting_chair(portal)
    state = portal.app.state.portal
    real = state.object_store
    olof, authorize = _started(portal, rid)
    state.object_store = Refuses(real)
    try:
        failed = through_idp(olof, authorize, OLOF)
    finally:
        state.object_store = real
    assert failed.status_code == 503 and "kunde inte sparas" in failed.text, failed.text
    r, entries, _ = _outcome(portal, rid)
    assert r.status == "awaiting_chair" and r.signed_object_id is None
    assert not [e for e in entries if e.outcome == "ok"]
    again = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    ok = through_idp(olof, again.headers["location"], OLOF)
    assert ok.headers["location"] == f"/police-requests/{rid}?saved=1", ok.text
    r, entries, _ = _outcome(portal, rid)
    assert r.status == "signed"
    assert [e.action for e in entries if e.outcome == "ok"] == ["police_request.approve"]
