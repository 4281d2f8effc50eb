"""Bad input answers clear Swedish field errors (422 problem details) and stores nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.models import Organisation, Unit
from portal.reports.models import Report, ReportSubject
from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, report_payload, unit_ids, with_db

FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()
LONG_AGO = (datetime.now(UTC) - timedelta(days=800)).isoformat()

CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("unknown category", {"category": "nope"}, {"category"}),
    ("abolished 2016 code", {"category": "13_20_ar"}, {"category"}),
    ("unknown action", {"actions": ["logi", "hittepa"]}, {"actions"}),
    ("no action", {"actions": []}, {"actions"}),
    ("unknown initiator", {"initiator": "grannen"}, {"initiator"}),
    ("missing character", {"character": ""}, {"character"}),
    ("old code list version", {"code_list_version": "2016"}, {"code_list_version"}),
    ("negative minutes", {"minutes": -1}, {"minutes"}),
    ("absurd minutes", {"minutes": 100000}, {"minutes"}),
    ("missing minutes", {"minutes": None}, {"minutes"}),
    (
        "invalid personnummer",
        {"subjects": [{"personal_identity_number": "20110305-9890", "name": "A"}]},
        {"subjects[0].personal_identity_number"},
    ),
    (
        "personnummer missing without unknown flag",
        {"subjects": [{"personal_identity_number": "", "name": "A"}]},
        {"subjects[0].personal_identity_number"},
    ),
    (
        "unknown identity with a number",
        {"subjects": [{"personal_identity_number": "201103059893", "identity_unknown": True}]},
        {"subjects[0].personal_identity_number"},
    ),
    ("no subjects", {"subjects": []}, {"subjects"}),
    (
        "missing name",
        {"subjects": [{"personal_identity_number": "201103059893"}]},
        {"subjects[0].name"},
    ),
    ("future time", {"occurred_at": FUTURE}, {"occurred_at"}),
    ("time far back", {"occurred_at": LONG_AGO}, {"occurred_at"}),
    ("missing time", {"occurred_at": None}, {"occurred_at"}),
    ("empty narrative", {"narrative": "   "}, {"narrative"}),
    (
        "child without assessment",
        {"assessment": None},
        {
            "assessment.assessment",
            "assessment.facts",
            "assessment.assessed_at",
            "assessment.assessed_by",
        },
    ),
    (
        "assessment partly missing",
        {
            "assessment": {
                "assessment": "Ingen akut fara.",
                "facts": "",
                "assessed_at": None,
                "assessed_by": "J",
            }
        },
        {"assessment.facts", "assessment.assessed_at"},
    ),
    (
        "child category but no child flag",
        {"child_involved": False, "assessment": None},
        {"child_involved"},
    ),
    ("follow-up without urgency", {"follow_up_urgency": ""}, {"follow_up_urgency"}),
    ("follow-up unknown urgency", {"follow_up_urgency": "igår"}, {"follow_up_urgency"}),
    ("unknown unit", {"unit_id": str(uuid.uuid4())}, {"unit_id"}),
    ("no destination", {"unit_id": None}, {"unit_id"}),
    (
        "unit and other municipality",
        {"other_municipality": "Uppsala"},
        {"unit_id"},
    ),
]


def _count_reports(db: AsyncSession) -> Any:
    async def work() -> tuple[int, int]:
        reports = await db.scalar(select(func.count()).select_from(Report))
        subjects = await db.scalar(select(func.count()).select_from(ReportSubject))
        return int(reports or 0), int(subjects or 0)

    return work()


def test_every_bad_input_is_refused_with_field_errors(
    portal: RunningPortal, people: People
) -> None:
    jonna = people(JONNA)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    for name, change, fields in CASES:
        r = jonna.post("/api/v1/reports", json=report_payload(unit, **change))
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        got = {e["field"] for e in body["errors"]}
        assert got == fields, (name, got)
        assert all(e["detail"] and e["detail"][0].isupper() for e in body["errors"]), name
    assert with_db(portal.settings, _count_reports) == (0, 0)  # nothing half-stored


def test_units_outside_the_jour_are_refused(portal: RunningPortal, people: People) -> None:
    async def outsiders(db: AsyncSession) -> list[str]:
        other_jour = Organisation(name="Socialjouren Dalarna", kind="jour")
        db.add(other_jour)
        await db.flush()
        created = []
        for name, jour_id in (("Uppsala", None), ("Falun", other_jour.id)):
            org = Organisation(name=name, kind="municipality", jour_id=jour_id)
            db.add(org)
            await db.flush()
            unit = Unit(organisation_id=org.id, name=BARN, mailbox="ifo@example.org")
            db.add(unit)
            await db.flush()
            created.append(str(unit.id))
        return created

    jonna = people(JONNA)
    units = unit_ids(portal.settings)
    jour_unit = units[("Socialjouren Gävleborg", "Socialjouren")]
    for unit in [jour_unit, *with_db(portal.settings, outsiders)]:
        r = jonna.post("/api/v1/reports", json=report_payload(unit))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit_id"
    # Not a jour worker: a handler cannot write reports at all.
    assert (
        people(HANNA)
        .post("/api/v1/reports", json=report_payload(units[("Hudiksvall", BARN)]))
        .status_code
        == 403
    )
    # Malformed JSON types are refused by the schema with problem details.
    wrong_type = jonna.post(
        "/api/v1/reports", json=report_payload(units[("Hudiksvall", BARN)], minutes="many")
    )
    assert wrong_type.status_code == 400
    assert wrong_type.headers["content-type"].startswith("application/problem+json")
    assert with_db(portal.settings, _count_reports) == (0, 0)


def test_addendum_to_a_missing_report_is_404(portal: RunningPortal, people: People) -> None:
    r = people(JONNA).post(f"/api/v1/reports/{uuid.uuid4()}/addenda", json={"text": "Hej"})
    assert r.status_code == 404
    assert r.json()["title"] == "Hittades inte"


def test_unauthenticated_api_is_401(portal: RunningPortal) -> None:
    import httpx

    r = httpx.get(f"{portal.url}/api/v1/reports")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
