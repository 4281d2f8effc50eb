"""The jour's start page is a night dashboard: what changed since the shift started, what waits
for a signature, what waits for a receipt, who is on call, and the jour's own number."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories import service as advisories
from portal.advisories.content import AdvisoryDraft, SubjectDraft
from portal.advisories.models import Advisory
from portal.advisories.queries import DASHBOARD_LIMIT, shift_start
from portal.db.base import utcnow
from portal.db.models import User
from portal.home.night import age
from portal.pii import Vault
from portal.principal import Principal, membership_views
from portal.timefmt import STOCKHOLM
from tests.portal.advisories.helpers import BOY, audit_entries, body, in_one_shift, run
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import HANNA, draft_body, jour_client, roster_with_olof
from tests.portal.paging import walk, walk_pages
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


def _away_from_a_shift_change() -> None:
    """Wait out a shift change (08:00/16:00) due within a minute or just past: the records the
    test makes must all be "this shift" when the dashboard is read."""
    now = datetime.now(UTC)
    if shift_start(now - timedelta(minutes=1)) != shift_start(now + timedelta(minutes=1)):
        time.sleep(125)


async def _many_this_shift(db: AsyncSession, vault: Vault, count: int) -> tuple[list[str], str]:
    """`count` advisories posted this shift (a millisecond apart), one posted before the shift
    and amended tonight, one posted before the shift and untouched but expiring tomorrow; the
    ids of the changed ones, most recently changed first, and the untouched one's id."""
    hanna_user = await db.scalar(select(User).where(User.pnr_index == vault.index(HANNA)))
    hanna = Principal(hanna_user.id, HANNA, "test", await membership_views(db, hanna_user.id))
    now = utcnow()
    earlier = shift_start(now) - timedelta(hours=1)

    def draft(days: int) -> AdvisoryDraft:
        return AdvisoryDraft(
            subjects=[SubjectDraft(personal_identity_number=BOY, name="Kalle Klient")],
            plan="Placerad hos morbror.", instructions="Bevilja inte akutboende.",
            legal_basis="lvu", contact_name="Hanna Hedlund", contact_phone="0650-190 00",
            valid_until=now + timedelta(days=days),
        )  # fmt: skip

    made = [
        (now - timedelta(milliseconds=k), await advisories.create(
            db, vault, hanna, draft(10), now=now - timedelta(milliseconds=k)
        ))
        for k in range(count)
    ]  # fmt: skip
    amended = await advisories.create(db, vault, hanna, draft(10), now=earlier)
    amended_at = now - timedelta(microseconds=500)  # between the first two posted tonight
    await db.execute(update(Advisory).where(Advisory.id == amended).values(changed_at=amended_at))
    made.append((amended_at, amended))
    untouched = await advisories.create(db, vault, hanna, draft(1), now=earlier)
    order = sorted(made, key=lambda m: (m[0], m[1]), reverse=True)
    return [str(i) for _, i in order], str(untouched)


def test_the_dashboard_lists_its_cap_of_changed_advisories_and_links_to_the_rest(
    portal: RunningPortal,
) -> None:
    """More advisories new or changed this shift than the dashboard lists: it says "Visar 20 av
    58", links to the night view filtered to the shift, whose pages hold all 58 (and not the
    untouched one); the API takes the same `since`. One statement still (see
    test_night_dashboard_statements.py); the audit entry names exactly the ids listed."""
    settings = portal.settings
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    extra = 37  # with the cap of 20, the filtered view has two pages of 50
    _away_from_a_shift_change()
    expected, untouched = run(
        settings, lambda db: _many_this_shift(db, vault, DASHBOARD_LIMIT + extra)
    )
    total = DASHBOARD_LIMIT + extra + 1
    jonna = jour_client(portal)
    page = jonna.get("/")
    assert page.status_code == 200, page.text
    card = page.text.split("Nya eller ändrade aviseringar", 1)[1].split("</li>\n    <li", 1)[0]
    shown = re.findall(r'<li><a href="/advisories/([0-9a-f-]{36})">', card)
    assert shown == expected[:DASHBOARD_LIMIT]
    assert f"Visar {DASHBOARD_LIMIT} av {total} nya eller ändrade sedan passet började" in card
    assert "<strong>1</strong> går ut inom två dygn." in card
    link = re.search(r'<a href="(/jour/advisories\?since=[^"]+)">Visa alla</a>', card)
    assert link is not None, card
    since = parse_qs(urlsplit(link.group(1)).query)["since"][0]
    assert datetime.fromisoformat(since) == shift_start(datetime.now(UTC))
    # The dashboard's audit entry names exactly what it listed.
    (listed,) = audit_entries(settings, "advisory.list")[-1:]
    assert listed.details == {"scope": "jour", "advisories": expected[:DASHBOARD_LIMIT]}

    # "Visa alla": the rest is on the filtered view's pages ("Nästa sida" keeps the filter).
    ids, lines = walk_pages(jonna, link.group(1), r'<h2><a href="/advisories/([0-9a-f-]{36})">')
    assert ids == expected and untouched not in ids
    assert lines == [
        f"Visar 1–50 av {total} aviseringar, senast ändrade först."
        " Listan fortsätter på nästa sida.",
        f"Visar 51–{total} av {total} aviseringar, senast ändrade först.",
    ]
    # The same in the API, also with the shift's start as Stockholm time without a zone.
    api_ids, sizes, count = walk(
        jonna, "/api/v1/advisories", {"view": "jour", "since": since, "limit": 25}
    )
    assert (api_ids, sizes, count) == (expected, [25, 25, total - 50], str(total))
    local = datetime.fromisoformat(since).astimezone(STOCKHOLM).replace(tzinfo=None)
    r = jonna.get("/api/v1/advisories", params={"view": "jour", "since": local.isoformat()})
    assert r.headers["x-total-count"] == str(total)
    # Unfiltered, the untouched one is there too.
    r = jonna.get("/api/v1/advisories", params={"view": "jour", "limit": 1})
    assert r.headers["x-total-count"] == str(total + 1)
    # A `since` that is not a time is the client's mistake, on the page and in the API.
    assert jonna.get("/jour/advisories", params={"since": "igår"}).status_code == 400
    bad = jonna.get("/api/v1/advisories", params={"view": "jour", "since": "igår"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
