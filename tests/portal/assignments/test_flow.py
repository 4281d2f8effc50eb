"""The assignment flow over HTTP (API and pages) on both databases: each transition, bad input,
wrong states, and what the municipality sees afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from portal.assignments.models import Assignment
from portal.db.base import utcnow
from portal.notify.models import OutboxMail
from portal.timefmt import format_local
from tests.portal.advisories.helpers import (
    ERIK,
    GUNILLA,
    HANNA,
    JONNA,
    OLOF,
    audit_entries,
    iso,
    run,
)
from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as


def assignment(**overrides: Any) -> dict[str, Any]:
    """A valid assignment request body (a weekend home visit)."""
    data: dict[str, Any] = {
        "kind": "visit",
        "task": "Hembesök lördag kväll: kontrollera att mamma och barn är hemma.",
        "personal_identity_number": "20110305-9893",
        "subject_name": "Kalle Klient",
        "requester_name": "Hanna Hedlund",
        "contact_phone": "0650-190 00",
        "report_back": "Ring Hanna måndag 08:15 om något hänt.",
        "due_at": iso(timedelta(days=2)),
    }
    data.update(overrides)
    return data


def _csrf(c: httpx.Client) -> dict[str, str]:
    return {"_csrf_token": c.cookies["csrftoken"]}


def _count(portal: RunningPortal, model: Any) -> int:
    async def count(db: Any) -> int:
        from sqlalchemy import func, select

        return int(await db.scalar(select(func.count()).select_from(model)) or 0)

    return run(portal.settings, count)


def test_each_transition_over_the_api(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    erik = client_as(portal.url, portal.settings, ERIK)

    # Bad input: problem details with every field, nothing stored.
    bad = hanna.post(
        "/api/v1/assignments",
        json=assignment(task=" ", due_at=iso(-timedelta(hours=1)), personal_identity_number="1"),
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"task", "due_at", "personal_identity_number"}
    assert _count(portal, Assignment) == 0
    # Only handlers send; the jour cannot.
    assert jonna.post("/api/v1/assignments", json=assignment()).status_code == 403

    r = hanna.post("/api/v1/assignments", json=assignment())
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    sent = jonna.get(f"/api/v1/assignments/{aid}").json()["assignment"]
    assert sent["status"] == "sent" and sent["personal_identity_number"] == "201103059893"
    assert sent["task"].startswith("Hembesök") and not sent["overdue"]
    assert [a["id"] for a in jonna.get("/api/v1/assignments").json()] == [aid]

    # Outcome before acceptance, and acceptance by the municipality, are refused.
    early = jonna.post(f"/api/v1/assignments/{aid}/outcome", json={"outcome": "done", "note": "x"})
    assert early.status_code == 409 and "inte avrapporteras" in early.json()["title"] + early.text
    assert hanna.post(f"/api/v1/assignments/{aid}/accept").status_code == 403

    assert jonna.post(f"/api/v1/assignments/{aid}/accept").status_code == 204
    assert jonna.post(f"/api/v1/assignments/{aid}/accept").status_code == 409
    accepted = hanna.get(f"/api/v1/assignments/{aid}").json()["assignment"]
    assert accepted["status"] == "accepted" and accepted["accepted_by"]

    # A colleague on the next shift carries it out; the note is required.
    empty = erik.post(f"/api/v1/assignments/{aid}/outcome", json={"outcome": "done", "note": " "})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "note"
    done = erik.post(
        f"/api/v1/assignments/{aid}/outcome",
        json={"outcome": "done", "note": "Besök 19:30. Mamma och Kalle hemma, lugnt."},
    )
    assert done.status_code == 204, done.text
    seen = hanna.get(f"/api/v1/assignments/{aid}").json()
    assert seen["assignment"]["status"] == "done"
    assert seen["outcome_note"] == "Besök 19:30. Mamma och Kalle hemma, lugnt."
    assert seen["assignment"]["outcome_by"] and seen["assignment"]["outcome_at"]
    assert (
        hanna.post(f"/api/v1/assignments/{aid}/withdraw", json={"reason": "x"}).status_code == 409
    )

    # Not done, with why.
    other = hanna.post("/api/v1/assignments", json=assignment(kind="call")).json()["id"]
    assert jonna.post(f"/api/v1/assignments/{other}/accept").status_code == 204
    not_done = jonna.post(
        f"/api/v1/assignments/{other}/outcome",
        json={"outcome": "not_done", "note": "Ingen svarade på tre samtal."},
    )
    assert not_done.status_code == 204
    assert hanna.get(f"/api/v1/assignments/{other}").json()["assignment"]["status"] == "not_done"

    # Withdrawn by the municipality: then the jour can't accept it.
    third = hanna.post("/api/v1/assignments", json=assignment(kind="check")).json()["id"]
    assert (
        jonna.post(f"/api/v1/assignments/{third}/withdraw", json={"reason": "x"}).status_code == 403
    )
    assert (
        hanna.post(f"/api/v1/assignments/{third}/withdraw", json={"reason": ""}).status_code == 422
    )
    assert (
        hanna.post(f"/api/v1/assignments/{third}/withdraw", json={"reason": "Löst"}).status_code
        == 204
    )
    assert jonna.post(f"/api/v1/assignments/{third}/accept").status_code == 409

    # The municipality's list shows every state; the jour's open list none of them now.
    states = {a["id"]: a["status"] for a in hanna.get("/api/v1/assignments").json()}
    assert states == {aid: "done", other: "not_done", third: "withdrawn"}
    assert "Öppna uppdrag (0)" in jonna.get("/").text

    # Every transition audited, by the acting organisation's person.
    for action, n in (("assignment.create", 3), ("assignment.accept", 2),
                      ("assignment.report", 2), ("assignment.withdraw", 1)):  # fmt: skip
        ok = [e for e in audit_entries(portal.settings, action) if e.outcome == "ok"]
        assert len(ok) == n, action
    reads = audit_entries(portal.settings, "assignment.read")
    assert {e.object_id for e in reads} >= {aid, other}

    # The sending unit's mailbox was told (link only), the jour's of each new one.
    async def mails(db: Any) -> list[tuple[str, str]]:
        from sqlalchemy import select

        return [(m.template, m.link_path) for m in await db.scalars(select(OutboxMail))]

    sent_mail = run(portal.settings, mails)
    assert ("assignment_update", f"/assignments/{aid}") in sent_mail
    assert ("new_assignment", f"/assignments/{aid}") in sent_mail


def test_the_pages_walk_the_flow(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)

    form = hanna.get("/assignments/new")
    assert form.status_code == 200 and 'name="due_at"' in form.text
    bad = hanna.post("/assignments/new", data={"task": "", "due_at": "igår", **_csrf(hanna)})
    assert bad.status_code == 422
    assert "Beskriv vad jouren ska göra." in bad.text and 'href="#due_at"' in bad.text
    assert _count(portal, Assignment) == 0

    fields = assignment()
    fields["due_at"] = "2099-01-01T20:00"  # beyond 14 days
    too_far = hanna.post("/assignments/new", data={**fields, **_csrf(hanna)})
    assert too_far.status_code == 422 and "högst 14 dagar" in too_far.text
    del fields["due_at"]
    fields["due_at"] = format_local(utcnow() + timedelta(days=1), "%Y-%m-%dT%H:%M")
    r = hanna.post("/assignments/new", data={**fields, **_csrf(hanna)}, follow_redirects=False)
    assert r.status_code == 303
    path = r.headers["location"].split("?")[0]
    aid = path.rsplit("/", 1)[1]

    start = jonna.get("/").text
    card = start.split('id="open-assignments"', 1)[1].split("</li>\n    <li", 1)[0]
    assert f'href="/assignments/{aid}"' in card and "Inte mottaget" in card
    page = jonna.get(path).text
    assert "Ta emot uppdraget" in page and "Kalle Klient (20110305-9893)" in page
    assert (
        jonna.post(f"{path}/accept", data=_csrf(jonna), follow_redirects=False).status_code == 303
    )
    page = jonna.get(path).text
    assert "Avrapportera" in page and "Ta emot uppdraget" not in page
    missing = jonna.post(f"{path}/report", data={"outcome": "done", "note": "", **_csrf(jonna)})
    assert missing.status_code == 422 and "Beskriv vad som gjordes." in missing.text
    ok = jonna.post(
        f"{path}/report",
        data={"outcome": "not_done", "note": "Ingen öppnade.", **_csrf(jonna)},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    seen = hanna.get(path).text
    assert "Inte utfört" in seen and "Ingen öppnade." in seen and "Återkalla" not in seen
    listing = hanna.get("/assignments").text
    assert f'href="/assignments/{aid}"' in listing and "Inte utfört" in listing


def test_other_roles_and_tenants_get_404_and_are_audited(portal: RunningPortal) -> None:
    from tests.portal.advisories.helpers import OTHER_HANDLER, OTHER_JOUR_STAFF, add_second_jour

    add_second_jour(portal.settings)
    hanna = client_as(portal.url, portal.settings, HANNA)
    aid = hanna.post("/api/v1/assignments", json=assignment()).json()["id"]
    actions = {
        "read": lambda c, a: c.get(f"/api/v1/assignments/{a}"),
        "accept": lambda c, a: c.post(f"/api/v1/assignments/{a}/accept"),
        "report": lambda c, a: c.post(
            f"/api/v1/assignments/{a}/outcome", json={"outcome": "done", "note": "x"}
        ),
        "withdraw": lambda c, a: c.post(f"/api/v1/assignments/{a}/withdraw", json={"reason": "x"}),
        "page": lambda c, a: c.get(f"/assignments/{a}"),
    }
    denied = 0
    for who in (GUNILLA, OLOF, OTHER_HANDLER, OTHER_JOUR_STAFF):
        c = client_as(portal.url, portal.settings, who)
        for name, call in actions.items():
            r = call(c, aid)
            assert r.status_code == 404, (who, name, r.status_code)
            assert "Kalle" not in r.text and "Hembesök" not in r.text
            denied += 1
    entries = [
        e
        for action in ("assignment.read", "assignment.accept", "assignment.report",
                       "assignment.withdraw")
        for e in audit_entries(portal.settings, action)
        if e.outcome == "denied"
    ]  # fmt: skip
    assert len(entries) == denied
    assert all(e.object_id == aid and e.owner_org_id is not None for e in entries)
    # Lists: the other jour's staff sees nothing of it, Gävle's handler neither.
    other = client_as(portal.url, portal.settings, OTHER_JOUR_STAFF)
    assert other.get("/api/v1/assignments").json() == []
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    assert gunilla.get("/api/v1/assignments").json() == []
    assert "Kalle" not in other.get("/").text


def test_the_lookup_shows_open_assignments_about_the_person(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    aid = hanna.post("/api/v1/assignments", json=assignment()).json()["id"]
    hanna.post("/api/v1/assignments", json=assignment(personal_identity_number="", subject_name=""))
    found = jonna.post("/api/v1/lookup", json={"personal_identity_number": "201103059893"})
    assert found.status_code == 200, found.text
    assert [a["id"] for a in found.json()["assignments"]] == [aid]
    page = jonna.post(
        "/lookup",
        data={
            "personal_identity_number": "20110305-9893",
            "_csrf_token": jonna.cookies["csrftoken"],
        },
    ).text
    assert f'href="/assignments/{aid}"' in page and "Hembesök från Hudiksvall" in page
    (entry,) = audit_entries(portal.settings, "lookup")[-1:]
    assert entry.details["assignments"] == [aid]
    # Another municipality's handler finds nothing of it.
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    other = gunilla.post("/api/v1/lookup", json={"personal_identity_number": "201103059893"})
    assert other.json()["assignments"] == []
