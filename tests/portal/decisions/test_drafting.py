"""Decision drafting: the roster check at the time of the oral decision, deadlines, states,
the frozen PDF/A document, visibility between the jour and the municipalities."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pikepdf
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.decisions.models import Decision
from tests.portal.advisories.helpers import run
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    ANDERS,
    GUNILLA,
    GUSTAV,
    HANNA,
    OLOF,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.login import csrf_form
from tests.portal.sessions import client_as


def test_draft_submit_and_deadlines(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    created = jonna.post("/api/v1/decisions", json=draft_body(known))
    assert created.status_code == 201, created.text
    d = created.json()
    assert d["status"] == "draft" and d["decision_maker"] == "Olof Ordén"
    assert d["decision_maker_function"] == "ordförande"
    oral = datetime.fromisoformat(d["oral_decision_at"])
    court = next(x for x in d["deadlines"] if x["key"] == "submit_to_court")
    assert datetime.fromisoformat(court["due"]) == oral + timedelta(days=7)
    assert any(x["key"] == "report_to_committee" and x["due"] is None for x in d["deadlines"])

    hanna = client_as(portal.url, portal.settings, HANNA)
    assert hanna.get(f"/api/v1/decisions/{d['id']}").status_code == 404  # drafts are the jour's
    olof = client_as(portal.url, portal.settings, OLOF)
    assert olof.get(f"/api/v1/decisions/{d['id']}").status_code == 200  # the decision-maker

    submitted = jonna.post(f"/api/v1/decisions/{d['id']}/submit")
    assert submitted.status_code == 200, submitted.text
    after = submitted.json()
    assert after["status"] == "awaiting_signature" and len(after["document_sha256"]) == 64
    assert hanna.get(f"/api/v1/decisions/{d['id']}").json()["status"] == "awaiting_signature"

    pdf = olof.get(f"/decisions/{d['id']}/document.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert hashlib.sha256(pdf.content).hexdigest() == after["document_sha256"]
    with pikepdf.open(io.BytesIO(pdf.content)) as doc, doc.open_metadata() as meta:
        assert meta.get("pdfaid:part") == "2" and meta.get("pdfaid:conformance") == "B"

    stale = jonna.put(f"/api/v1/decisions/{d['id']}", json=draft_body(known, revision=1))
    assert stale.status_code == 409
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decision_maker_id": "GUSTAV"}, "decision_maker_id"),
        ({"oral_decision_at": "BEFORE_ROSTER"}, "decision_maker_id"),
        ({"oral_decision_at": "FUTURE"}, "oral_decision_at"),
        ({"subject_personal_identity_number": "201103059890"}, "subject_personal_identity_number"),
        ({"facts": "  "}, "facts"),
        ({"kind": "lvu99"}, "kind"),
        ({"municipality_id": "GAVLE"}, "decision_maker_id"),
    ],
)
def test_invalid_drafts_are_refused_and_nothing_is_stored(
    portal: RunningPortal, change: dict[str, str], field: str
) -> None:
    known = roster_with_olof(portal, start_hours_ago=2)
    values = {
        "GUSTAV": str(known[GUSTAV]),
        "BEFORE_ROSTER": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
        "FUTURE": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "GAVLE": str(known["Gävle"]),
    }
    body = draft_body(known, **{k: values.get(v, v) for k, v in change.items()})
    jonna = jour_client(portal)
    r = jonna.post("/api/v1/decisions", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}
    assert jonna.get("/api/v1/decisions").json() == []


def test_only_the_jour_drafts_and_other_tenants_get_404(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    jonna.post(f"/api/v1/decisions/{d['id']}/submit")
    for pnr in (HANNA, OLOF, GUNILLA):
        c = client_as(portal.url, portal.settings, pnr)
        assert c.post("/api/v1/decisions", json=draft_body(known)).status_code == 403
    missing = uuid.uuid4()
    for pnr in (GUNILLA, GUSTAV):
        c = client_as(portal.url, portal.settings, pnr)
        wrong, absent = c.get(f"/api/v1/decisions/{d['id']}"), c.get(f"/api/v1/decisions/{missing}")
        assert wrong.status_code == absent.status_code == 404
        assert wrong.json()["detail"] == absent.json()["detail"]
        assert c.get(f"/decisions/{d['id']}/document.pdf").status_code == 404
        assert c.get("/api/v1/decisions").json() == []
    anders = client_as(portal.url, portal.settings, ANDERS)
    assert anders.get(f"/api/v1/decisions/{d['id']}").status_code == 200  # Hudiksvall archivist


def test_drafting_through_the_pages(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    form = jonna.get("/decisions/new")
    assert form.status_code == 200 and "Olof Ordén" in form.text
    data = {
        "_csrf_token": jonna.cookies["csrftoken"],
        "kind": "lvu6",
        "municipality_id": str(known["Hudiksvall"]),
        "oral_decision_at": "",
        "decision_maker_id": str(known[OLOF]),
        "subject_personal_identity_number": "20110305-9893",
        "subject_name": "Pojke Testsson",
        "facts": "Omständigheter.",
        "grounds": "Skäl.",
    }
    bad = jonna.post("/decisions", data=data)
    assert bad.status_code == 422 and "Ange datum och klockslag" in bad.text
    assert 'aria-invalid="true"' in bad.text
    data["oral_decision_at"] = (
        (datetime.now(UTC) + timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Stockholm"))
    ).strftime("%Y-%m-%dT%H:%M")
    ok = jonna.post("/decisions", data=data)
    assert ok.status_code == 303, ok.text
    page = jonna.get(ok.headers["location"])
    assert "6 § LVU" in page.text and "Underställs förvaltningsrätten" in page.text
    listing = jonna.get("/decisions")
    rows = listing.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]  # not the status filter
    assert "Väntar" not in rows and "Utkast" in rows


def test_lifting_and_cancelling(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    csrf = {"_csrf_token": jonna.cookies["csrftoken"]}
    no_reason = jonna.post(f"/decisions/{d['id']}/close", data={**csrf, "to": "cancelled"})
    assert no_reason.status_code == 422
    done = jonna.post(
        f"/decisions/{d['id']}/close", data={**csrf, "to": "cancelled", "reason": "Fattades ej"}
    )
    assert done.status_code == 303
    assert jonna.get(f"/api/v1/decisions/{d['id']}").json()["status"] == "cancelled"
    again = jonna.post(f"/decisions/{d['id']}/close", data={**csrf, "to": "lifted", "reason": "x"})
    assert again.status_code == 409


def test_lookup_shows_decisions_about_the_person_to_those_who_may_see_them(
    portal: RunningPortal,
) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    created = jonna.post("/api/v1/decisions", json=draft_body(known))
    assert created.status_code == 201, created.text
    did = created.json()["id"]
    hanna = client_as(portal.url, portal.settings, HANNA)
    gunilla = client_as(portal.url, portal.settings, GUNILLA)  # handler in another municipality

    def found(client: httpx.Client, pnr: str = "20110305-9893") -> list[dict[str, Any]]:
        r = client.post("/api/v1/lookup", json={"personal_identity_number": pnr})
        assert r.status_code == 200, r.text
        return r.json()["decisions"]  # type: ignore[no-any-return]

    draft = found(jonna)
    assert [(d["id"], d["status"], d["act"]) for d in draft] == [(did, "draft", "6 § LVU")]
    assert "subject_name" not in draft[0] and draft[0]["municipality"] == "Hudiksvall"
    assert found(hanna) == []  # a draft is the jour's working material
    assert found(jonna, "20110305-9885") == []  # another person

    assert jonna.post(f"/api/v1/decisions/{did}/submit").status_code == 200
    assert [d["status"] for d in found(hanna)] == ["awaiting_signature"]
    assert found(gunilla) == []  # not her municipality's decision

    form = {"personal_identity_number": "20110305-9893", **csrf_form(jonna)}
    page = jonna.post("/lookup", data=form)
    assert page.status_code == 200 and f'href="/decisions/{did}"' in page.text


def test_the_form_starts_now_with_the_municipalitys_chair_on_call(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    before = datetime.now(ZoneInfo("Europe/Stockholm")).replace(second=0, microsecond=0)
    page = jonna.get("/decisions/new")
    assert page.status_code == 200
    shown = re.search(r'name="oral_decision_at" value="([^"]+)"', page.text)
    assert shown is not None
    start = datetime.fromisoformat(shown.group(1)).replace(tzinfo=ZoneInfo("Europe/Stockholm"))
    assert timedelta(0) <= start - before <= timedelta(minutes=2)
    # Chairs are grouped per municipality; Olof is marked as the one on call in Hudiksvall.
    group = re.search(
        rf'<optgroup label="Hudiksvall" data-municipality="{known["Hudiksvall"]}">(.*?)</optgroup>',
        page.text,
        re.S,
    )
    assert group is not None
    olof = re.search(rf'<option value="{known[OLOF]}"([^>]*)>([^<]*)</option>', group.group(1))
    assert olof is not None and "data-on-call" in olof.group(1)
    assert "i beredskap nu" in olof.group(2) and "selected" not in olof.group(1)
    assert "/static/js/decision-form.js" in page.text

    # The form comes back (a field missing) with Hudiksvall chosen: Olof is preselected.
    again = jonna.post(
        "/decisions",
        data={**csrf_form(jonna), "kind": "lvu6", "municipality_id": str(known["Hudiksvall"])},
    )
    assert again.status_code == 422
    chosen = re.search(rf'<option value="{known[OLOF]}"([^>]*)>', again.text)
    assert chosen is not None and "selected" in chosen.group(1)


def _move_oral_decision(portal: RunningPortal, decision_id: str, ago: timedelta) -> None:
    """Time travel: the oral decision was taken `ago` (the roster rule is checked at drafting)."""

    async def move(db: AsyncSession) -> None:
        await db.execute(
            update(Decision)
            .where(Decision.id == uuid.UUID(decision_id))
            .values(oral_decision_at=datetime.now(UTC) - ago)
        )

    run(portal.settings, move)


def test_genast_is_not_passed_at_drafting_and_a_lifted_decision_has_no_running_deadline(
    portal: RunningPortal,
) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    lvm = jonna.post("/api/v1/decisions", json=draft_body(known, kind="lvm13")).json()
    court = next(x for x in lvm["deadlines"] if x["key"] == "submit_to_court")
    assert court["immediately"] is True and court["overdue"] is False
    assert "genast" in court["label"]
    shown = jonna.get(f"/decisions/{lvm['id']}")
    assert "passerad" not in shown.text and "Underställs förvaltningsrätten genast" in shown.text

    # A 6 § LVU decision taken eight days ago, sent for signature and then lifted: the court
    # deadline has passed but no longer runs; the committee must still be told about it.
    lvu = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    _move_oral_decision(portal, lvu["id"], timedelta(days=8))
    court = next(
        x
        for x in jonna.get(f"/api/v1/decisions/{lvu['id']}").json()["deadlines"]
        if x["key"] == "submit_to_court"
    )
    assert court["overdue"] is True
    assert jonna.post(f"/api/v1/decisions/{lvu['id']}/submit").status_code == 200
    done = jonna.post(
        f"/decisions/{lvu['id']}/close",
        data={**csrf_form(jonna), "to": "lifted", "reason": "Placeringen upphörde"},
    )
    assert done.status_code == 303
    lifted = jonna.get(f"/api/v1/decisions/{lvu['id']}").json()
    assert lifted["status"] == "lifted" and not any(x["overdue"] for x in lifted["deadlines"])
    listing = jonna.get("/decisions").text
    assert "passerad" not in listing
    meeting = listing.split("Att anmäla vid nämndens nästa sammanträde", 1)
    assert len(meeting) == 2 and f'href="/decisions/{lvu["id"]}"' in meeting[1]
    assert "(hävt)" in meeting[1]
