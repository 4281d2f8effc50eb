"""Three forms added in session 6 under the same checks as the journeys (issue 14): the jour unit
head's cost key (`/stats/costs`), the legal hold on the archive's record page (`#sparr`: place it,
then lift it after the confirmation) and the lift confirmation from the retention page; the
retention page's list of holds over more than one page; and the night dashboard's "Visa alla"
(the night view filtered to the shift).

Each is opened as its demo person, checked with axe-core (WCAG 2.1 A/AA), lang="sv" and no
sideways scrolling at 360 px and again at a desktop width, and at 360 px also for 44 px touch
targets and axe's heading-order and target-size rules. Each form is submitted once with the
keyboard alone (Tab to the field, type, Tab to the button, Enter) until the confirmation shows.
"""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import httpx

from tests.e2e.conftest import Demo
from tests.e2e.pages import check, login, new_page, tab_to
from tests.portal import login as http

ERIK, HANNA, ANDERS, JONNA = "198507049818", "196901159803", "198311099876", "197803129829"
BOY = "201103059893"
DESKTOP = 1280


# Every control of the page's forms and every button-styled link: its box at least 44 × 44 px
# (a text field or a button as wide as its text, at least 44 px high and wide).
_SMALL_TARGETS = """() => [...document.querySelectorAll(
        'main form button, main form input:not([type=hidden]), main form select, main a.button')]
    .filter(e => e.offsetParent !== null)
    .map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.height < 44 || r.width < 44)
    .map(([e, r]) => `${e.tagName}#${e.id} "${e.textContent.trim()}" `
                     + `${Math.round(r.width)}x${Math.round(r.height)}`)"""

# axe's rules that the WCAG tags leave out but the issue names: headings in order (best
# practice) and the target size of WCAG 2.2 (24 px; the 44 px above is ours).
_MORE_RULES = ["heading-order", "target-size", "empty-heading", "label-title-only"]


def _both_widths(page: Any, name: str) -> None:
    """The page's checks at 360 px (the context's width) and at a desktop width, then back;
    at 360 px also the 44 px touch targets and the headings' order."""
    check(page, f"{name}-360")
    small = page.evaluate(_SMALL_TARGETS)
    assert not small, f"{name}: touch targets under 44 px: {small}"
    result = page.evaluate(
        "async (rules) => await axe.run(document, {runOnly: {type: 'rule', values: rules}})",
        _MORE_RULES,
    )
    found = [(v["id"], [n["target"] for n in v["nodes"]][:5]) for v in result["violations"]]
    assert not found, f"{name}: {found}"
    page.set_viewport_size({"width": DESKTOP, "height": 800})
    check(page, f"{name}-desktop", width=DESKTOP)
    page.set_viewport_size({"width": 360, "height": 800})


def _focused(attribute: str, value: str) -> str:
    """A tab_to predicate: the focused element's `attribute` is `value`."""
    return f"e => e.getAttribute('{attribute}') === '{value}'"


def _button(text: str) -> str:
    """A tab_to predicate: the focused element is the button whose text is `text`."""
    return f"e => e.tagName === 'BUTTON' && e.textContent.trim() === '{text}'"


def _api_client(demo: Demo, personnummer: str) -> httpx.Client:
    client, _ = http.login(demo.url, personnummer)
    http.csrf_form(client)
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def test_j_the_unit_head_changes_the_cost_key_with_the_keyboard(demo: Demo, browser: Any) -> None:
    with closing(_api_client(demo, ERIK)) as erik:
        before = erik.get("/api/v1/stats/cost-key")
        assert before.status_code == 200, before.text
        key = before.json()
    page = new_page(browser)
    login(page, demo.url, ERIK)
    try:
        page.goto(f"{demo.url}/stats/costs#nyckel")
        _both_widths(page, "j1-cost-key-form")
        tab_to(page, _focused("id", "population_percent"))
        page.keyboard.press("Control+A")
        page.keyboard.type("50")
        tab_to(page, _focused("id", "annual_sek"))
        page.keyboard.press("Control+A")
        page.keyboard.type("2400000")
        tab_to(page, _button("Spara nyckeln"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.content()
        assert "Fördelningsnyckeln är sparad." in text
        assert "50 % efter folkmängd, 50 % efter använd tid; årskostnad 2 400 000 kr" in text
        _both_widths(page, "j2-cost-key-saved")
    finally:
        page.context.close()
        # The demo's other journeys see Gävleborg's key again.
        with closing(_api_client(demo, ERIK)) as erik:
            restored = erik.put(
                "/api/v1/stats/cost-key",
                json={k: key[k] for k in ("population_percent", "annual_sek", "invoicing_period")},
            )
            assert restored.status_code == 200, restored.text


def test_k_the_archivist_holds_and_lifts_from_the_record_page_and_the_retention_page(
    demo: Demo, browser: Any
) -> None:
    with closing(_api_client(demo, HANNA)) as hanna:
        r = hanna.post(
            "/api/v1/advisories",
            json={
                "subjects": [{"personal_identity_number": BOY, "name": "Kalle Klient"}],
                "plan": "Placerad hos morbror i Delsbo.",
                "instructions": "Bevilja inte akutboende.",
                "legal_basis": "sol",
                "contact_name": "Hanna Hedlund",
                "contact_phone": "070-000 00 01",
            },
        )
        assert r.status_code == 201, r.text
        record = f"/archive/records/advisory/{r.json()['id']}"
    page = new_page(browser)
    login(page, demo.url, ANDERS)
    try:
        # The record page's hold form: place a hold with the keyboard.
        page.goto(f"{demo.url}{record}#sparr")
        assert "Handlingen är inte spärrad." in page.content()
        _both_widths(page, "k1-record-hold-form")
        tab_to(page, _focused("id", "reason"))
        page.keyboard.type("Begäran från förvaltningsrätten, mål 1234-26")
        tab_to(page, _button("Spärra för gallring"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.content()
        assert "Handlingen är spärrad för gallring." in text
        assert "Begäran från förvaltningsrätten, mål 1234-26" in text
        _both_widths(page, "k2-record-held")

        # Lift it from the record page: the confirmation, then lifted.
        tab_to(page, _button("Häv spärren"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Häva spärren?" in page.content()
        _both_widths(page, "k3-record-lift-confirm")
        tab_to(page, _button("Ja, häv spärren"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.content()
        assert "Spärren är hävd." in text and "Handlingen är inte spärrad." in text
        _both_widths(page, "k4-record-lifted")

        # Held again, then lifted from the retention page's list of holds.
        page.locator("#reason").fill("Begäran från IVO")
        with page.expect_navigation():
            page.get_by_role("button", name="Spärra för gallring").click()
        page.goto(f"{demo.url}/retention")
        _both_widths(page, "k5-retention-holds")
        this_hold = (
            "e => e.tagName === 'BUTTON' && e.textContent.includes('Häv spärren')"
            f" && e.closest('li').querySelector('a[href=\"{record}#sparr\"]') !== null"
        )
        tab_to(page, this_hold, limit=200)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.content()
        assert "Häva spärren?" in text and "Begäran från IVO" in text
        _both_widths(page, "k6-retention-lift-confirm")
        tab_to(page, _button("Ja, häv spärren"))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/retention" in page.url and "Spärren är hävd." in page.content()
        assert f'href="{record}#sparr"' not in page.content()
        _both_widths(page, "k7-retention-lifted")
    finally:
        page.context.close()


HELD_FOR_PAGING = 55
"""Holds placed for the list's second page (50 a page)."""


def test_m_the_retention_page_lists_its_holds_in_pages(demo: Demo, browser: Any) -> None:
    """With more holds than one page: the retention page's list of holds under the same checks
    on its first and second page (two paged lists on one page: each its own summary, its own
    labelled navigation and link texts), reached with the keyboard; the holds are lifted after."""
    with closing(_api_client(demo, ANDERS)) as anders:
        found = anders.post(
            "/api/v1/archive/search", json={"types": ["report"], "limit": HELD_FOR_PAGING}
        )
        assert found.status_code == 201, found.status_code
        ids = [r["id"] for r in found.json()["records"]]
        assert len(ids) == HELD_FOR_PAGING, "the demo has too few reports of Hudiksvall's"
        token = http.csrf_form(anders)
        for n, record_id in enumerate(ids):
            held = anders.post(
                "/retention/holds",
                data={**token, "record_type": "report", "record_id": record_id,
                      "reason": f"Tillsynsärende {n + 1}"},
            )  # fmt: skip
            assert held.status_code == 303, held.text
    page = new_page(browser)
    login(page, demo.url, ANDERS)
    try:
        page.goto(f"{demo.url}/retention#sparrar")
        text = page.content()
        assert f"Visar 1–50 av {HELD_FOR_PAGING} aktiva spärrar, nyaste först." in text
        _both_widths(page, "m1-retention-holds-first-page")
        tab_to(
            page, "e => e.getAttribute('rel') === 'next' && e.href.includes('holds=')", limit=400
        )
        with page.expect_navigation():
            page.keyboard.press("Enter")
        text = page.content()
        assert f"Visar 51–{HELD_FOR_PAGING} av {HELD_FOR_PAGING} aktiva spärrar" in text
        assert "Tillsynsärende 1 " in text  # the oldest last
        _both_widths(page, "m2-retention-holds-second-page")
    finally:
        page.context.close()
        with closing(_api_client(demo, ANDERS)) as anders:  # the demo's other tests see none
            token = http.csrf_form(anders)
            while holds := re.findall(
                r'action="/retention/holds/([0-9a-f-]{36})/lift"', anders.get("/retention").text
            ):
                for hold_id in holds:
                    lifted = anders.post(
                        f"/retention/holds/{hold_id}/lift", data={**token, "confirm": "yes"}
                    )
                    assert lifted.status_code == 303, lifted.text


def test_l_the_night_view_filtered_to_the_shift(demo: Demo, browser: Any) -> None:
    """The night dashboard's "Visa alla" (shown when the shift has more changed advisories than
    the card lists): the jour's night view filtered to the shift, under the same checks."""
    from datetime import UTC, datetime

    from portal.advisories.queries import shift_start, since_param

    page = new_page(browser)
    login(page, demo.url, JONNA)
    try:
        page.goto(f"{demo.url}/jour/advisories?since={since_param(shift_start(datetime.now(UTC)))}")
        assert "Nya eller ändrade aviseringar" in page.content()
        _both_widths(page, "l-night-view-since-shift")
    finally:
        page.context.close()
