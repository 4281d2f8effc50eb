"""The advisory flow end to end over HTTP: post, list, night view, acknowledge, amend, withdraw."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    HANNA,
    JONNA,
    audit_entries,
    body,
    in_one_shift,
    pdf_bytes,
)

FORM = {
    "subjects-0-personal_identity_number": "201103059893",
    "subjects-0-name": "Kalle Klient",
    "subjects-1-identity_unknown": "on",
    "subjects-1-description": "Kompis, cirka 16 år, kallas ”Sixten”",
    "plan": "Placerad hos morbror i Delsbo.\nSkolan måndag.",
    "alternative_plans": "Jourhem via IFO.",
    "instructions": "Bevilja inte akutboende.",
    "legal_basis": "sol",
    "contact_name": "Hanna Hedlund",
    "contact_phone": "070-123 45 67",
}


def _local_in(days: int) -> str:
    from portal.timefmt import STOCKHOLM

    return (datetime.now(STOCKHOLM) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def _form(client: Any, **extra: str) -> dict[str, str]:
    return {
        **FORM,
        "valid_until": _local_in(10),
        "_csrf_token": client.cookies["csrftoken"],
        **extra,
    }


def test_post_read_acknowledge_amend_withdraw(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    pdf = pdf_bytes()

    def post_and_look() -> tuple[str, httpx.Response]:
        # The handler posts through the page form, with an attachment ...
        r = hanna.post(
            "/advisories/new",
            data=_form(hanna),
            files={"attachments": ("Utredning Kalle.pdf", pdf, "application/pdf")},
        )
        assert r.status_code == 303, r.text
        match = re.fullmatch(r"/advisories/([0-9a-f-]{36})\?saved=1", r.headers["location"])
        assert match
        # ... and the jour looks at its night view.
        return match.group(1), jonna.get("/jour/advisories")

    aid, night = in_one_shift(post_and_look)

    listed = hanna.get("/advisories")
    assert listed.status_code == 200
    assert "Kalle Klient" in listed.text and "Inte kvitterad" in listed.text

    # The jour's night view shows it as new this shift, with its age.
    assert night.status_code == 200
    assert "Kalle Klient" in night.text and "Hudiksvall" in night.text
    assert "Ny sedan passets början" in night.text and "(nyss)" in night.text

    page = jonna.get(f"/advisories/{aid}")
    assert page.status_code == 200
    assert "Bevilja inte akutboende." in page.text
    assert "frivillig enligt SoL: handräckning (polisens hjälp) får inte begäras" in page.text
    assert "Identitet okänd" in page.text and "Sixten" in page.text
    assert "Kvittera version 1" in page.text
    assert re.search(r"Giltig till <strong>\d{4}-\d\d-\d\d \d\d:\d\d</strong>", page.text)

    # Download: same bytes, saved rather than shown, audited.
    doc = jonna.get(f"/api/v1/advisories/{aid}").json()
    (attachment,) = doc["attachments"]
    assert attachment["content_type"] == "application/pdf" and attachment["size"] == len(pdf)
    file = jonna.get(f"/advisories/{aid}/attachments/{attachment['id']}")
    assert file.status_code == 200 and file.content == pdf
    assert file.headers["content-type"].startswith("application/pdf")
    assert file.headers["content-disposition"] == (
        "attachment; filename=\"Utredning Kalle.pdf\"; filename*=UTF-8''Utredning%20Kalle.pdf"
    )
    downloads = audit_entries(jp.settings, "attachment.download")
    assert [d.object_id for d in downloads] == [attachment["id"]]

    # The jour acknowledges; the handler sees who and when.
    r = jonna.post(
        f"/advisories/{aid}/acknowledge",
        data={"version": "1", "_csrf_token": jonna.cookies["csrftoken"]},
    )
    assert r.status_code == 303
    seen = hanna.get(f"/api/v1/advisories/{aid}").json()
    assert seen["advisory"]["acknowledged"] is True
    (ack,) = seen["acknowledgements"]
    assert ack["acknowledged_by"] == "Jonna Jourström" and ack["version"] == 1
    assert "kvitterad av Jonna Jourström" in hanna.get(f"/advisories/{aid}").text

    # Amend: a new version; the old one stays readable; the acknowledgement no longer covers it.
    r = hanna.put(f"/api/v1/advisories/{aid}", json=body(plan="Ny plan: mormor", base_version=1))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    stale = hanna.put(f"/api/v1/advisories/{aid}", json=body(plan="Annan plan", base_version=1))
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["detail"].startswith("Aviseringen har ändrats av någon annan")
    now = hanna.get(f"/api/v1/advisories/{aid}").json()
    assert now["plan"] == "Ny plan: mormor" and [v["version"] for v in now["versions"]] == [2, 1]
    assert now["advisory"]["acknowledged"] is False
    old = hanna.get(f"/api/v1/advisories/{aid}/versions/1").json()
    assert old["plan"] == "Placerad hos morbror i Delsbo.\nSkolan måndag."
    assert "Du ser version 1" in jonna.get(f"/advisories/{aid}/versions/1").text

    # Stale amend through the page keeps the typed text and says why.
    r = hanna.post(f"/advisories/{aid}/amend", data=_form(hanna, base_version="1", plan="Min text"))
    assert r.status_code == 409
    assert "Aviseringen har ändrats av någon annan" in r.text and "Min text" in r.text

    # One-click re-confirmation: version 3, same content, 14 more days.
    r = hanna.post(
        f"/advisories/{aid}/reconfirm",
        data={"base_version": "2", "_csrf_token": hanna.cookies["csrftoken"]},
    )
    assert r.status_code == 303
    now = hanna.get(f"/api/v1/advisories/{aid}").json()
    assert now["shown_version"] == {**now["shown_version"], "version": 3, "kind": "reconfirmed"}
    assert now["plan"] == "Ny plan: mormor"
    until = datetime.fromisoformat(now["valid_until"])
    assert timedelta(days=13, hours=23) < until - datetime.now(UTC) <= timedelta(days=14)

    # Withdraw: gone from the night view, marked on the record, no more changes.
    r = hanna.post(f"/api/v1/advisories/{aid}/withdraw", json={"reason": "Flyttat till Gävle"})
    assert r.status_code == 204
    assert "Kalle Klient" not in jonna.get("/jour/advisories").text
    gone = jonna.get(f"/api/v1/advisories/{aid}").json()
    assert (
        gone["advisory"]["status"] == "withdrawn"
        and gone["withdraw_reason"] == "Flyttat till Gävle"
    )
    assert hanna.put(f"/api/v1/advisories/{aid}", json=body(base_version=3)).status_code == 409

    reads = audit_entries(jp.settings, "advisory.read")
    assert reads and all(e.object_id == aid and e.outcome == "ok" for e in reads)


def test_api_create_list_acknowledge(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    r = hanna.post(
        "/api/v1/advisories",
        json=body(
            valid_until=(datetime.now(UTC) + timedelta(days=3)).isoformat(),
            subjects=[{"identity_unknown": True, "description": "Kvinna, ca 30 år"}],
        ),
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    (row,) = jonna.get("/api/v1/advisories").json()
    assert row["id"] == aid and row["subjects"][0]["personal_identity_number"] is None
    assert row["police_assistance_lawful"] is True and row["expired"] is False
    assert hanna.get("/api/v1/advisories").json()[0]["id"] == aid  # default view for a handler
    r = jonna.post(f"/api/v1/advisories/{aid}/acknowledge", json={})
    assert r.status_code == 201 and r.json()["version"] == 1
    again = jonna.post(f"/api/v1/advisories/{aid}/acknowledge", json={"version": 1})
    assert again.status_code == 201  # idempotent
    assert len(hanna.get(f"/api/v1/advisories/{aid}").json()["acknowledgements"]) == 1
    # Only the jour acknowledges; the sender is refused (it can see the record: 403, not 404).
    assert hanna.post(f"/api/v1/advisories/{aid}/acknowledge", json={}).status_code == 403


def test_openapi_lists_the_advisory_api(jp: AdvisoryPortal) -> None:
    schema = jp.client(HANNA).get("/schema/openapi.json").json()
    paths = schema["paths"]
    for path, method in (
        ("/api/v1/advisories", "get"),
        ("/api/v1/advisories", "post"),
        ("/api/v1/advisories/{advisory_id}", "put"),
        ("/api/v1/advisories/{advisory_id}/withdraw", "post"),
        ("/api/v1/advisories/{advisory_id}/acknowledge", "post"),
        ("/api/v1/advisories/{advisory_id}/attachments", "post"),
        ("/api/v1/advisories/{advisory_id}/attachments/{attachment_id}", "get"),
        ("/api/v1/lookup", "post"),
    ):
        assert method in paths[path], (path, method)
    assert "AdvisoryIn" in str(schema["components"]) and "LookupOut" in str(schema["components"])
    assert not any(p.startswith(("/advisories", "/jour", "/lookup")) for p in paths)


def test_the_shift_starts_at_eight_and_at_sixteen_stockholm_time() -> None:
    from portal.advisories.queries import shift_start
    from portal.timefmt import STOCKHOLM

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)

    assert shift_start(at("2026-12-04T07:59:59")) == at("2026-12-03T16:00")
    assert shift_start(at("2026-12-04T08:00:00")) == at("2026-12-04T08:00")
    assert shift_start(at("2026-12-04T15:59:59")) == at("2026-12-04T08:00")
    assert shift_start(at("2026-12-04T16:00:00")) == at("2026-12-04T16:00")
    assert shift_start(at("2026-12-05T00:30:00")) == at("2026-12-04T16:00")
    # The night the clocks go back: 06:30 UTC is 07:30 CET, 07:30 UTC is 08:30 CET.
    assert shift_start(datetime(2026, 10, 25, 6, 30, tzinfo=UTC)) == at("2026-10-24T16:00")
    assert shift_start(datetime(2026, 10, 25, 7, 30, tzinfo=UTC)) == at("2026-10-25T08:00")
