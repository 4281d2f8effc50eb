"""Shift handover notes over HTTP: written by the outgoing shift, shown on the next shift's
start page, acknowledged by each incoming colleague; only the jour's own staff see them."""

from __future__ import annotations

import uuid

from tests.portal.advisories.helpers import (
    ERIK,
    HANNA,
    JONNA,
    OTHER_JOUR_STAFF,
    add_second_jour,
    audit_entries,
)
from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as


def test_a_note_reaches_the_next_shift_and_is_acknowledged(portal: RunningPortal) -> None:
    jonna = client_as(portal.url, portal.settings, JONNA)
    erik = client_as(portal.url, portal.settings, ERIK)
    empty = jonna.post("/api/v1/handover", json={"body": "  "})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body"
    too_long = jonna.post("/api/v1/handover", json={"body": "x" * 2001})
    assert too_long.status_code == 422

    r = jonna.post("/api/v1/handover", json={"body": "Familjen B väntar på samtal före 22."})
    assert r.status_code == 201, r.text
    note = r.json()["id"]

    start = erik.get("/").text
    card = start.split('id="handover"', 1)[1].split("</li>\n    <li", 1)[0]
    assert "Familjen B väntar på samtal före 22." in card and "Jag har läst" in card
    # The author has nothing to acknowledge.
    assert (
        "Jag har läst"
        not in jonna.get("/").text.split('id="handover"', 1)[1].split("</li>\n    <li", 1)[0]
    )

    assert erik.post(f"/api/v1/handover/{note}/read").status_code == 204
    assert erik.post(f"/api/v1/handover/{note}/read").status_code == 204  # idempotent
    (listed,) = erik.get("/api/v1/handover").json()
    assert listed["read_by_me"] and len(listed["read_by"]) == 1
    assert len([e for e in audit_entries(portal.settings, "handover.acknowledge")]) == 1
    assert [e.object_id for e in audit_entries(portal.settings, "handover.create")] == [note]

    # The page: the form and the week's notes; a page post with no text re-renders in Swedish.
    page = erik.get("/jour/handover").text
    assert "Familjen B" in page and "Läst av" in page
    bad = erik.post("/jour/handover", data={"body": "", "_csrf_token": erik.cookies["csrftoken"]})
    assert bad.status_code == 422 and "Skriv vad nästa pass behöver veta." in bad.text


def test_only_the_jours_own_staff_see_its_notes(portal: RunningPortal) -> None:
    add_second_jour(portal.settings)
    jonna = client_as(portal.url, portal.settings, JONNA)
    note = jonna.post("/api/v1/handover", json={"body": "Hemligt om familjen B."}).json()["id"]
    other = client_as(portal.url, portal.settings, OTHER_JOUR_STAFF)
    assert other.get("/api/v1/handover").json() == []
    r = other.post(f"/api/v1/handover/{note}/read")
    twin = other.post(f"/api/v1/handover/{uuid.uuid4()}/read")
    assert r.status_code == twin.status_code == 404
    assert "familjen" not in r.text
    denied = [
        e for e in audit_entries(portal.settings, "handover.acknowledge") if e.outcome == "denied"
    ]
    assert [e.object_id for e in denied] == [note]
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert hanna.get("/api/v1/handover").status_code == 403
    assert hanna.post("/api/v1/handover", json={"body": "x"}).status_code == 403
    assert hanna.get("/jour/handover").status_code == 403
