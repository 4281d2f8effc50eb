"""A report being written at 03:00 survives the session timeout: the page saves it as an
encrypted draft of its writer's, the form opens from it after the new login, and "Fortsätt
vara inloggad" starts the idle clock again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import WebSession
from portal.drafts.models import FormDraft
from tests.portal.conftest import RunningPortal
from tests.portal.login import csrf_form
from tests.portal.reports.conftest import ERIK, JONNA, People
from tests.portal.reports.helpers import BARN, unit_ids

SECRET = "Pojken berättade om slagen i hemmet"  # the narrative: personal data, never in clear


def _db(portal: RunningPortal, work: object) -> object:
    async def go() -> object:
        engine = make_engine(portal.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                return await work(db)  # type: ignore[operator]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_draft_is_kept_restored_and_discarded(portal: RunningPortal, people: People) -> None:
    jonna = people(JONNA)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    fields = {
        "unit_id": unit,
        "narrative": SECRET,
        "actions": ["information", "logi"],
        "minutes": "40",
    }
    saved = jonna.post("/drafts/report-new", json={"fields": {**fields, "_csrf_token": "x"}})
    assert saved.status_code == 204, saved.text

    async def stored(db: object) -> list[str]:
        rows = await db.scalars(select(FormDraft.data_enc))  # type: ignore[attr-defined]
        return list(rows)

    (blob,) = _db(portal, stored)  # type: ignore[misc]
    assert SECRET not in blob and "_csrf_token" not in blob  # encrypted, no token kept

    page = jonna.get("/reports/new").text
    assert "Ditt utkast är återställt" in page and SECRET in page
    assert 'value="information" checked' in page and 'value="logi" checked' in page
    assert 'value="40"' in page and 'data-draft="report-new"' in page
    assert SECRET not in people(ERIK).get("/reports/new").text  # another person's draft: never

    thrown = jonna.post("/drafts/report-new/discard", data=csrf_form(jonna))
    assert (
        thrown.status_code == 303 and thrown.headers["location"] == "/reports/new?draft=discarded"
    )
    again = jonna.get(thrown.headers["location"]).text
    assert SECRET not in again and "Utkastet är slängt." in again

    # Bad drafts are refused and leave nothing.
    big = jonna.post("/drafts/report-new", json={"fields": {"narrative": "x" * 70_000}})
    assert big.status_code == 422 and "för stort" in big.text
    assert jonna.post("/drafts/Rapport!", json={"fields": {}}).status_code == 422
    anonymous = httpx.post(f"{portal.url}/drafts/report-new", json={"fields": {}})
    assert anonymous.status_code in (401, 403)
    assert _db(portal, stored) == []


def test_sending_the_report_removes_its_draft(portal: RunningPortal, people: People) -> None:
    from tests.portal.reports.test_pages import _base_form

    jonna = people(JONNA)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    assert (
        jonna.post("/drafts/report-new", json={"fields": {"narrative": SECRET}}).status_code == 204
    )
    form = _base_form(jonna.cookies["csrftoken"], unit)
    form["assessment.assessment"] = "Ingen akut fara."
    form["assessment.facts"] = "Samtal med pojken."
    form["assessment.assessed_at"] = str(form["occurred_at"])
    form["assessment.assessed_by"] = "Jonna Jourström"
    form["child_involved"] = "1"
    sent = jonna.post("/reports/new", data=form)
    assert sent.status_code == 303, sent.text
    assert "Ditt utkast är återställt" not in jonna.get("/reports/new").text


def test_keepalive_restarts_the_idle_clock(portal: RunningPortal, people: People) -> None:
    jonna = people(JONNA)
    page = jonna.get("/").text
    assert 'data-session-idle="1800"' in page and "/static/js/session-timeout.js" in page

    async def age(db: object, minutes: int) -> None:
        await db.execute(  # type: ignore[attr-defined]
            update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=minutes))
        )

    async def last_seen(db: object) -> object:
        return await db.scalar(select(WebSession.last_seen_at))  # type: ignore[attr-defined]

    _db(portal, lambda db: age(db, 25))
    assert jonna.post("/auth/keepalive").status_code == 204
    seen = _db(portal, last_seen)
    assert utcnow() - seen < timedelta(minutes=1)  # type: ignore[operator]

    _db(portal, lambda db: age(db, 31))  # too late: the session has ended
    ended = jonna.post("/auth/keepalive")
    assert ended.status_code in (302, 303) and ended.headers["location"].startswith("/auth/login")
    assert jonna.post("/auth/keepalive", headers={"Accept": "application/json"}).status_code == 401


def test_a_draft_expires_after_twelve_hours_and_the_periodic_job_removes_it(
    portal: RunningPortal, people: People
) -> None:
    from portal import jobs
    from portal.drafts.service import DRAFT_LIFETIME

    jonna = people(JONNA)
    assert (
        jonna.post("/drafts/report-new", json={"fields": {"narrative": SECRET}}).status_code == 204
    )

    async def expiry(db: object) -> object:
        return await db.scalar(select(FormDraft.expires_at))  # type: ignore[attr-defined]

    left = _db(portal, expiry) - utcnow()  # type: ignore[operator]
    assert DRAFT_LIFETIME - timedelta(minutes=1) < left <= DRAFT_LIFETIME == timedelta(hours=12)

    async def expire(db: object) -> None:
        await db.execute(  # type: ignore[attr-defined]
            update(FormDraft).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    _db(portal, expire)
    page = jonna.get("/reports/new").text  # an expired draft is not offered back
    assert SECRET not in page and "Ditt utkast är återställt" not in page

    async def purge() -> None:
        engine = make_engine(portal.settings.database_url)
        try:
            await jobs.run_once(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    asyncio.run(purge())

    async def count(db: object) -> int:
        return len(list(await db.scalars(select(FormDraft.user_id))))  # type: ignore[attr-defined]

    assert _db(portal, count) == 0
