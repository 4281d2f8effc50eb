"""Tenant matrix: every demo role (and a second jour) × every advisory they must not see.

Each denied attempt must answer 404 with exactly the body a missing record gets, leak nothing
of the record, and leave an audit entry (outcome "denied", the record's id and owner).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    ADA,
    ALL_DEMO,
    ANDERS,
    BOY,
    BOY17,
    ERIK,
    EVA,
    GUNILLA,
    GUSTAV,
    HANNA,
    JONNA,
    OLOF,
    OTHER_HANDLER,
    OTHER_JOUR_STAFF,
    WOMAN,
    add_second_jour,
    audit_entries,
    body,
    pdf_bytes,
)

Action = Callable[[httpx.Client, str, str], httpx.Response]


def _csrf(c: httpx.Client) -> dict[str, str]:
    return {"_csrf_token": c.cookies["csrftoken"]}


ACTIONS: dict[str, Action] = {
    "api.read": lambda c, a, f: c.get(f"/api/v1/advisories/{a}"),
    "api.version": lambda c, a, f: c.get(f"/api/v1/advisories/{a}/versions/1"),
    "api.download": lambda c, a, f: c.get(f"/api/v1/advisories/{a}/attachments/{f}"),
    "api.amend": lambda c, a, f: c.put(f"/api/v1/advisories/{a}", json=body(base_version=1)),
    "api.withdraw": lambda c, a, f: c.post(
        f"/api/v1/advisories/{a}/withdraw", json={"reason": "x"}
    ),
    "api.reconfirm": lambda c, a, f: c.post(
        f"/api/v1/advisories/{a}/reconfirm", json={"base_version": 1}
    ),
    "api.acknowledge": lambda c, a, f: c.post(f"/api/v1/advisories/{a}/acknowledge", json={}),
    "api.attach": lambda c, a, f: c.post(
        f"/api/v1/advisories/{a}/attachments",
        files={"attachments": ("x.pdf", pdf_bytes(), "application/pdf")},
    ),
    "page.read": lambda c, a, f: c.get(f"/advisories/{a}"),
    "page.download": lambda c, a, f: c.get(f"/advisories/{a}/attachments/{f}"),
    "page.amend": lambda c, a, f: c.get(f"/advisories/{a}/amend"),
    "page.acknowledge": lambda c, a, f: c.post(
        f"/advisories/{a}/acknowledge", data={"version": "1", **_csrf(c)}
    ),
    "page.withdraw": lambda c, a, f: c.post(
        f"/advisories/{a}/withdraw", data={"reason": "x", **_csrf(c)}
    ),
}


def _post(jp: AdvisoryPortal, who: str, pnr: str) -> tuple[str, str]:
    c = jp.client(who)
    r = c.post(
        "/api/v1/advisories",
        json=body(subjects=[{"personal_identity_number": pnr, "name": f"Klient {pnr}"}]),
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    f = c.post(
        f"/api/v1/advisories/{aid}/attachments",
        files={"attachments": ("Journal.pdf", pdf_bytes(), "application/pdf")},
    )
    assert f.status_code == 201, f.text
    return aid, f.json()["ids"][0]


def _normalised(r: httpx.Response, *ids: str) -> str:
    text = r.text
    for i in ids:
        text = text.replace(i, "ID")
    return text


def test_no_role_sees_or_touches_another_tenants_advisory(jp: AdvisoryPortal) -> None:
    add_second_jour(jp.settings)
    advisories = {
        "hudiksvall": (*_post(jp, HANNA, BOY), {HANNA, JONNA, ERIK}),
        "gavle": (*_post(jp, GUNILLA, BOY17), {GUNILLA, JONNA, ERIK}),
        "testby": (*_post(jp, OTHER_HANDLER, WOMAN), {OTHER_HANDLER, OTHER_JOUR_STAFF}),
    }
    people = (*ALL_DEMO, OTHER_HANDLER, OTHER_JOUR_STAFF)
    clients = {p: jp.client(p) for p in people}
    secrets = ("Klient", BOY, BOY17, WOMAN, "Bevilja", "Delsbo", "%PDF")
    denied = 0
    for who, client in clients.items():
        for name, (aid, fid, readers) in advisories.items():
            if who in readers:
                continue
            missing, missing_file = str(uuid.uuid4()), str(uuid.uuid4())
            for action, call in ACTIONS.items():
                r = call(client, aid, fid)
                assert r.status_code == 404, (who, name, action, r.status_code, r.text[:200])
                assert not any(s in r.text for s in secrets), (who, name, action)
                twin = call(client, missing, missing_file)
                assert _normalised(r, aid, fid) == _normalised(twin, missing, missing_file), (
                    who,
                    name,
                    action,
                )
                denied += 1
    entries = [
        e
        for action in ("advisory.read", "advisory.amend", "advisory.withdraw", "advisory.reconfirm",
                       "advisory.acknowledge", "attachment.add", "attachment.download")
        for e in audit_entries(jp.settings, action)
        if e.outcome == "denied"
    ]  # fmt: skip
    assert len(entries) == denied
    ids = {aid for aid, _, _ in advisories.values()}
    assert all(e.object_id in ids and e.owner_org_id is not None for e in entries)
    assert all(e.actor_user_id is not None for e in entries)


def test_lists_show_only_own_tenants(jp: AdvisoryPortal) -> None:
    add_second_jour(jp.settings)
    hud, _ = _post(jp, HANNA, BOY)
    gav, _ = _post(jp, GUNILLA, BOY17)
    test, _ = _post(jp, OTHER_HANDLER, WOMAN)

    def ids(who: str, view: str | None = None) -> Any:
        params = {"view": view} if view else {}
        r = jp.client(who).get("/api/v1/advisories", params=params)
        return {a["id"] for a in r.json()} if r.status_code == 200 else r.status_code

    assert ids(HANNA) == {hud} and ids(GUNILLA) == {gav} and ids(OTHER_HANDLER) == {test}
    assert ids(JONNA) == {hud, gav} and ids(ERIK) == {hud, gav} and ids(OTHER_JOUR_STAFF) == {test}
    assert ids(HANNA, "jour") == 403 and ids(JONNA, "sent") == 403
    for who in (OLOF, EVA, GUSTAV, ANDERS, ADA):
        assert ids(who) == 403, who
        assert jp.client(who).get("/jour/advisories").status_code == 403
        assert jp.client(who).get("/advisories").status_code == 403
    page = jp.client(JONNA).get("/jour/advisories").text
    assert "Klient " + BOY in page and "Klient " + WOMAN not in page
    # A file can't be fetched through another advisory the caller may read.
    _, hud_file = _post(jp, HANNA, BOY)
    r = jp.client(GUNILLA).get(f"/api/v1/advisories/{gav}/attachments/{hud_file}")
    assert r.status_code == 404
