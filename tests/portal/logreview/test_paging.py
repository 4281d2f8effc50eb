"""The log review grows with every read (thousands of entries a month): keyset pages by the
chain's sequence, newest first, 50 at a time, with the count of all; the next page posts the
review again (a personnummer never goes in a URL). It used to stop at 5,000 without saying so;
a CSV with more entries than it holds is now refused with a Swedish message.

SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from portal.logreview import service
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import ANDERS, GUNILLA, HANNA, ids
from tests.portal.logreview.test_logreview import _period
from tests.portal.paging import summary
from tests.portal.placements.helpers import register
from tests.portal.sessions import client_as

READS = 60


def _next(html: str) -> dict[str, str] | None:
    for form in re.findall(
        r'<form method="post" action="/logs" class="inline">(.*?)</form>', html, re.S
    ):
        if "Nästa sida" in form:
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return None


def _times(html: str) -> list[str]:
    return re.findall(r"<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T)</td>", html)


def test_the_log_review_pages_and_never_cuts_a_csv_short(
    portal: RunningPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    placement = register(hanna)
    for _ in range(READS):
        assert hanna.get(f"/api/v1/placements/{placement}").status_code == 200
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    register(gunilla)  # Gävle's log, never Hudiksvall's

    anders = client_as(portal.url, portal.settings, ANDERS)
    org = str(ids(portal)["Hudiksvall"])
    base = {"_csrf_token": anders.cookies["csrftoken"], "org_id": org, **_period()}
    first = anders.post("/logs", data={**base, "format": "html"})
    assert first.status_code == 200, first.text
    total = int(re.search(r"<h2>(\d+) händelser</h2>", first.text).group(1))  # type: ignore[union-attr]
    assert total >= READS + 1  # the reads and the registration, at least
    assert summary(first.text).startswith(f"Visar 1–50 av {total} händelser")
    assert "Gunilla" not in first.text
    rows = len(_times(first.text))
    fields = _next(first.text)
    assert rows == 50 and fields is not None and fields["org_id"] == org
    # A read between page loads is newer than every row shown: the next page goes on.
    assert hanna.get(f"/api/v1/placements/{placement}").status_code == 200
    pages = [first.text]
    while fields is not None:
        page = anders.post("/logs", data={**fields, "_csrf_token": base["_csrf_token"]})
        assert page.status_code == 200, page.text
        pages.append(page.text)
        fields = _next(page.text)
    shown = sum(len(_times(p)) for p in pages)
    # Each later page counts anew (the review's own entries and the extra read are newer, so
    # none of them is on a later page): every entry of the first count shown once.
    assert shown == total
    assert summary(pages[-1]).endswith("nyaste först.")

    # A CSV holds at most MAX_ROWS entries: more is refused in Swedish, never cut short.
    monkeypatch.setattr(service, "MAX_ROWS", 10)
    refused = anders.post("/logs", data={**base, "format": "csv"})
    assert refused.status_code == 422 and "fler än 10 ryms inte i en CSV-fil" in refused.text
    monkeypatch.setattr(service, "MAX_ROWS", 5000)
    whole = anders.post("/logs", data={**base, "format": "csv"})
    assert whole.status_code in (200, 201) and whole.headers["content-type"].startswith("text/csv")
    assert len(whole.text.strip().splitlines()) - 1 >= READS + 1

    # A cursor that is not one: 400 in Swedish.
    bad = anders.post("/logs", data={**base, "format": "html", "before": "zz"})
    assert bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in bad.text
