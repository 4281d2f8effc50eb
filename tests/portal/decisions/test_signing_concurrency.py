"""Signing holds no lock or pooled connection while it talks to the TSA and the object store.

The object store is the real one (the portal's filesystem store) behind a wrapper whose `put`
stores for real and then waits on a threading event the test controls — a store that hangs
after taking the file, as S3 does at 03:00. While a completion waits there, the decision is
read (an audited read), the jour's night view lists it as awaiting signature, the reminder
job claims it with a conditional UPDATE and (PostgreSQL) its row can be locked at once with
NOWAIT; every one of these must finish while the completion is still blocked (bounded waits:
on a lock they would not finish until the test releases the store). Two completions racing
keep exactly one signature; the other's stored PDF is recorded as superseded.

The portal of the first test has ONE pooled connection (PostgreSQL; the `one_connection`
fixture): the reads get it only if the blocked completion gave its own back. The hanging store
and the bounded reads are in tests/portal/signing_helpers.py.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, text

from portal.db.base import utcnow
from portal.db.models import AuditEntry
from portal.decisions.models import Decision
from portal.decisions.service import remind_unsigned
from portal.pii import Vault
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import OLOF, draft_body, jour_client, roster_with_olof
from tests.portal.login import csrf_form, login, through_idp
from tests.portal.signing_helpers import WAIT, HangsAfterStoring, run_db, still_blocked


def _awaiting(portal: RunningPortal) -> str:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    return str(d["id"])


def _vault(portal: RunningPortal) -> Vault:
    s = portal.settings
    return Vault(s.keks, s.current_kek, s.blind_index_key)


def _started_signing(portal: RunningPortal, decision_id: str) -> tuple[httpx.Client, str]:
    """A session of the chair that has begun signing: the identity provider URL to go to."""
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    assert start.status_code == 303, start.text
    return olof, start.headers["location"]


def test_a_completion_blocked_in_the_store_blocks_no_one_else(
    one_connection: RunningPortal,
) -> None:
    portal = one_connection
    decision_id = _awaiting(portal)
    state = portal.app.state.portal
    real = state.object_store
    olof, authorize = _started_signing(portal, decision_id)
    jonna = jour_client(portal)
    hanging = HangsAfterStoring(real)
    state.object_store = hanging
    try:
        with ThreadPoolExecutor(1) as pool:
            completion = pool.submit(through_idp, olof, authorize, OLOF)
            assert hanging.entered.wait(WAIT), "the completion never reached the store"
            try:
                # An audited read of the decision and the jour's night view with it awaiting.
                read = jonna.get(f"/api/v1/decisions/{decision_id}", timeout=WAIT)
                assert read.status_code == 200 and read.json()["status"] == "awaiting_signature"
                night = jonna.get("/", timeout=WAIT)
                assert night.status_code == 200, night.text
                assert f'<a href="/decisions/{decision_id}">' in night.text
                still_blocked(completion)
                # The reminder job claims the decision's row with a conditional UPDATE.
                reminded = run_db(
                    portal,
                    lambda db: remind_unsigned(
                        db, _vault(portal), now=utcnow() + timedelta(days=2)
                    ),
                )
                assert reminded >= 1
                if portal.settings.database_url.startswith("postgresql"):
                    # No row lock on the decision.
                    locked = run_db(
                        portal,
                        lambda db: db.scalar(
                            text("SELECT id FROM decisions WHERE id = :id FOR UPDATE NOWAIT"),
                            {"id": uuid.UUID(decision_id)},
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
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "delivered"
    signed = olof.get(f"/decisions/{decision_id}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")


def test_two_completions_at_once_keep_one_signature_and_record_the_other(
    portal: RunningPortal,
) -> None:
    decision_id = _awaiting(portal)
    state = portal.app.state.portal
    real = state.object_store
    phone, to_phone = _started_signing(portal, decision_id)
    laptop, to_laptop = _started_signing(portal, decision_id)
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
        assert answer.headers["location"] == f"/decisions/{decision_id}/sign"
    assert len(racing.keys) == 2

    async def outcome(db: Any) -> tuple[Decision, list[AuditEntry]]:
        d = await db.get(Decision, uuid.UUID(decision_id))
        entries = await db.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_id == decision_id, AuditEntry.action.like("decision.sign%"))
            .order_by(AuditEntry.seq)
        )
        return d, list(entries)

    d, entries = run_db(portal, outcome)
    assert d.status == "delivered" and d.signed_object_id in racing.keys
    assert sorted(e.action for e in entries if e.outcome != "denied") == [
        "decision.sign",
        "decision.sign_superseded",
    ]
    (superseded,) = [e for e in entries if e.action == "decision.sign_superseded"]
    (loser,) = [k for k in racing.keys if k != d.signed_object_id]
    assert superseded.details["object_id"] == loser
    # The superseded PDF is still in the store (under retention), the signed one is served.
    assert asyncio.run(real.store.exists(loser))
    hanna_view = phone.get(f"/decisions/{decision_id}/signed.pdf")
    assert hanna_view.status_code == 200 and hanna_view.content.startswith(b"%PDF-")
