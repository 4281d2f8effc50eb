"""Tenancy: another municipality's (or jour's) placement answers 404 exactly like a missing one,
leaks nothing, and the attempt is audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    ADA,
    ANDERS,
    BOY,
    BOY17,
    ERIK,
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
)
from tests.portal.placements.helpers import placement, register

Action = Callable[[httpx.Client, str], httpx.Response]
ACTIONS: dict[str, Action] = {
    "api.read": lambda c, p: c.get(f"/api/v1/placements/{p}"),
    "api.version": lambda c, p: c.get(f"/api/v1/placements/{p}/versions/1"),
    "api.amend": lambda c, p: c.put(f"/api/v1/placements/{p}", json=placement(base_version=1)),
    "page.read": lambda c, p: c.get(f"/placements/{p}"),
    "page.amend": lambda c, p: c.get(f"/placements/{p}/amend"),
}


def test_no_role_sees_another_tenants_placement(jp: AdvisoryPortal) -> None:
    add_second_jour(jp.settings)
    hud = register(jp.client(HANNA), personal_identity_number=BOY)
    gav = register(jp.client(GUNILLA), personal_identity_number=BOY17)
    test = register(jp.client(OTHER_HANDLER), personal_identity_number=WOMAN)
    placements = {
        "hudiksvall": (hud, {HANNA, JONNA, ERIK}),
        "gavle": (gav, {GUNILLA, JONNA, ERIK}),
        "testby": (test, {OTHER_HANDLER, OTHER_JOUR_STAFF}),
    }
    people = (HANNA, GUNILLA, JONNA, ERIK, OLOF, GUSTAV, ANDERS, ADA, OTHER_HANDLER,
              OTHER_JOUR_STAFF)  # fmt: skip
    secrets = ("Klient", "Björk", BOY, BOY17, WOMAN)
    denied = 0
    for who in people:
        client = jp.client(who)
        for name, (pid, readers) in placements.items():
            if who in readers:
                continue
            missing = str(uuid.uuid4())
            for action, call in ACTIONS.items():
                r = call(client, pid)
                assert r.status_code == 404, (who, name, action, r.status_code, r.text[:200])
                assert not any(s in r.text for s in secrets), (who, name, action)
                twin = call(client, missing)
                assert r.text.replace(pid, "ID") == twin.text.replace(missing, "ID"), (who, action)
                denied += 1
    entries = [
        e
        for action in ("placement.read", "placement.amend")
        for e in audit_entries(jp.settings, action)
        if e.outcome == "denied"
    ]
    assert len(entries) == denied
    ids = {pid for pid, _ in placements.values()}
    assert all(e.object_id in ids and e.owner_org_id is not None for e in entries)

    # The lookup shows only what the caller may see.
    def found(who: str, pnr: str) -> list[str]:
        r = jp.client(who).post("/api/v1/lookup", json={"personal_identity_number": pnr})
        return [p["id"] for p in r.json()["placements"]] if r.status_code == 200 else []

    assert found(JONNA, BOY) == [placements["hudiksvall"][0]]
    assert found(OTHER_JOUR_STAFF, BOY) == [] and found(JONNA, WOMAN) == []
    assert found(GUNILLA, BOY) == [] and found(HANNA, BOY) == [placements["hudiksvall"][0]]
