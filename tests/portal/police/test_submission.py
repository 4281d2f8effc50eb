"""A police request sent twice is made once (docs/police-requests.md, "Sent twice").

The form carries a one-time submission key (a hidden field, new with each rendered form); the
API takes an `Idempotency-Key` header. Stored with the request under a unique index per
creating user, so:

- the same key again, after the first was recorded, answers with that request (the form: to
  its page; the API: 200 with the same body) and signs nothing;
- two submissions with the same key at once (a double click at 03:00 with a slow TSA; both
  have signed and stored before either records) make one request; the other is answered with
  it, its PDF audited as `police_request.create_superseded` and left, locked, to the sweep;
- different keys make different requests, and a key reused for another request is refused.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from portal.db.base import utcnow
from portal.db.models import AuditEntry
from portal.police.models import PoliceRequest
from portal.sweep import SweepReport, sweep
from tests.portal.advisories.helpers import ADA, ERIK, HANNA, JONNA
from tests.portal.conftest import RunningPortal
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as
from tests.portal.signing_helpers import WAIT, HangingTsa, HangsAfterStoring, run_db

_KEY = re.compile(r'name="submission_key" value="([0-9a-f]{32})"')


def _ready(portal: RunningPortal) -> tuple[str, httpx.Client]:
    register(client_as(portal.url, portal.settings, HANNA))
    return org_id(portal, "Hudiksvall"), client_as(portal.url, portal.settings, JONNA)


def _form_key(client: httpx.Client) -> str:
    """The submission key of a freshly rendered form."""
    page = client.get("/police-requests/new")
    assert page.status_code == 200, page.text
    keys = _KEY.findall(page.text)
    assert len(keys) == 1, page.text
    return str(keys[0])


def _form(client: httpx.Client, hud: str, key: str, **overrides: Any) -> dict[str, Any]:
    return {
        **request_body(hud, **overrides),
        "submission_key": key,
        "_csrf_token": client.cookies["csrftoken"],
    }


def _made(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/police-requests/") and location.endswith("?saved=1")
    return location.removeprefix("/police-requests/").removesuffix("?saved=1")


def _state(portal: RunningPortal) -> tuple[list[PoliceRequest], list[AuditEntry]]:
    """Every request, and the audit entries of making them (created, repeated, superseded)."""

    async def read(db: Any) -> tuple[list[PoliceRequest], list[AuditEntry]]:
        requests = list(await db.scalars(select(PoliceRequest).order_by(PoliceRequest.created_at)))
        entries = list(
            await db.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("police_request.create%"))
                .order_by(AuditEntry.seq)
            )
        )
        return requests, entries

    return run_db(portal, read)


def _actions(entries: list[AuditEntry]) -> list[str]:
    return [e.action for e in entries]


def test_the_same_form_sent_twice_makes_one_request(portal: RunningPortal) -> None:
    hud, jonna = _ready(portal)
    form = _form(jonna, hud, _form_key(jonna))
    first = _made(jonna.post("/police-requests/new", data=form))
    again = _made(jonna.post("/police-requests/new", data=form))
    assert again == first
    requests, entries = _state(portal)
    assert [str(r.id) for r in requests] == [first] and requests[0].status == "signed"
    assert _actions(entries) == ["police_request.create", "police_request.create_repeated"]
    assert all(e.object_id == first for e in entries)


def test_the_same_idempotency_key_twice_answers_the_first_request(portal: RunningPortal) -> None:
    hud, jonna = _ready(portal)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = jonna.post("/api/v1/police-requests", json=request_body(hud), headers=key)
    assert first.status_code == 201 and first.json()["status"] == "signed", first.text
    again = jonna.post("/api/v1/police-requests", json=request_body(hud), headers=key)
    assert again.status_code == 200 and again.json() == first.json(), again.text
    requests, entries = _state(portal)
    assert len(requests) == 1 and requests[0].submission_key == key["Idempotency-Key"]
    assert _actions(entries) == ["police_request.create", "police_request.create_repeated"]
    # A key is the caller's own: a colleague's request under the same key is a request of its own.
    erik = client_as(portal.url, portal.settings, ERIK)
    theirs = erik.post("/api/v1/police-requests", json=request_body(hud), headers=key)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"], theirs.text
    assert len(_state(portal)[0]) == 2


def test_different_keys_make_different_requests(portal: RunningPortal) -> None:
    hud, jonna = _ready(portal)
    one = _made(jonna.post("/police-requests/new", data=_form(jonna, hud, _form_key(jonna))))
    two = _made(jonna.post("/police-requests/new", data=_form(jonna, hud, _form_key(jonna))))
    api = [
        jonna.post(
            "/api/v1/police-requests",
            json=request_body(hud),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in api] == [201, 201], [a.text for a in api]
    ids = {one, two, *(a.json()["id"] for a in api)}
    assert len(ids) == 4
    requests, entries = _state(portal)
    assert {str(r.id) for r in requests} == ids
    assert _actions(entries) == ["police_request.create"] * 4


def test_a_key_reused_for_another_request_is_refused_and_makes_nothing(
    portal: RunningPortal,
) -> None:
    hud, jonna = _ready(portal)
    key = _form_key(jonna)
    first = _made(jonna.post("/police-requests/new", data=_form(jonna, hud, key)))
    # Back in the browser, another address typed, sent again: the old form's key.
    changed = _form(jonna, hud, key, whereabouts="Hos mormor på Kyrkogatan 1, Delsbo")
    page = jonna.post("/police-requests/new", data=changed)
    assert page.status_code == 422, page.text
    assert "Begäran har redan skickats en gång med andra uppgifter" in page.text
    assert "Hos mormor på Kyrkogatan 1, Delsbo" in page.text  # what was typed stays
    [fresh] = _KEY.findall(page.text)
    assert fresh != key  # sent again as it stands, it makes the new request
    second = _made(jonna.post("/police-requests/new", data={**changed, "submission_key": fresh}))
    assert second != first

    api_key = {"Idempotency-Key": "retry-" + uuid.uuid4().hex}
    made = jonna.post("/api/v1/police-requests", json=request_body(hud), headers=api_key)
    assert made.status_code == 201, made.text
    other = jonna.post(
        "/api/v1/police-requests", json=request_body(hud, grounds="Annat skäl."), headers=api_key
    )
    assert other.status_code == 422, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    assert "submission_key" in other.text
    bad = jonna.post(
        "/api/v1/police-requests", json=request_body(hud), headers={"Idempotency-Key": "kort"}
    )
    assert bad.status_code == 422 and "Idempotency-Key" in bad.text, bad.text
    requests, _ = _state(portal)
    assert len(requests) == 3


@pytest.mark.parametrize("via", ["form", "api"])
def test_two_submissions_with_the_same_key_at_once_make_one_request(
    portal: RunningPortal, via: str
) -> None:
    """Both are held at the TSA until both have asked it, and in the store until both have
    stored their signed PDF: neither is recorded before the other has signed."""
    hud, jonna = _ready(portal)
    other_tab = client_as(portal.url, portal.settings, JONNA)  # a second session, same worker
    state = portal.app.state.portal
    real_store, real_signing = state.object_store, state.signing
    tsa = HangingTsa(real_signing.timestamp_url)
    racing = HangsAfterStoring(real_store, together=2)
    racing.go.set()  # the barrier alone holds them: both have stored before either records
    key = _form_key(jonna)

    def send(client: httpx.Client) -> httpx.Response:
        if via == "form":
            return client.post("/police-requests/new", data=_form(client, hud, key), timeout=WAIT)
        return client.post(
            "/api/v1/police-requests",
            json=request_body(hud),
            headers={"Idempotency-Key": key},
            timeout=WAIT,
        )

    with tsa.serving():
        state.signing = replace(real_signing, timestamp_url=tsa.url)
        state.object_store = racing
        try:
            with ThreadPoolExecutor(2) as pool:
                answers = [pool.submit(send, c) for c in (jonna, other_tab)]
                assert tsa.entered.wait(WAIT), "no submission reached the TSA"
                tsa.go.set()
                done = [a.result(timeout=2 * WAIT) for a in answers]
        finally:
            state.object_store, state.signing = real_store, real_signing
    assert len(racing.keys) == 2  # both signed and stored
    requests, entries = _state(portal)
    [r] = requests
    if via == "form":
        assert [_made(d) for d in done] == [str(r.id), str(r.id)]
    else:
        assert sorted(d.status_code for d in done) == [200, 201], [d.text for d in done]
        assert [d.json() for d in done] == [{"id": str(r.id), "status": "signed"}] * 2
    assert r.signed_object_id in racing.keys
    assert sorted(_actions(entries)) == [
        "police_request.create",
        "police_request.create_superseded",
    ]
    [superseded] = [e for e in entries if e.action == "police_request.create_superseded"]
    [loser] = [k for k in racing.keys if k != r.signed_object_id]
    assert superseded.object_id == str(r.id) and superseded.details["object_id"] == loser
    assert asyncio.run(real_store.store.exists(loser))  # kept under its retention

    async def swept(db: Any) -> SweepReport:
        return await sweep(db, real_store.store, now=utcnow() + timedelta(days=2), dry_run=True)

    report = run_db(portal, swept)
    assert [o.key for o in report.locked] == [loser]  # the sweep reports it; the row names one
    assert report.rows == 1 and not report.alarm
    pdf = jonna.get(f"/api/v1/police-requests/{r.id}/signed.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


def test_a_request_awaiting_the_chair_sent_twice_is_made_once(portal: RunningPortal) -> None:
    hud, jonna = _ready(portal)
    admin = client_as(portal.url, portal.settings, ADA)
    changed = admin.put(f"/api/v1/delegation/{hud}", json={"rules": {"handrackning_lvu": "chair"}})
    assert changed.status_code == 200, changed.text
    key = {"Idempotency-Key": uuid.uuid4().hex}
    answers = [
        jonna.post("/api/v1/police-requests", json=request_body(hud), headers=key) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 200], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["status"] == "awaiting_chair"

    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(PoliceRequest)))

    assert run_db(portal, count) == 1
