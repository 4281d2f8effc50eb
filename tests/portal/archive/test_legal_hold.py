"""Legal hold from the archive's record page (issue 14), over HTTP on both databases.

A report of Hudiksvall with a PDF attachment, five years and a month old (due for culling), is
held from its record page by Hudiksvall's archivist: the page shows the hold, the retention page
lists it and links back, the object store holds its file, culling skips it; lifting asks first,
then releases the store hold, and culling takes the record. Refusals: another municipality's
record (404, audited), roles without an archive (403), a missing reason (Swedish, nothing stored).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from contextlib import closing
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.models import Attachment
from portal.attachments.store import build_file_store
from portal.db.base import utcnow
from portal.reports.models import Report
from portal.retention.models import LegalHold
from portal.retention.service import add_months
from tests.portal.advisories.helpers import pdf_bytes
from tests.portal.conftest import RunningPortal
from tests.portal.reports.helpers import BARN, audit_entries, report_payload, unit_ids, with_db
from tests.portal.sessions import client_as

ANDERS, HANNA, JONNA = "198311099876", "196901159803", "197803129829"
BORN_10TH = "198001109811"  # fictitious; not in the research sample (5th, 15th, 25th)
REASON = "Begärd av förvaltningsrätten, mål 1234-26"
ZONED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T")


def _old_report(portal: RunningPortal, municipality: str) -> str:
    """A report to the municipality's IFO with one PDF, dated five years and a month ago (due
    for culling: its subject is born on the 10th, outside the research sample)."""
    with closing(client_as(portal.url, portal.settings, JONNA)) as jonna:
        unit = unit_ids(portal.settings)[(municipality, BARN)]
        subject = {"personal_identity_number": BORN_10TH, "name": "Test Testsson"}
        made = jonna.post("/api/v1/reports", json=report_payload(unit, subjects=[subject]))
        assert made.status_code == 201, made.text
        report_id = str(made.json()["id"])
        files = [("attachments", ("plan.pdf", pdf_bytes("Plan"), "application/pdf"))]
        added = jonna.post(f"/api/v1/reports/{report_id}/attachments", files=files)
        assert added.status_code == 201, added.text

    async def age(db: AsyncSession) -> None:
        await db.execute(
            update(Report)
            .where(Report.id == uuid.UUID(report_id))
            .values(occurred_at=add_months(utcnow(), -61))
        )

    with_db(portal.settings, age)
    return report_id


def _object_key(portal: RunningPortal, report_id: str) -> str:
    async def work(db: AsyncSession) -> str:
        key = await db.scalar(
            select(Attachment.object_id).where(Attachment.owner_id == uuid.UUID(report_id))
        )
        assert key is not None
        return key

    return with_db(portal.settings, work)


def _on_hold_in_store(portal: RunningPortal, key: str) -> bool:
    store = build_file_store(portal.settings).store
    return asyncio.run(store.lock_state(key))[1]


def _holds(portal: RunningPortal) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(LegalHold)) or 0)

    return with_db(portal.settings, work)


def _form(c: httpx.Client, **fields: str) -> dict[str, Any]:
    return {"_csrf_token": c.cookies["csrftoken"], **fields}


def test_the_archivist_holds_from_the_record_page_and_lifts_after_confirming(
    portal: RunningPortal,
) -> None:
    hud = _old_report(portal, "Hudiksvall")
    key = _object_key(portal, hud)
    page_url = f"/archive/records/report/{hud}"
    with closing(client_as(portal.url, portal.settings, ANDERS)) as c:
        # The retention list links the due record to its page, where the hold is placed.
        retention = c.get("/retention").text
        assert (
            f'href="{page_url}#sparr"' in retention and "Gallringsbara nu: 1 handling." in retention
        )
        page = c.get(page_url)
        assert page.status_code == 200
        assert (
            "Handlingen är inte spärrad." in page.text and f'action="{page_url}/hold"' in page.text
        )

        # A missing reason: a Swedish error on the record page, nothing stored or held.
        empty = c.post(f"{page_url}/hold", data=_form(c, reason="  "))
        assert empty.status_code == 422
        assert "Ange skälet till spärren (t.ex. ärendenummer)." in empty.text
        assert 'aria-invalid="true"' in empty.text
        assert _holds(portal) == 0 and not _on_hold_in_store(portal, key)
        assert not [
            e for e in audit_entries(portal.settings, "retention.hold") if e.outcome == "ok"
        ]

        held = c.post(f"{page_url}/hold", data=_form(c, reason=REASON))
        assert held.status_code == 303
        assert held.headers["location"] == f"{page_url}?flash=held#sparr"
        shown = c.get(held.headers["location"].split("#")[0]).text
        assert "Spärren är lagd." in shown  # the flash (the notice below says what it means)
        assert shown.count("Handlingen är spärrad för gallring.") == 1
        assert REASON in shown and "Anders Arkell" in shown
        assert ZONED.search(shown.split('id="sparr"')[1]), "the hold's time with its zone"
        assert f'action="{page_url}/hold/lift"' in shown
        # Holding twice is a conflict, not a second hold.
        again = c.post(f"{page_url}/hold", data=_form(c, reason="Igen"))
        assert again.status_code == 409 and "redan spärrad" in again.text
        assert _holds(portal) == 1

        # The store holds the file; the retention page lists the hold and keeps the record.
        assert _on_hold_in_store(portal, key)
        retention = c.get("/retention").text
        assert (
            "Gallringsbara nu: 0 handlingar." in retention
            and "spärrad för gallring (legal hold)" in retention
        )
        listed = retention.split("Spärrar (legal hold)")[1]
        assert f'href="{page_url}#sparr"' in listed and REASON in listed
        run = c.post("/retention/run", data=_form(c, confirm="on"))
        assert run.status_code == 200 and "0 handlingar gallrades." in run.text
        assert c.get(page_url).status_code == 200
        entry = [e for e in audit_entries(portal.settings, "retention.hold") if e.outcome == "ok"]
        assert [(e.object_type, e.object_id) for e in entry] == [("report", hud)]
        assert entry[0].actor_org_id == entry[0].owner_org_id  # acting in Hudiksvall's archive

        # Lifting asks first; only the confirming post lifts.
        ask = c.post(f"{page_url}/hold/lift", data=_form(c))
        assert ask.status_code == 200 and "Häva spärren?" in ask.text and REASON in ask.text
        assert _on_hold_in_store(portal, key)
        lifted = c.post(f"{page_url}/hold/lift", data=_form(c, confirm="yes"))
        assert lifted.status_code == 303
        assert lifted.headers["location"] == f"{page_url}?flash=released#sparr"
        shown = c.get(lifted.headers["location"].split("#")[0]).text
        assert "Spärren är hävd." in shown and "Handlingen är inte spärrad." in shown
        assert not _on_hold_in_store(portal, key)
        assert [e.object_id for e in audit_entries(portal.settings, "retention.lift")] == [hud]
        stale = c.post(f"{page_url}/hold/lift", data=_form(c, confirm="yes"))
        assert stale.status_code == 409 and "inte spärrad" in stale.text

        # Without the hold, culling takes the record and its file.
        run = c.post("/retention/run", data=_form(c, confirm="on"))
        assert "1 handling gallrades." in run.text
        assert c.get(page_url).status_code == 404
    assert [e.object_id for e in audit_entries(portal.settings, "retention.cull")] == [hud]


def test_another_municipalitys_record_and_other_roles_are_refused(portal: RunningPortal) -> None:
    hud = _old_report(portal, "Hudiksvall")
    gavle = _old_report(portal, "Gävle")
    with closing(client_as(portal.url, portal.settings, ANDERS)) as c:
        # Gävle's record answers 404 like a missing one, and the attempts are audited.
        other = f"/archive/records/report/{gavle}"
        assert c.get(other).status_code == 404
        assert c.post(f"{other}/hold", data=_form(c, reason=REASON)).status_code == 404
        refused = audit_entries(portal.settings, "retention.hold")[-1]
        assert (refused.outcome, refused.object_id) == ("not_found", gavle)
        assert c.post(f"{other}/hold/lift", data=_form(c)).status_code == 404
        refused = audit_entries(portal.settings, "retention.lift")[-1]
        assert (refused.outcome, refused.object_id) == ("not_found", gavle)
        missing = f"/archive/records/report/{uuid.uuid4()}/hold"
        assert c.post(missing, data=_form(c, reason=REASON)).status_code == 404
        # A hold of Hudiksvall, to try lifting it as someone else.
        placed = c.post(f"/archive/records/report/{hud}/hold", data=_form(c, reason=REASON))
        assert placed.status_code == 303
        hold_id = c.get("/retention").text.split('action="/retention/holds/')[1].split("/")[0]
    assert _holds(portal) == 1
    for who in (HANNA, JONNA):  # a handler and jour staff have no archive
        with closing(client_as(portal.url, portal.settings, who)) as c:
            page = f"/archive/records/report/{hud}"
            assert c.post(f"{page}/hold", data=_form(c, reason="x")).status_code == 403
            lift = c.post(f"{page}/hold/lift", data=_form(c, confirm="yes"))
            assert lift.status_code == 403
            assert c.post(f"/retention/holds/{hold_id}/lift", data=_form(c)).status_code == 403
    assert _holds(portal) == 1
    assert _on_hold_in_store(portal, _object_key(portal, hud))
    assert not audit_entries(portal.settings, "retention.lift")[1:]  # only Gävle's refusal
