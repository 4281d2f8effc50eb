"""Report lists grow (~2,400 reports a year from one jour): keyset pages, totals, filters.

The sent list used to stop silently at 500; now every list pages by (sent time, id), newest
first, and says how many there are."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, report_payload, unit_ids

REPORTS = 60


def _pages(client: object, params: dict[str, str]) -> tuple[list[str], list[int]]:
    """Follow the API's Link headers; the ids in order and the size of each page."""
    ids: list[str] = []
    sizes: list[int] = []
    url: str | None = "/api/v1/reports"
    query: dict[str, str] | None = params
    while url:
        r = client.get(url, params=query)  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        assert r.headers["x-total-count"] == str(REPORTS)
        ids += [x["id"] for x in r.json()]
        sizes.append(len(r.json()))
        link = r.headers.get("link")
        url, query = (re.match(r"<([^>]+)>", link).group(1), None) if link else (None, None)  # type: ignore[union-attr]
    return ids, sizes


def test_report_lists_page_filter_and_count(portal: RunningPortal, people: People) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    jonna, hanna = people(JONNA), people(HANNA)
    made = []
    for _ in range(REPORTS):
        r = jonna.post("/api/v1/reports", json=report_payload(unit))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    newest_first = list(reversed(made))

    # API: 25 at a time, every report once, newest first, for both boxes.
    ids, sizes = _pages(hanna, {"box": "inbox", "limit": "25"})
    assert ids == newest_first and sizes == [25, 25, 10]
    ids, _ = _pages(jonna, {"box": "sent", "limit": "200"})
    assert ids == newest_first

    # Pages: 50, then "Visa äldre" to the last 10.
    first = hanna.get("/reports/inbox")
    assert first.status_code == 200
    assert first.text.count('<td data-label="Skickad">') == 50
    assert f"Listan visar {REPORTS} rapporter" in first.text and f"{REPORTS} olästa" in first.text
    older = re.search(r'href="(/reports/inbox\?show=all&amp;before=[^"]+)">Visa äldre', first.text)
    assert older is not None
    second = hanna.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count('<td data-label="Skickad">') == 10 and "Visa äldre" not in second.text
    shown = re.findall(r'href="/reports/([0-9a-f-]{36})"', first.text + second.text)
    assert shown == newest_first

    # Filters: Hanna opens one and acknowledges another.
    assert hanna.get(f"/api/v1/reports/{made[0]}").status_code == 200
    assert hanna.post(f"/api/v1/reports/{made[1]}/acknowledge", json={}).status_code == 200
    unread = hanna.get("/api/v1/reports", params={"box": "inbox", "show": "unread", "limit": 200})
    assert unread.status_code == 200, unread.text
    assert made[0] not in [x["id"] for x in unread.json()]
    assert unread.headers["x-total-count"] == str(REPORTS - 2)  # reading both, acknowledging one
    open_ = jonna.get("/api/v1/reports", params={"box": "sent", "show": "unacknowledged"})
    assert open_.headers["x-total-count"] == str(REPORTS - 1)
    page = jonna.get("/reports/sent?show=unacknowledged")
    assert f"{REPORTS - 1} inte kvitterade" in page.text and made[1] not in page.text
    assert '<strong aria-current="page">Inte kvitterade</strong>' in page.text

    # Bad paging input is the client's mistake, in Swedish.
    bad = hanna.get("/api/v1/reports", params={"before": "igår"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "before"
    assert hanna.get("/api/v1/reports", params={"limit": "0"}).status_code == 400
    assert hanna.get("/api/v1/reports", params={"show": "allt"}).status_code == 400
    next_link = parse_qs(urlsplit(first.headers.get("link", "") or "x").query)
    assert next_link == {}  # pages carry their links in the HTML, not a header
