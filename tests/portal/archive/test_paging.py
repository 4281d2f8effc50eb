"""The archive's search results grow (a municipality's archive holds thousands of records): keyset
pages merged across the record types by (date, id), newest first, 50 at a time, with the count of
all; every page of a search is audited. The next page is the same search posted again with the
cursor (a personnummer never goes in a URL).

SQLite and PostgreSQL: reports and advisories mixed, some with the very same date, every page
walked (API and HTML), an advisory posted between page loads, the date filter, another
municipality's records never shown, a bad cursor."""

from __future__ import annotations

import re
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.portal.advisories.helpers import audit_entries
from tests.portal.conftest import RunningPortal
from tests.portal.paging import summary
from tests.portal.reports.conftest import ANDERS, GUNILLA, HANNA, JONNA
from tests.portal.reports.helpers import BARN, report_payload, unit_ids
from tests.portal.sessions import client_as

REPORTS = 40
ADVISORIES = 14
TYPES = ["report", "advisory"]


def _advisory(c: httpx.Client) -> str:
    body = {
        "subjects": [{"personal_identity_number": "20110305-9893", "name": "Kalle Klient"}],
        "plan": "Placerad hos morbror.",
        "legal_basis": "lvu",
        "contact_name": "Handläggare",
        "contact_phone": "0650-190 00",
    }
    r = c.post("/api/v1/advisories", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _api_walk(c: httpx.Client, **search: Any) -> tuple[list[dict[str, Any]], list[int], int]:
    """Every record of a search through the API's pages: rows, page sizes, the total."""
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    before = None
    while True:
        r = c.post("/api/v1/archive/search", json={**search, "before": before})
        assert r.status_code in (200, 201), r.text
        body = r.json()
        assert body["first"] == len(rows) + 1
        rows += body["records"]
        sizes.append(len(body["records"]))
        before = body["next_cursor"]
        if before is None:
            return rows, sizes, body["total"]


def _hidden(form_html: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form_html
    ):
        fields.setdefault(name, []).append(value.replace("&amp;", "&"))
    return fields


def _next_form(html: str) -> dict[str, list[str]] | None:
    """The fields of the "Nästa sida" form (the search posted again with the cursor)."""
    for form in re.findall(
        r'<form method="post" action="/archive/search" class="inline">(.*?)</form>', html, re.S
    ):
        if "Nästa sida" in form:
            fields = _hidden(form)
            fields["_csrf_token"] = re.findall(r'name="_csrf_token" value="([^"]+)"', form)
            return fields
    return None


def _key(row: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    return datetime.fromisoformat(row["date"]), uuid.UUID(row["id"])


def test_archive_results_page_across_record_types(portal: RunningPortal) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    people = {p: client_as(portal.url, portal.settings, p) for p in (JONNA, HANNA, GUNILLA, ANDERS)}
    jonna, hanna, gunilla, anders = (people[p] for p in (JONNA, HANNA, GUNILLA, ANDERS))
    with closing(jonna), closing(hanna), closing(gunilla), closing(anders):
        now = datetime.now(UTC).replace(microsecond=0)
        made: set[str] = set()
        for n in range(REPORTS):
            # Occurred n hours ago; five share one moment (the id breaks the tie).
            at = now - timedelta(hours=max(n, 5), minutes=30)
            r = jonna.post("/api/v1/reports", json=report_payload(unit, occurred_at=at.isoformat()))
            assert r.status_code == 201, r.text
            made.add(r.json()["id"])
        made |= {_advisory(hanna) for _ in range(ADVISORIES)}
        gavle = {_advisory(gunilla) for _ in range(3)}
        total = REPORTS + ADVISORIES

        # API: 9 at a time, every record once, newest first by (date, id), none of Gävle's.
        rows, sizes, count = _api_walk(anders, types=TYPES, limit=9)
        ids = [r["id"] for r in rows]
        assert set(ids) == made and len(ids) == total and count == total
        assert sizes == [9] * 6 and not gavle & set(ids)
        keys = [_key(r) for r in rows]
        assert keys == sorted(keys, reverse=True)
        assert {r["type"] for r in rows[:ADVISORIES]} == {"advisory"}

        # An advisory posted between page loads: the next page goes on where the first ended.
        first = anders.post("/api/v1/archive/search", json={"types": TYPES, "limit": 10}).json()
        fresh = _advisory(hanna)
        again = {"types": TYPES, "limit": 10, "before": first["next_cursor"]}
        second = anders.post("/api/v1/archive/search", json=again).json()
        assert [r["id"] for r in first["records"] + second["records"]] == ids[:20]
        assert second["first"] == 11 and second["total"] == total + 1
        ids = [fresh, *ids]

        # The page: the count of all, 50 shown, "Nästa sida" posts the search again.
        token = anders.cookies["csrftoken"]
        page = anders.post("/archive/search", data={"_csrf_token": token, "types": TYPES})
        assert page.status_code == 200, page.text
        assert f"{total + 1} handlingar</h2>" in page.text
        assert summary(page.text).startswith(f"Visar 1–50 av {total + 1} handlingar")
        shown = re.findall(r'<a href="/archive/records/[a-z_]+/([0-9a-f-]{36})">', page.text)
        nxt = _next_form(page.text)
        assert nxt is not None and set(nxt["types"]) == set(TYPES) and "before" in nxt
        page2 = anders.post("/archive/search", data=nxt)
        assert page2.status_code == 200, page2.text
        assert (
            summary(page2.text) == f"Visar 51–{total + 1} av {total + 1} handlingar, nyaste först."
        )
        assert _next_form(page2.text) is None and "Första sidan" in page2.text
        shown += re.findall(r'<a href="/archive/records/[a-z_]+/([0-9a-f-]{36})">', page2.text)
        assert shown == ids
        searches = audit_entries(portal.settings, "archive.search")[-2:]
        assert [(e.details["from"], e.details["shown"], e.details["hits"]) for e in searches] == [
            (1, 50, total + 1),
            (51, total + 1 - 50, total + 1),
        ]

        # "Exportera markerade" with nothing ticked on page 2: page 2 again, with the problem.
        export_form = page2.text.split('<form method="post" action="/archive/export">', 1)[1]
        fields = _hidden(export_form.split("</form>", 1)[0])
        fields["_csrf_token"] = [token]
        nothing = anders.post("/archive/export", data=fields)
        assert nothing.status_code == 422
        assert summary(nothing.text).startswith("Visar 51–")

        # The date filter: days of the record's date (Stockholm); none of the reports is today's
        # unless the night is young, so filter on a day long ago and a range around now.
        old = {"types": TYPES, "date_to": "2020-01-01"}
        assert _api_walk(anders, **old)[2] == 0
        day = datetime.now(UTC).date()
        around = {
            "types": TYPES,
            "date_from": str(day - timedelta(days=3)),
            "date_to": str(day + timedelta(days=1)),
        }
        assert [r["id"] for r in _api_walk(anders, **around)[0]] == ids

        # A cursor that is not one: 400 in Swedish, for the API and the page; a limit too large.
        bad = anders.post("/api/v1/archive/search", json={"types": TYPES, "before": "nope"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "before"
        page_bad = anders.post(
            "/archive/search", data={"_csrf_token": token, "types": TYPES, "before": "nope"}
        )
        assert page_bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in page_bad.text
        too_many = anders.post("/api/v1/archive/search", json={"types": TYPES, "limit": 500})
        assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "limit"
