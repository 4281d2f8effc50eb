"""Bad advisory input: Swedish field errors on pages, problem details in the API, nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from portal.advisories.models import Advisory, AdvisoryVersion
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import HANNA, body, run


def _count(jp: AdvisoryPortal, model: Any) -> int:
    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(model)))

    return run(jp.settings, count)


def _errors(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return {e["field"]: e["detail"] for e in r.json()["errors"]}


def test_api_field_errors(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    errors = _errors(hanna.post("/api/v1/advisories", json={}))
    assert set(errors) == {
        "subjects-0-personal_identity_number",
        "plan",
        "contact_name",
        "contact_phone",
    }
    assert errors["plan"] == "Beskriv planeringen."

    bad = body(
        subjects=[
            {"personal_identity_number": "20110305-9890", "name": "Kalle"},
            {"identity_unknown": True},
        ],
        valid_until=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    )
    errors = _errors(hanna.post("/api/v1/advisories", json=bad))
    assert errors["subjects-0-personal_identity_number"].startswith("Ange ett giltigt person-")
    assert errors["subjects-1-description"] == "Beskriv personen när identiteten är okänd."
    assert errors["valid_until"] == "Giltig till måste ligga i framtiden."

    far = body(valid_until=(datetime.now(UTC) + timedelta(days=200)).isoformat())
    assert "180 dagar" in _errors(hanna.post("/api/v1/advisories", json=far))["valid_until"]

    wrong_type = hanna.post("/api/v1/advisories", json=body(legal_basis="polis"))
    assert wrong_type.status_code == 400
    assert wrong_type.headers["content-type"].startswith("application/problem+json")
    assert _count(jp, Advisory) == 0


def test_amend_reconfirm_withdraw_errors_change_nothing(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    assert "plan" in _errors(
        hanna.put(f"/api/v1/advisories/{aid}", json=body(plan="", base_version=1))
    )
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = hanna.post(
        f"/api/v1/advisories/{aid}/reconfirm", json={"base_version": 1, "valid_until": past}
    )
    assert "valid_until" in _errors(r)
    assert "reason" in _errors(
        hanna.post(f"/api/v1/advisories/{aid}/withdraw", json={"reason": " "})
    )
    doc = hanna.get(f"/api/v1/advisories/{aid}").json()
    assert doc["advisory"]["version"] == 1 and doc["advisory"]["status"] == "active"
    assert _count(jp, AdvisoryVersion) == 1


def test_page_shows_accessible_field_errors(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    form = hanna.get("/advisories/new")
    assert form.status_code == 200
    assert '<label for="plan">' in form.text and 'type="datetime-local"' in form.text
    r = hanna.post(
        "/advisories/new",
        data={
            "_csrf_token": hanna.cookies["csrftoken"],
            "subjects-0-personal_identity_number": "12345",
            "subjects-0-name": "Kalle Klient",
            "valid_until": "2020-01-01T10:00",
            "legal_basis": "none",
        },
    )
    assert r.status_code == 422
    page = r.text
    assert '<div class="error-summary" role="alert"' in page
    for field in ("subjects-0-personal_identity_number", "plan", "contact_phone", "valid_until"):
        assert f'href="#{field}"' in page, field
        assert f'id="{field}-error"' in page, field
    assert (
        'id="plan" name="plan" rows="5" required aria-invalid="true" aria-describedby="plan-error"'
        in page
    )
    assert "Giltig till måste ligga i framtiden." in page
    assert 'value="Kalle Klient"' in page  # what was typed is kept
    assert _count(jp, Advisory) == 0
