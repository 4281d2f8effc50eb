"""The culling page over HTTP: the list, a hold, a refused hold, the confirmed run."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.base import utcnow
from portal.db.models import Organisation, User
from portal.reports.models import Report
from portal.retention.models import LegalHold
from portal.retention.service import add_months
from tests.portal.conftest import RunningPortal
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.sessions import client_as

ANDERS, HANNA = "198311099876", "196901159803"


def _old_reports(portal: RunningPortal) -> dict[str, str]:
    async def work(db: AsyncSession) -> dict[str, str]:
        orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
        author = await db.scalar(select(User.id).limit(1))
        out = {}
        for name, muni in (("hud", "Hudiksvall"), ("gavle", "Gävle")):
            r = Report(
                jour_id=orgs["Socialjouren Gävleborg"],
                author_id=author,
                municipality_id=orgs[muni],
                code_list_version="2017",
                occurred_at=add_months(utcnow(), -61) - timedelta(days=1),
                on_call=False,
                initiator_code="polisen",
                category_code="man",
                character_code="boende",
                minutes=5,
                child_involved=False,
                narrative_enc="x",
                follow_up_requested=False,
            )
            db.add(r)
            await db.flush()
            out[name] = str(r.id)
        return out

    return with_db(portal.settings, work)


def test_the_archivist_holds_runs_and_is_refused_elsewhere(portal: RunningPortal) -> None:
    ids = _old_reports(portal)
    with closing(client_as(portal.url, portal.settings, ANDERS)) as c:
        token = c.cookies["csrftoken"]
        page = c.get("/retention")
        assert page.status_code == 200
        assert "Gallringsbara nu: 1 handling." in page.text and ids["hud"][:8] in page.text
        assert ids["gavle"][:8] not in page.text  # Gävle's record is not Hudiksvall's to cull
        refused = c.post(
            "/retention/holds",
            data={
                "_csrf_token": token,
                "record_type": "report",
                "record_id": ids["gavle"],
                "reason": "x",
            },
        )
        assert refused.status_code == 404
        assert audit_entries(portal.settings, "retention.hold")[-1].outcome == "not_found"
        bad = c.post(
            "/retention/holds",
            data={
                "_csrf_token": token,
                "record_type": "report",
                "record_id": ids["hud"],
                "reason": " ",
            },
        )
        assert bad.status_code == 422 and "Ange skälet" in bad.text
        held = c.post(
            "/retention/holds",
            data={
                "_csrf_token": token,
                "record_type": "report",
                "record_id": ids["hud"],
                "reason": "Tvist",
            },
        )
        assert held.status_code == 303
        page = c.get(held.headers["location"]).text
        assert (
            "Gallringsbara nu: 0 handlingar." in page
            and "spärrad för gallring (legal hold)" in page
        )
        assert "Tvist" in page
        hold_id = page.split('action="/retention/holds/')[1].split("/lift")[0]
        ask = c.post(f"/retention/holds/{hold_id}/lift", data={"_csrf_token": token})
        assert ask.status_code == 200 and "Häva spärren?" in ask.text and "Tvist" in ask.text
        lifted = c.post(
            f"/retention/holds/{hold_id}/lift", data={"_csrf_token": token, "confirm": "yes"}
        )
        assert lifted.status_code == 303 and "flash=released" in lifted.headers["location"]
        unconfirmed = c.post("/retention/run", data={"_csrf_token": token})
        assert unconfirmed.status_code == 422 and "Bekräfta" in unconfirmed.text
        done = c.post("/retention/run", data={"_csrf_token": token, "confirm": "on"})
        assert done.status_code == 200 and "1 handling gallrades." in done.text
    culled = audit_entries(portal.settings, "retention.cull")
    assert [e.object_id for e in culled] == [ids["hud"]]
    with closing(client_as(portal.url, portal.settings, HANNA)) as hanna:
        assert hanna.get("/retention").status_code == 403


def test_a_draft_decision_not_in_the_archive_cannot_be_held(portal: RunningPortal) -> None:
    """A chair decision still a draft is the jour's working material: Hudiksvall owns it but its
    archive does not hold it yet, so Hudiksvall's archivist can neither open nor hold it — the
    hold is answered as for another organisation's record (404, `retention.hold` /
    `not_found`), and nothing is stored. Once sent for signature, it is in the archive and the
    same hold is placed."""
    from tests.portal.decisions.helpers import draft_body, jour_client, roster_with_olof

    gavle = _old_reports(portal)["gavle"]
    jonna = jour_client(portal)
    made = jonna.post("/api/v1/decisions", json=draft_body(roster_with_olof(portal)))
    assert made.status_code == 201, made.text
    draft = made.json()["id"]
    with closing(client_as(portal.url, portal.settings, ANDERS)) as c:
        token = c.cookies["csrftoken"]
        assert c.get(f"/archive/records/decision/{draft}").status_code == 404

        def hold(record_type: str, record_id: str) -> httpx.Response:
            data = {"_csrf_token": token, "record_type": record_type, "record_id": record_id}
            return c.post("/retention/holds", data={**data, "reason": "Tvist"})

        others = hold("report", gavle)
        refused = hold("decision", draft)
        assert refused.status_code == others.status_code == 404, refused.text
        assert refused.headers["content-type"] == others.headers["content-type"]
        on_page = c.post(
            f"/archive/records/decision/{draft}/hold",
            data={"_csrf_token": token, "reason": "Tvist"},
        )
        assert on_page.status_code == 404, on_page.text
        *_, other_entry, entry, page_entry = audit_entries(portal.settings, "retention.hold")
        assert other_entry.outcome == entry.outcome == page_entry.outcome == "not_found"
        assert entry.object_id == page_entry.object_id == draft
        assert entry.object_type == page_entry.object_type == "decision"
        assert "Tvist" not in c.get("/retention").text  # no hold was stored
        assert _holds(portal) == 0

        assert jonna.post(f"/api/v1/decisions/{draft}/submit").status_code == 200
        assert c.get(f"/archive/records/decision/{draft}").status_code == 200
        held = hold("decision", draft)
        assert held.status_code == 303, held.text
        assert audit_entries(portal.settings, "retention.hold")[-1].outcome == "ok"
        assert _holds(portal) == 1


def _holds(portal: RunningPortal) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(LegalHold)) or 0)

    return with_db(portal.settings, work)
