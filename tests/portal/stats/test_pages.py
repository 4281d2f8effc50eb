"""Statistics and cost pages over HTTP: who sees what, suppression, exports, the period lock."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from portal.reports.models import Report
from tests.portal.conftest import RunningPortal
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.sessions import client_as
from tests.portal.stats.data import insert_reports, org_ids

ERIK, OLOF, HANNA, ANDERS, GUSTAV = (
    "198507049818",
    "197104309831",
    "196901159803",
    "198311099876",
    "199002279850",
)


@pytest.fixture
def site(portal: RunningPortal) -> Iterator[tuple[RunningPortal, dict[str, str]]]:
    def work(db: AsyncSession) -> object:
        return insert_reports(db)

    with_db(portal.settings, work)  # type: ignore[arg-type]
    orgs = with_db(portal.settings, org_ids)
    yield portal, {k: str(v) for k, v in orgs.items()}


def _client(portal: RunningPortal, pnr: str) -> httpx.Client:
    return client_as(portal.url, portal.settings, pnr)


def test_the_jour_head_sees_every_member_and_the_figures(site: tuple) -> None:
    portal, _ = site
    with closing(_client(portal, ERIK)) as c:
        page = c.get("/stats", params={"period": "2017-T1"})
        assert page.status_code == 200, page.text
        text = page.text
        assert "Socialjouren Gävleborg, Tertial 1 2017" in text
        assert "<svg" in text and "<title id=" in text  # server-side chart
        assert "1 ärenden saknar kommun." in text
        api = c.get("/api/v1/stats", params={"period": "2017-T1"}).json()
        figures = {label: value for label, value, _ in api["key_figures"]}
        assert figures["Totalt antal ärenden"] == "6"
        assert figures["Tid på ärenden, timmar"] == "4,2"
        rows = {r[0]: r for r in api["municipalities"]}
        assert rows["Hudiksvall"][1] == "3" and rows["Hudiksvall"][4] == "0,8"


def test_a_chair_sees_only_their_municipality_with_small_counts_hidden(site: tuple) -> None:
    portal, orgs = site
    with closing(_client(portal, OLOF)) as c:
        api = c.get("/api/v1/stats", params={"period": "2017-T1"}).json()
        assert api["organisation_id"] == orgs["Hudiksvall"]
        assert api["suppressed"] is True
        figures = {label: value for label, value, _ in api["key_figures"]}
        assert figures["Totalt antal ärenden"] == "<5"  # 3 cases
        assert figures["Tid på ärenden, timmar"] == "3"  # hours are not suppressed
        page = c.get("/stats", params={"period": "2017-T1"}).text
        assert "visas som &lt;5" in page
        assert "Totalt antal ärenden</th><td>&lt;5 ärenden</td>" in page
        # Another municipality: 404 like a missing one, and audited.
        before = len(audit_entries(portal.settings, "stats.read"))
        other = c.get("/stats", params={"period": "2017-T1", "org": orgs["Gävle"]})
        assert other.status_code == 404
        assert c.get("/api/v1/stats", params={"org": orgs["Gävle"]}).status_code == 404
        after = audit_entries(portal.settings, "stats.read")
        assert len(after) == before + 2 and after[-1].outcome == "not_found"
        assert c.get("/stats/costs").status_code == 403


def test_the_archivist_sees_their_figures_unsuppressed(site: tuple) -> None:
    portal, _ = site
    with closing(_client(portal, ANDERS)) as c:
        api = c.get("/api/v1/stats", params={"period": "2017-T1"}).json()
        assert api["suppressed"] is False
        figures = {label: value for label, value, _ in api["key_figures"]}
        assert figures["Totalt antal ärenden"] == "3"
    with closing(_client(portal, HANNA)) as c:  # a handler has no statistics role
        assert c.get("/stats").status_code == 403


def test_exports_carry_the_same_figures(site: tuple) -> None:
    portal, orgs = site
    with closing(_client(portal, ERIK)) as c:
        params = {"period": "2017-T1", "org": orgs["Hudiksvall"]}
        raw = c.get("/stats/export.csv", params=params)
        assert raw.status_code == 200
        assert "statistik-hudiksvall-2017-T1.csv" in raw.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig")), delimiter=";"))
        assert ["Totalt antal ärenden", "3", "ärenden"] in rows
        assert ["Ordförandebeslut 6 § LVU", "1"] in rows
        xlsx = c.get("/stats/export.xlsx", params=params)
        wb = load_workbook(io.BytesIO(xlsx.content))
        sheet = wb["Nyckeltal"]
        values = {r[0]: r[1] for r in sheet.iter_rows(min_row=2, values_only=True)}
        assert values["Totalt antal ärenden"] == 3
        assert values["Ärenden utan åtgärder"] == 1
        assert wb["Kommuner"]["A2"].value == "Hudiksvall"
    assert len(audit_entries(portal.settings, "stats.export")) == 2
    with closing(_client(portal, OLOF)) as c:  # the chair's download is suppressed like the page
        raw = c.get("/stats/export.csv", params={"period": "2017-T1"})
        assert ["Totalt antal ärenden", "<5", "ärenden"] in list(
            csv.reader(io.StringIO(raw.content.decode("utf-8-sig")), delimiter=";")
        )


def test_a_bad_period_is_a_swedish_error(site: tuple) -> None:
    portal, _ = site
    with closing(_client(portal, ERIK)) as c:
        page = c.get("/stats", params={"period": "2017-T4"})
        assert page.status_code == 422 and "tre tertial" in page.text
        problem = c.get("/api/v1/stats", params={"period": "x"})
        assert problem.status_code == 422
        assert problem.headers["content-type"].startswith("application/problem+json")


def test_costs_are_shared_and_a_locked_period_stays_frozen(site: tuple) -> None:
    portal, orgs = site
    with closing(_client(portal, ERIK)) as c:
        page = c.get("/stats/costs", params={"period": "2017-T1"})
        assert page.status_code == 200 and "Preliminärt underlag" in page.text
        before = list(
            csv.reader(
                io.StringIO(
                    c.get("/stats/costs/export.csv", params={"period": "2017-T1"}).content.decode(
                        "utf-8-sig"
                    )
                ),
                delimiter=";",
            )
        )
        hud = next(r for r in before if r[0] == "Hudiksvall")
        assert hud[2] == "180"  # minutes of reports 1, 2 and 5
        locked = c.post(
            "/stats/costs/lock", data={"period": "2017-T1", "_csrf_token": c.headers["X-CSRFToken"]}
        )
        assert locked.status_code == 303
        assert "Perioden låstes" in c.get("/stats/costs", params={"period": "2017-T1"}).text

        def late_report(db: AsyncSession) -> object:
            return _late(db, orgs["Hudiksvall"])

        with_db(portal.settings, late_report)  # type: ignore[arg-type]
        after = list(
            csv.reader(
                io.StringIO(
                    c.get("/stats/costs/export.csv", params={"period": "2017-T1"}).content.decode(
                        "utf-8-sig"
                    )
                ),
                delimiter=";",
            )
        )
        assert next(r for r in after if r[0] == "Hudiksvall") == hud
        # The statistics themselves do count the late report.
        api = c.get("/api/v1/stats", params={"period": "2017-T1", "org": orgs["Hudiksvall"]}).json()
        assert dict((a, b) for a, b, _ in api["key_figures"])["Totalt antal ärenden"] == "4"
        again = c.post(
            "/stats/costs/lock", data={"period": "2017-T1", "_csrf_token": c.headers["X-CSRFToken"]}
        )
        assert again.status_code == 409 and "redan låst" in again.text
        current = c.post(
            "/stats/costs/lock", data={"period": "2099-T1", "_csrf_token": c.headers["X-CSRFToken"]}
        )
        assert current.status_code == 409 and "inte avslutad" in current.text
    assert len(audit_entries(portal.settings, "costs.lock")) == 1


async def _late(db: AsyncSession, hudiksvall: str) -> None:
    import uuid

    from sqlalchemy import select

    from portal.db.models import User

    author = await db.scalar(select(User.id).limit(1))
    db.add(
        Report(
            jour_id=(await org_ids(db))["Socialjouren Gävleborg"],
            author_id=author,
            municipality_id=uuid.UUID(hudiksvall),
            code_list_version="2017",
            occurred_at=datetime(2017, 2, 1, 12, tzinfo=UTC),
            on_call=False,
            initiator_code="polisen",
            category_code="man",
            character_code="barn_ungdom",
            minutes=600,
            child_involved=False,
            narrative_enc="x",
            follow_up_requested=False,
        )
    )
