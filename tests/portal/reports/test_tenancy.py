"""Tenant matrix: every demo role against every municipality's report, every operation.

A report is visible to the writing jour and to the receiving municipality's handlers (a
unit-scoped handler: only that unit). Everyone else gets a 404 indistinguishable from a missing
record, and every refusal is audited.
"""

from __future__ import annotations

import uuid
from collections import Counter

from portal.demo import MEMBERS
from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import (
    ALL_DEMO,
    ERIK,
    GUNILLA,
    HANNA,
    JONNA,
    People,
)
from tests.portal.reports.helpers import BARN, audit_entries, report_payload, unit_ids

JOUR = {JONNA, ERIK}
HANDLERS = {HANNA: ("Hudiksvall", BARN), GUNILLA: ("Gävle", BARN)}


def _shape(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != "instance"}


def test_no_report_leaks_across_tenants(portal: RunningPortal, people: People) -> None:
    units = unit_ids(portal.settings)
    jonna = people(JONNA)
    reports: dict[str, tuple[str, str] | None] = {}
    for municipality in MEMBERS:
        r = jonna.post("/api/v1/reports", json=report_payload(units[(municipality, BARN)]))
        assert r.status_code == 201, r.text
        reports[r.json()["id"]] = (municipality, BARN)
    vuxen = jonna.post("/api/v1/reports", json=report_payload(units[("Hudiksvall", "IFO vuxen")]))
    reports[vuxen.json()["id"]] = ("Hudiksvall", "IFO vuxen")
    annan = report_payload(None, other_municipality="Uppsala")
    reports[jonna.post("/api/v1/reports", json=annan).json()["id"]] = None

    missing = jonna.get(f"/api/v1/reports/{uuid.uuid4()}")
    assert missing.status_code == 404
    missing_shape = _shape(missing.json())
    refusals: Counter[str] = Counter()
    for person in ALL_DEMO:
        client = people(person)
        visible = {
            rid
            for rid, dest in reports.items()
            if person in JOUR or (person in HANDLERS and dest == HANDLERS[person])
        }
        listed = {
            x["id"]
            for box in ("inbox", "sent")
            for x in client.get("/api/v1/reports", params={"box": box}).json()
        }
        assert listed == visible, person
        inbox_page = client.get("/reports/inbox").text + client.get("/reports/sent").text
        for rid in reports:
            assert (rid in inbox_page) == (rid in visible), (person, rid)
        for rid in reports:
            calls = {
                "read": client.get(f"/api/v1/reports/{rid}"),
                "page": client.get(f"/reports/{rid}", headers={"accept": "text/html"}),
                "pdf": client.get(f"/api/v1/reports/{rid}/pdf"),
                "acknowledge": client.post(f"/api/v1/reports/{rid}/acknowledge", json={}),
                "addendum": client.post(f"/api/v1/reports/{rid}/addenda", json={"text": "x"}),
                "candidates": client.get(f"/api/v1/reports/{rid}/follow-up-candidates"),
            }
            if rid not in visible:
                for op, resp in calls.items():
                    assert resp.status_code == 404, (person, rid, op, resp.status_code)
                    if op != "page":
                        assert _shape(resp.json()) == missing_shape, (person, op)
                    refusals[rid] += 1
                continue
            assert calls["read"].status_code == 200
            assert calls["pdf"].status_code == 200
            if person in JOUR:
                assert calls["acknowledge"].status_code == 403
                assert calls["addendum"].status_code == 201
            else:
                assert calls["acknowledge"].status_code == 200
                assert calls["addendum"].status_code == 403
    denied = Counter(
        e.object_id
        for e in audit_entries(portal.settings)
        if e.action.startswith("report.") and e.outcome == "denied"
    )
    # Every 404 above is audited, and so is every 403: the jour acknowledging (twice per report)
    # and a handler writing an addendum to a report of their own unit.
    expected = Counter({rid: refusals[rid] + 2 for rid in reports})
    for rid, dest in reports.items():
        if dest in HANDLERS.values():
            expected[rid] += 1
    assert denied == expected
    not_found = [e for e in audit_entries(portal.settings) if e.outcome == "not_found"]
    assert [e.action for e in not_found] == ["report.read"]
