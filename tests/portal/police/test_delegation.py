"""The delegation matrix (FR-A5): where the chair decides handräckning, the request waits for
the chair and is signed in the chair's name; tenancy of requests and of the matrix."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import (
    ADA,
    GUSTAV,
    HANNA,
    JONNA,
    OLOF,
    OTHER_JOUR_STAFF,
    add_second_jour,
    audit_entries,
)
from tests.portal.conftest import RunningPortal
from tests.portal.login import csrf_form, login, through_idp
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as


def test_chair_decides_where_the_matrix_says_so(portal: RunningPortal) -> None:
    hud = org_id(portal, "Hudiksvall")
    ada = client_as(portal.url, portal.settings, ADA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert jonna.get(f"/api/v1/delegation/{hud}").json()["rules"]["handrackning_lvu"] == "jour"
    assert hanna.put(f"/api/v1/delegation/{hud}",
                     json={"rules": {"handrackning_lvu": "chair"}}).status_code == 403  # fmt: skip
    bad = ada.put(f"/api/v1/delegation/{hud}", json={"rules": {"handrackning_lvu": "polis"}})
    assert bad.status_code == 422
    r = ada.put(f"/api/v1/delegation/{hud}", json={"rules": {"handrackning_lvu": "chair"}})
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == {"handrackning_lvu": "chair", "handrackning_lvm": "jour"}
    (change,) = [e for e in audit_entries(portal.settings, "delegation.change")
                 if e.outcome == "ok"]  # fmt: skip
    assert change.details["before"]["handrackning_lvu"] == "jour"

    # The administrator's page shows every municipality's matrix and changes it too.
    page = ada.get("/delegation")
    assert page.status_code == 200 and "Hudiksvall" in page.text and "Gävle" in page.text
    gav = org_id(portal, "Gävle")
    form = {"handrackning_lvm": "chair", "_csrf_token": ada.cookies["csrftoken"]}
    assert ada.post(f"/delegation/{gav}", data=form).status_code == 303
    assert jonna.get(f"/api/v1/delegation/{gav}").json()["rules"] == {
        "handrackning_lvu": "jour", "handrackning_lvm": "chair"
    }  # fmt: skip
    assert jonna.get("/delegation").status_code == 403
    form = {"handrackning_lvu": "jour", "_csrf_token": jonna.cookies["csrftoken"]}
    assert jonna.post(f"/delegation/{gav}", data=form).status_code == 403

    register(hanna)
    made = jonna.post("/api/v1/police-requests", json=request_body(hud))
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert made.json()["status"] == "awaiting_chair"
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").status_code == 404
    sent = jonna.post(f"/api/v1/police-requests/{rid}/status", json={"status": "sent"})
    assert sent.status_code == 409
    assert jonna.post(f"/api/v1/police-requests/{rid}/approve").status_code == 403
    gustav = client_as(portal.url, portal.settings, GUSTAV)  # Gävle's chair
    assert gustav.post(f"/api/v1/police-requests/{rid}/approve").status_code == 404

    olof, _ = login(portal.url, OLOF)
    page = olof.get(f"/police-requests/{rid}")
    assert page.status_code == 200 and "Besluta och skriv under" in page.text
    # Deciding starts the identity check; the request is signed when the provider answers.
    start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    assert start.status_code == 303
    assert jonna.get(f"/api/v1/police-requests/{rid}").json()["request"]["status"] == (
        "awaiting_chair"
    )
    done = through_idp(olof, start.headers["location"], OLOF)
    assert done.headers["location"] == f"/police-requests/{rid}?saved=1", done.text
    assert jonna.get(f"/api/v1/police-requests/{rid}").json()["request"]["status"] == "signed"
    again = olof.post(
        f"/api/v1/police-requests/{rid}/approve", headers={"X-CSRFToken": olof.cookies["csrftoken"]}
    )
    assert again.status_code == 409
    pdf = jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").content
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    [sig] = asyncio.run(verify_pdf(pdf, trust_roots=[root])).to_json()["signatures"]
    assert sig["personal_identity_number"] == OLOF
    assert jonna.post(f"/api/v1/police-requests/{rid}/status",
                      json={"status": "sent"}).status_code == 200  # fmt: skip


def test_another_jour_sees_nothing(portal: RunningPortal) -> None:
    hud = org_id(portal, "Hudiksvall")
    jonna = client_as(portal.url, portal.settings, JONNA)
    r = jonna.post("/api/v1/police-requests",
                   json=request_body(hud, confirm_unregistered=True))  # fmt: skip
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    add_second_jour(portal.settings)
    other = client_as(portal.url, portal.settings, OTHER_JOUR_STAFF)
    missing = str(uuid.uuid4())
    calls: list[Any] = [
        lambda i: other.get(f"/api/v1/police-requests/{i}"),
        lambda i: other.get(f"/api/v1/police-requests/{i}/signed.pdf"),
        lambda i: other.post(f"/api/v1/police-requests/{i}/status", json={"status": "sent"}),
        lambda i: other.get(f"/police-requests/{i}"),
    ]
    for call in calls:
        seen, twin = call(rid), call(missing)
        assert seen.status_code == 404, seen.text
        assert seen.text.replace(rid, "ID") == twin.text.replace(missing, "ID")
        assert "Kalle" not in seen.text
    denied = [e for action in ("police_request.read", "police_request.download",
                               "police_request.sent")
              for e in audit_entries(portal.settings, action)
              if e.outcome == "denied"]  # fmt: skip
    assert len(denied) == 4 and all(e.object_id == rid for e in denied)
    assert other.get("/api/v1/police-requests").json() == []
    # Nor may it make a request for a municipality that is not its member.
    made = other.post("/api/v1/police-requests",
                      json=request_body(hud, confirm_unregistered=True))  # fmt: skip
    assert made.status_code == 422
    assert other.get(f"/api/v1/delegation/{hud}").status_code == 404
