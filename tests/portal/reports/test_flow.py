"""The whole report flow over real HTTP: write, inbox, read, acknowledge, addenda, sent list."""

from __future__ import annotations

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import BOY_15, ERIK, GUNILLA, HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, audit_entries, report_payload, unit_ids


def test_write_read_acknowledge_and_jour_sees_it(portal: RunningPortal, people: People) -> None:
    units = unit_ids(portal.settings)
    jonna, hanna = people(JONNA), people(HANNA)

    r = jonna.post("/api/v1/reports", json=report_payload(units[("Hudiksvall", BARN)]))
    assert r.status_code == 201, r.text
    created = r.json()
    rid = created["id"]
    assert created["code_list_version"] == "2017"
    assert created["municipality_name"] == "Hudiksvall" and created["unit_name"] == BARN
    assert created["subjects"] == [
        {"identity_unknown": False, "personal_identity_number": BOY_15, "name": "Pelle Testsson"}
    ]
    assert [a["code"] for a in created["actions"]] == ["information", "skyddsbedomning"]
    assert created["category"] == {"code": "13_17_ar", "label": "13–17 år"}
    assert created["assessment"]["assessed_by"].startswith("Jonna")

    inbox = hanna.get("/api/v1/reports", params={"box": "inbox"}).json()
    assert [(x["id"], x["unread"], x["acknowledged_at"]) for x in inbox] == [(rid, True, None)]
    assert "Pelle" not in str(inbox) and BOY_15 not in str(inbox)  # lists carry no PII

    page = hanna.get("/reports/inbox")
    assert page.status_code == 200 and "Oläst" in page.text and "Okvitterad" in page.text

    opened = hanna.get(f"/api/v1/reports/{rid}")
    assert opened.status_code == 200
    assert opened.json()["narrative"].startswith("Polisen ringde")
    assert opened.json()["can_acknowledge"] is True and opened.json()["can_add_addendum"] is False
    assert hanna.get("/api/v1/reports").json()[0]["unread"] is False
    reads = [e for e in audit_entries(portal.settings, "report.read") if e.object_id == rid]
    assert reads and reads[-1].outcome == "ok"

    candidates = hanna.get(f"/api/v1/reports/{rid}/follow-up-candidates").json()
    assert [c["name"] for c in candidates] == ["Hanna Hedlund"]
    ack = hanna.post(f"/api/v1/reports/{rid}/acknowledge", json={})
    assert ack.status_code == 200, ack.text
    assert ack.json()["acknowledged_by_name"] == "Hanna Hedlund"
    assert ack.json()["follow_up_owner_name"] == "Hanna Hedlund"
    assert ack.json()["can_acknowledge"] is False
    again = hanna.post(f"/api/v1/reports/{rid}/acknowledge", json={})
    assert again.status_code == 409

    sent = jonna.get("/api/v1/reports", params={"box": "sent"}).json()
    assert sent[0]["id"] == rid and sent[0]["acknowledged_at"] is not None
    assert sent[0]["follow_up_owner_name"] == "Hanna Hedlund"
    sent_page = people(ERIK).get("/reports/sent")
    assert "Kvitterad" in sent_page.text and "Hanna Hedlund tar över" in sent_page.text
    assert [e.outcome for e in audit_entries(portal.settings, "report.acknowledge")] == ["ok"]


def test_acknowledge_names_another_handler_of_the_municipality(
    portal: RunningPortal, people: People
) -> None:
    units = unit_ids(portal.settings)
    r = people(JONNA).post("/api/v1/reports", json=report_payload(units[("Gävle", BARN)]))
    rid = r.json()["id"]
    gunilla = people(GUNILLA)
    hanna_id = None  # a handler of another municipality may not take it over
    for c in people(HANNA).get("/api/v1/reports").json():
        hanna_id = c
    assert hanna_id is None  # Hanna sees nothing of Gävle's
    cands = gunilla.get(f"/api/v1/reports/{rid}/follow-up-candidates").json()
    assert [c["name"] for c in cands] == ["Gunilla Gran"]
    bad = gunilla.post(
        f"/api/v1/reports/{rid}/acknowledge",
        json={"follow_up_owner_id": "00000000-0000-0000-0000-000000000001"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "follow_up_owner_id"
    ok = gunilla.post(
        f"/api/v1/reports/{rid}/acknowledge", json={"follow_up_owner_id": cands[0]["user_id"]}
    )
    assert ok.status_code == 200


def test_addenda_are_appended_and_the_original_never_changes(
    portal: RunningPortal, people: People
) -> None:
    units = unit_ids(portal.settings)
    jonna, hanna = people(JONNA), people(HANNA)
    rid = jonna.post("/api/v1/reports", json=report_payload(units[("Hudiksvall", BARN)])).json()[
        "id"
    ]
    before = hanna.get(f"/api/v1/reports/{rid}").json()
    first = jonna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "Rättelse: 22:20."})
    assert first.status_code == 201, first.text
    second = jonna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "Modern ringde 01:30."})
    assert second.status_code == 201
    after = hanna.get(f"/api/v1/reports/{rid}").json()
    assert [a["text"] for a in after["addenda"]] == ["Rättelse: 22:20.", "Modern ringde 01:30."]
    assert after["addenda"][0]["author_name"] == "Jonna Jourström"
    for key in ("narrative", "occurred_at", "subjects", "assessment", "actions", "minutes"):
        assert after[key] == before[key]
    # A handler cannot write addenda; an empty addendum is refused.
    assert hanna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "x"}).status_code == 403
    empty = jonna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "  "})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"
    # The addendum makes the report unread again for the unit.
    inbox_before_open = hanna.get("/api/v1/reports").json()
    assert inbox_before_open[0]["unread"] is False  # Hanna opened it after the addenda
    jonna.post(f"/api/v1/reports/{rid}/addenda", json={"text": "Tredje."})
    assert hanna.get("/api/v1/reports").json()[0]["unread"] is True
    page = hanna.get(f"/reports/{rid}")
    assert page.text.index("Rättelse: 22:20.") < page.text.index("Modern ringde 01:30.")
