"""Versioned code lists: 2016 and 2017, the 13–20 split, and the API."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from portal.codelists import service as codelists
from portal.db.engine import make_sessionmaker
from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import ADA, JONNA, People
from tests.portal.reports.helpers import BARN, report_payload, unit_ids


async def test_versions_and_mapping_in_the_database(migrated_engine: AsyncEngine) -> None:
    async with make_sessionmaker(migrated_engine)() as db:
        assert [v.version for v in await codelists.versions(db)] == ["2016", "2017"]
        assert await codelists.current_version(db) == "2017"
        old, new = await codelists.load(db, "2016"), await codelists.load(db, "2017")
        assert old.get("category", "13_20_ar") is not None
        assert new.get("category", "13_20_ar") is None
        assert new.get("category", "13_17_ar") and new.get("category", "18_20_ar")
        assert old.get("category", "13_17_ar") is None
        assert new.get("category", "18_20_ar").involves_child  # type: ignore[union-attr]
        for name in ("action", "character", "initiator"):
            assert [c.code for c in old.lists[name]] == [c.code for c in new.lists[name]]
        assert len(new.lists["action"]) == 24 and len(new.lists["character"]) == 14
        assert len(new.lists["initiator"]) == 5
        handr = new.get("action", "handr_43_lvu")
        assert handr is not None and handr.short_label == "Handr 43§ LVU"
        assert handr.label == "Handräckning enligt 43 § LVU"  # what people read
        assert new.valid_to is None and old.valid_to is not None
        to_2017 = await codelists.code_mapper(db, "2017")
        assert to_2017("category", "2016", "13_20_ar") == (
            "13_17_ar",
            "18_20_ar",
        )
        assert to_2017("category", "2016", "man") == ("man",)
        assert to_2017("action", "2016", "logi") == ("logi",)
        assert to_2017("action", "2017", "logi") == ("logi",)


def test_code_list_api_and_reports_keep_their_version(
    portal: RunningPortal, people: People
) -> None:
    body = people(ADA).get("/api/v1/codelists").json()  # any logged-in user may read them
    assert body["current_version"] == "2017"
    by_version = {v["version"]: v for v in body["versions"]}
    assert {c["code"] for c in by_version["2016"]["lists"]["category"]} >= {"13_20_ar"}
    assert "13_20_ar" not in {c["code"] for c in by_version["2017"]["lists"]["category"]}
    split = [m for m in body["mappings"] if m["from_code"] == "13_20_ar"]
    assert {m["to_code"] for m in split} == {"13_17_ar", "18_20_ar"}
    schema = people(ADA).get("/schema/openapi.json").json()
    assert "/api/v1/codelists" in schema["paths"] and "/api/v1/reports" in schema["paths"]

    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    jonna = people(JONNA)
    old_code = jonna.post("/api/v1/reports", json=report_payload(unit, category="13_20_ar"))
    assert old_code.status_code == 422
    assert {e["field"] for e in old_code.json()["errors"]} == {"category"}
    old_version = jonna.post("/api/v1/reports", json=report_payload(unit, code_list_version="2016"))
    assert old_version.status_code == 422
    assert {e["field"] for e in old_version.json()["errors"]} == {"code_list_version"}
    ok = jonna.post("/api/v1/reports", json=report_payload(unit, code_list_version="2017"))
    assert ok.status_code == 201 and ok.json()["code_list_version"] == "2017"


def test_codes_read_as_words_and_the_glossary_explains_them(
    portal: RunningPortal, people: People
) -> None:
    jonna = people(JONNA)
    lists = jonna.get("/api/v1/codelists").json()
    current = next(v for v in lists["versions"] if v["version"] == lists["current_version"])
    aterk = next(c for c in current["lists"]["action"] if c["code"] == "handr_aterk")
    assert aterk["label"] == "Handräckning för återförande"
    assert aterk["short_label"] == "Handr Återk"
    # No abbreviation of the published list reaches the report form.
    form = jonna.get("/reports/new").text
    assert "Handr Återk" not in form and "Handräckning för återförande" in form
    assert "Kodlista" not in form  # the list's version is no heading of the form (a fact of
    # the sent report, "Kodlista 2017", on its page and in the archive)
    assert "Upplysning eller hänvisning" in form and 'href="/codes"' in form
    glossary = jonna.get("/codes")
    assert glossary.status_code == 200
    assert 'Handräckning för återförande <span class="hint">(Handr Återk)</span>' in glossary.text
    for term in ("Underställning", "Beredskapstid", "Skyddsbedömning"):
        assert f"<dt>{term}</dt>" in glossary.text
    assert jonna.get("/codes", follow_redirects=False).status_code == 200
    anonymous = httpx.get(f"{portal.url}/codes", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401)  # logged-in users only
