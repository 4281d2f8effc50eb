"""The jour's start page is a night dashboard: what changed since the shift started, what waits
for a signature, what waits for a receipt, who is on call, and the jour's own number."""

from __future__ import annotations

import re
from datetime import timedelta

from portal.home.night import age
from tests.portal.advisories.helpers import body, in_one_shift
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import HANNA, draft_body, jour_client, roster_with_olof
from tests.portal.sessions import client_as


def test_the_jours_start_page_shows_the_night(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)  # a new roster for Hudiksvall, not yet acknowledged
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = jour_client(portal)
    decision = jonna.post("/api/v1/decisions", json=draft_body(known)).json()["id"]
    assert jonna.post(f"/api/v1/decisions/{decision}/submit").status_code == 200

    def post_and_look() -> tuple[str, str]:
        advisory = hanna.post("/api/v1/advisories", json=body()).json()["id"]
        return advisory, jonna.get("/").text

    advisory, page = in_one_shift(post_and_look)  # "new since the shift started"
    night = page.split('<section class="night"', 1)[1].split("</section>", 1)[0]
    assert "Passet började" in night and 'href="tel:0260000000"' in night
    changed = night.split("Nya eller ändrade aviseringar", 1)[1].split("</li>\n    <li", 1)[0]
    assert f'href="/advisories/{advisory}"' in changed and "Inte kvitterad" in changed
    waiting = night.split("Beslut som väntar på underskrift", 1)[1].split("</li>\n    <li", 1)[0]
    assert f'href="/decisions/{decision}"' in waiting and "Olof Ordén" in waiting
    assert re.search(r"muntligt beslut för \d+ min sedan", waiting)
    assert re.search(r"<strong>1</strong> ordförandelista</a> är inte kvitterad\.", night)
    assert re.search(r"Hudiksvall: Olof Ordén, <a href=\"tel:\d+\">", night)

    # Handlers and chairs have no dashboard; their start pages are unchanged.
    assert '<section class="night"' not in hanna.get("/").text


def test_waiting_times_read_naturally() -> None:
    assert age(timedelta(minutes=25)) == "25 min"
    assert age(timedelta(hours=3, minutes=5)) == "3 tim 5 min"
    assert age(timedelta(days=3, hours=1)) == "3 dygn"
