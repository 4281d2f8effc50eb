"""Issue 15's weekend assignment across shifts, in Chromium at 360 px, against `jourpost demo`
with its clock moved by libfaketime (stopped and started again for each shift):

- Friday 17:00: Hanna (Hudiksvall) sends a home visit due Sunday 20:00; Jonna, on the evening
  shift, sees it on her start page, accepts it and writes a handover note.
- Saturday 10:00: Erik, on the next shift, finds it open on his start page with Jonna's note,
  and acknowledges the note.
- Sunday 11:00: still open; Erik reports it done. Hanna sees it done, with the note.

Every page passes axe (WCAG 2.1 A/AA), lang="sv" and no horizontal scrolling at 360 px.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.timefmt import STOCKHOLM
from tests.e2e.pages import check, login, new_page
from tests.servers.demo import running_demo
from tests.servers.net import free_port

pytestmark = pytest.mark.slow

HANNA, JONNA, ERIK = "196901159803", "197803129829", "198507049818"


def _next_friday_evening(now: datetime) -> datetime:
    """17:00 Stockholm time on the first Friday at least a day ahead."""
    day = (now + timedelta(days=1)).date()
    while day.weekday() != 4:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 17, tzinfo=STOCKHOLM)


def _offset(now: datetime, then: datetime) -> str:
    """A libfaketime offset in whole seconds from now to `then`."""
    return f"+{int((then - now).total_seconds())}"


def _start_page_card(page: Any, card_id: str) -> str:
    return str(page.locator(f"#{card_id}").inner_text())


def test_a_weekend_assignment_across_shifts(browser: Any, tmp_path: Path) -> None:
    data, port = tmp_path / "demo" / "data", free_port()
    now = datetime.now(STOCKHOLM)
    friday = _next_friday_evening(now)
    saturday, sunday = friday + timedelta(hours=17), friday + timedelta(hours=42)
    sunday_due = (friday + timedelta(days=2)).replace(hour=20).strftime("%Y-%m-%dT%H:%M")

    # Friday evening.
    with running_demo(data, port, faketime=_offset(now, friday)) as url:
        hanna = new_page(browser)
        login(hanna, url, HANNA)
        hanna.goto(f"{url}/assignments/new")
        check(hanna, "w1-assignment-form")
        hanna.get_by_role("button", name="Skicka till socialjouren").click()
        hanna.wait_for_selector("[role=alert]")
        assert hanna.locator("[aria-invalid=true]").count() >= 2
        check(hanna, "w2-assignment-form-errors")
        hanna.select_option("[name=kind]", "visit")
        hanna.fill("[name=task]", "Hembesök lördag och söndag kväll hos mamma och Kalle.")
        hanna.fill("[name=due_at]", sunday_due)
        hanna.fill("[name=personal_identity_number]", "20110305-9893")
        hanna.fill("[name=subject_name]", "Kalle Klient")
        hanna.fill("[name=requester_name]", "Hanna Hedlund")
        hanna.fill("[name=contact_phone]", "0650-190 00")
        hanna.get_by_role("button", name="Skicka till socialjouren").click()
        hanna.wait_for_url(re.compile(r".*/assignments/[0-9a-f-]{36}\?saved=1"))
        assignment = hanna.url.split("/assignments/", 1)[1].split("?", 1)[0]
        assert "Skickat – inte accepterat" in hanna.content()
        check(hanna, "w3-assignment-sent")

        jonna = new_page(browser)
        login(jonna, url, JONNA)
        card = _start_page_card(jonna, "open-assignments")
        assert "Hembesök, Hudiksvall" in card and "Inte mottaget" in card
        check(jonna, "w4-friday-dashboard")
        jonna.goto(f"{url}/assignments/{assignment}")
        check(jonna, "w5-assignment-at-the-jour")
        jonna.get_by_role("button", name="Ta emot uppdraget").click()
        jonna.wait_for_url(re.compile(r".*\?saved=1"))
        assert "Accepterat – pågår" in jonna.content()
        jonna.goto(f"{url}/jour/handover")
        check(jonna, "w6-handover-page")
        jonna.fill("[name=body]", "Hembesöket hos Kalle (Hudiksvall) är inte gjort – lördag kväll.")
        jonna.get_by_role("button", name="Spara överlämningen").click()
        jonna.wait_for_url(re.compile(r".*/jour/handover\?saved=1"))

    # Saturday morning: the next shift.
    with running_demo(data, port, faketime=_offset(now, saturday)) as url:
        erik = new_page(browser)
        login(erik, url, ERIK)
        card = _start_page_card(erik, "open-assignments")
        assert "Hembesök, Hudiksvall" in card and "mottaget av Jonna" in card
        handover = _start_page_card(erik, "handover")
        assert "Hembesöket hos Kalle" in handover
        check(erik, "w7-saturday-dashboard")
        erik.locator("#handover li", has_text="Hembesöket hos Kalle").get_by_role(
            "button", name="Jag har läst"
        ).click()
        erik.wait_for_url(f"{url}/")
        assert "Läst" in _start_page_card(erik, "handover")

    # Sunday: still open; Erik carries it out and reports it.
    with running_demo(data, port, faketime=_offset(now, sunday)) as url:
        erik = new_page(browser)
        login(erik, url, ERIK)
        assert "Hembesök, Hudiksvall" in _start_page_card(erik, "open-assignments")
        erik.goto(f"{url}/assignments/{assignment}")
        erik.get_by_label("Utfört", exact=True).check()
        erik.fill("[name=note]", "Besök lördag 19:00 och söndag 10:30. Mamma och Kalle hemma.")
        erik.get_by_role("button", name="Spara avrapporteringen").click()
        erik.wait_for_url(re.compile(r".*\?saved=1"))
        check(erik, "w8-assignment-done")
        erik.goto(f"{url}/")
        assert f"/assignments/{assignment}" not in erik.content()

        hanna = new_page(browser)
        login(hanna, url, HANNA)
        hanna.goto(f"{url}/assignments")
        assert "Utfört" in hanna.content()
        check(hanna, "w9-municipality-list")
        hanna.goto(f"{url}/assignments/{assignment}")
        body = hanna.content()
        assert "Besök lördag 19:00 och söndag 10:30." in body and "Erik" in body
        check(hanna, "w10-municipality-sees-done")
