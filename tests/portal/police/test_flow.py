"""Handräckning (FR-F7): the legal-basis check (SoL blocked, nothing registered warned, LVU/LVM
allowed), the signed PDF for the police, the request's life, and statistics codes."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from portal.police import records
from portal.police.models import PoliceRequest
from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import BOY17, ERIK, GUNILLA, HANNA, JONNA, audit_entries, run
from tests.portal.conftest import RunningPortal
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as


def _count(portal: RunningPortal) -> int:
    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(PoliceRequest)))

    return run(portal.settings, count)


def test_lvu_placement_allows_a_signed_request_tracked_to_execution(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hud = org_id(portal, "Hudiksvall")
    register(hanna)  # 3 § LVU, Familjehemmet Björk

    check = jonna.post("/api/v1/police-requests/check", json=request_body(hud))
    assert check.status_code == 200, check.text
    assert check.json()["outcome"] == "allowed"
    assert "3 § LVU" in check.json()["checked_against"][0]

    r = jonna.post("/api/v1/police-requests", json=request_body(hud))
    assert r.status_code == 201, r.text
    rid, status = r.json()["id"], r.json()["status"]
    assert status == "signed"  # the jour decides under delegation (the default)

    pdf = jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    report = asyncio.run(verify_pdf(pdf.content, trust_roots=[root])).to_json()
    assert report["valid"] is True, report
    [sig] = report["signatures"]
    assert sig["personal_identity_number"] == JONNA and sig["pades_level"] == "B-LTA"

    def step(status: str, note: str = "") -> Any:
        return jonna.post(f"/api/v1/police-requests/{rid}/status",
                          json={"status": status, "note": note})  # fmt: skip

    assert step("granted").status_code == 409  # not sent yet
    assert step("sent", "Mejlad till stationsbefälet").status_code == 200
    assert step("granted", "Stationsbefäl Nilsson").status_code == 200
    assert step("not_found").status_code == 200
    done = step("executed", "Påträffad på Storgatan, återförd 02.10")
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["request"]["status"] == "executed"
    assert [e["status"] for e in body["events"]] == [
        "created", "signed", "sent", "granted", "not_found", "executed"
    ]  # fmt: skip
    assert body["events"][-1]["note"] == "Påträffad på Storgatan, återförd 02.10"
    assert step("revoked").status_code == 409  # executed is final
    for action in ("sent", "granted", "not_found", "executed"):
        (entry,) = audit_entries(portal.settings, f"police_request.{action}")
        assert entry.object_id == rid and entry.at is not None

    # The municipality reads it; another municipality's handler gets 404.
    assert hanna.get(f"/api/v1/police-requests/{rid}").status_code == 200
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    assert gunilla.get(f"/api/v1/police-requests/{rid}").status_code == 404
    assert hanna.post(f"/api/v1/police-requests/{rid}/status",
                      json={"status": "revoked"}).status_code == 403  # fmt: skip

    async def counted(db: Any) -> Any:
        now = datetime.now(UTC)
        jour = (await db.get(PoliceRequest, uuid.UUID(rid))).jour_id
        return await records.count_by_code(
            db, jour_id=jour, municipality_id=None, start=now - timedelta(days=1), end=now
        )

    assert run(portal.settings, counted) == {"handr_aterk": 1}
    # In the jour's statistics, under the seed's "Handr" codes.
    erik = client_as(portal.url, portal.settings, ERIK)
    stats = erik.get("/api/v1/stats").json()
    (table,) = [t for t in stats["tables"] if t["name"] == "jourpost_police"]
    assert [(c["label"], c["value"]) for c in table["cells"]] == [
        ("Handräckning 43 § LVU", 0), ("Handräckning 45 § LVM", 0),
        ("Handräckning, återförande", 1),
    ]  # fmt: skip


def test_sol_placement_blocks_the_request(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hud = org_id(portal, "Hudiksvall")
    register(hanna, personal_identity_number=BOY17, legal_section="sol", place_kind="hvb")
    # The care home says LVU (an advisory, say) — the register is the municipality's word.
    body = request_body(hud, personal_identity_number=BOY17, confirm_unregistered=True)
    check = jonna.post("/api/v1/police-requests/check", json=body).json()
    assert check["outcome"] == "blocked"
    assert "frivilligt enligt SoL" in check["message"]

    r = jonna.post("/api/v1/police-requests", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["detail"] for e in r.json()["errors"]}
    assert "Handräckning får inte begäras" in errors["act"]
    assert _count(portal) == 0
    blocked = [e for e in audit_entries(portal.settings, "police_request.create")
               if e.outcome == "blocked"]  # fmt: skip
    assert len(blocked) == 1 and blocked[0].owner_org_id is not None
    assert BOY17 not in str(blocked[0].details) and blocked[0].object_type == "person"

    # The page explains it in Swedish and keeps what was typed; the attempt is on record too.
    form = {**body, "confirm_unregistered": "on", "step": "create",
            "_csrf_token": jonna.cookies["csrftoken"]}  # fmt: skip
    page = jonna.post("/police-requests/new", data=form)
    assert page.status_code == 422
    assert "frivilligt enligt SoL" in page.text and "Hos en kompis" in page.text
    assert _count(portal) == 0
    assert len([e for e in audit_entries(portal.settings, "police_request.create")
                if e.outcome == "blocked"]) == 2  # fmt: skip

    # Under the other act than the placement's: blocked too.
    register(hanna, legal_section="lvm-4", place_kind="sis")
    other = jonna.post("/api/v1/police-requests/check", json=request_body(hud)).json()
    assert other["outcome"] == "blocked" and "45 § LVM" in other["message"]


def test_nothing_registered_warns_until_confirmed(portal: RunningPortal) -> None:
    jonna = client_as(portal.url, portal.settings, JONNA)
    hud = org_id(portal, "Hudiksvall")
    check = jonna.post("/api/v1/police-requests/check", json=request_body(hud)).json()
    assert check["outcome"] == "warning" and check["checked_against"] == []
    r = jonna.post("/api/v1/police-requests", json=request_body(hud))
    assert r.status_code == 422
    assert "Ingen placering är registrerad" in r.json()["errors"][0]["detail"]
    assert _count(portal) == 0
    form = {**request_body(hud), "step": "check", "_csrf_token": jonna.cookies["csrftoken"]}
    page = jonna.post("/police-requests/new", data=form)
    assert page.status_code == 200 and "Varning – kontrollera lagrummet." in page.text

    confirmed = request_body(hud, confirm_unregistered=True, purpose="transport")
    r = jonna.post("/api/v1/police-requests", json=confirmed)
    assert r.status_code == 201, r.text
    d = jonna.get(f"/api/v1/police-requests/{r.json()['id']}").json()
    assert d["request"]["legal_check"] == "warning_confirmed"
    assert "Ingen placering är registrerad" in d["check_message"]
    page = jonna.get(f"/police-requests/{r.json()['id']}")
    assert page.status_code == 200 and "Varning bekräftad" in page.text
    assert "Hämta underskriven begäran" in page.text


_CHECKBOX = re.compile(r'<input type="checkbox" id="confirm_unregistered"[^>]*>')


def _ticked(page: str) -> bool:
    [box] = _CHECKBOX.findall(page)
    return " checked" in box


def test_a_validation_error_keeps_every_value_and_the_ticked_confirmation(
    portal: RunningPortal,
) -> None:
    """The form re-rendered after a validation error (and after the check step) shows what the
    worker entered: the text fields, the selects, and the warning confirmation still ticked."""
    jonna = client_as(portal.url, portal.settings, JONNA)
    hud = org_id(portal, "Hudiksvall")
    assert not _ticked(jonna.get("/police-requests/new").text)
    form = {
        **request_body(hud, police_station="", purpose="transport"),
        "confirm_unregistered": "on",
        "step": "create",
        "_csrf_token": jonna.cookies["csrftoken"],
    }
    page = jonna.post("/police-requests/new", data=form)
    assert page.status_code == 422, page.text
    assert "Begäran kan inte skapas:" in page.text
    assert _ticked(page.text)
    text = html.unescape(page.text)
    for field in ("personal_identity_number", "name", "destination", "contact_phone"):
        assert f'name="{field}"' in text and f'value="{form[field]}"' in text, field
    for field in ("whereabouts", "grounds"):
        assert f">{form[field]}</textarea>" in text, field
    assert f'<option value="{hud}" selected>' in text
    assert '<option value="transport" selected>' in text
    assert '<option value="lvu" selected>' in text
    assert _count(portal) == 0

    # The check step keeps it too; unticked stays unticked.
    checked = jonna.post("/police-requests/new", data={**form, "step": "check"})
    assert checked.status_code == 200 and _ticked(checked.text)
    unticked = {k: v for k, v in form.items() if k != "confirm_unregistered"}
    again = jonna.post("/police-requests/new", data=unticked)
    assert again.status_code == 422 and not _ticked(again.text)
