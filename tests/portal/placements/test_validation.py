"""Bad placement input: Swedish field errors on pages, problem details in the API, nothing
stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from portal.placements.models import Placement
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import HANNA, JONNA, run
from tests.portal.placements.helpers import placement


def _errors(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return {e["field"]: e["detail"] for e in r.json()["errors"]}


def _count(jp: AdvisoryPortal) -> int:
    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(Placement)))

    return run(jp.settings, count)


def test_api_field_errors(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    errors = _errors(hanna.post("/api/v1/placements", json={}))
    assert set(errors) == {
        "personal_identity_number",
        "name",
        "legal_section",
        "place_kind",
        "place_name",
        "starts_on",
    }
    assert errors["legal_section"] == "Välj lagrum för placeringen."
    bad = placement(
        personal_identity_number="20110305-9890",
        legal_section="lvu-99",
        place_phone="ring mig",
        starts_on="2026-05-01",
        ends_on="2026-04-01",
    )
    errors = _errors(hanna.post("/api/v1/placements", json=bad))
    assert errors["personal_identity_number"].startswith("Ange ett giltigt person-")
    assert set(errors) == {"personal_identity_number", "legal_section", "place_phone", "ends_on"}
    assert errors["ends_on"] == "Slutdatum kan inte ligga före startdatum."
    wrong_type = hanna.post("/api/v1/placements", json=placement(starts_on="igår"))
    assert wrong_type.status_code == 400
    assert wrong_type.headers["content-type"].startswith("application/problem+json")
    # Jour staff don't keep the register.
    assert jp.client(JONNA).post("/api/v1/placements", json=placement()).status_code == 403
    assert _count(jp) == 0


def test_page_flow_and_errors(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    csrf = {"_csrf_token": hanna.cookies["csrftoken"]}
    assert hanna.get("/placements/new").status_code == 200
    form = {**placement(), "starts_on": "2026-13-40", "name": "", **csrf}
    r = hanna.post("/placements/new", data=form)
    assert r.status_code == 422
    assert "Ange datum som ÅÅÅÅ-MM-DD." in r.text and "Ange personens namn." in r.text
    assert 'value="Familjehemmet Björk"' in r.text  # what was typed is kept
    assert _count(jp) == 0

    r = hanna.post("/placements/new", data={**placement(), **csrf})
    assert r.status_code == 303, r.text
    path = r.headers["location"].split("?")[0]
    page = hanna.get(path)
    assert page.status_code == 200
    assert "3 § LVU – eget beteende" in page.text and "Familjehemmet Björk" in page.text
    assert "Placeringsregister" in hanna.get("/placements").text

    amend = hanna.get(f"{path}/amend")
    assert amend.status_code == 200 and 'name="base_version" value="1"' in amend.text
    changed = {**placement(legal_section="sol"), "base_version": "1", **csrf}
    r = hanna.post(f"{path}/amend", data=changed)
    assert r.status_code == 303
    page = hanna.get(path).text
    assert "Frivillig placering enligt SoL" in page and "Version 2" in page
    stale = hanna.post(f"{path}/amend", data={**changed, "base_version": "1"})
    assert stale.status_code == 409 and "version 2" in stale.text

    jonna = jp.client(JONNA)
    assert jonna.get(path).status_code == 200
    assert jonna.get(f"{path}/amend").status_code == 403
    found = jonna.post(
        "/lookup",
        data={
            "personal_identity_number": "20110305-9893",
            "_csrf_token": jonna.cookies["csrftoken"],
        },
    )
    assert found.status_code == 200 and "Familjehemmet Björk" in found.text
    assert "handräckning får inte begäras" in found.text
