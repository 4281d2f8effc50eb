"""The handler's pages as a walk at night found them: a failed submit, required fields, the way
back after withdrawing, the "expires soon" marker, and re-confirmation keeping the jour's
acknowledgement."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import HANNA, JONNA, body
from tests.portal.advisories.test_flow import FORM, _form


def _person_blocks(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<legend>Person (\d+)", html)]


def test_a_failed_submit_gives_back_the_filled_rows_with_required_fields_marked(
    jp: AdvisoryPortal,
) -> None:
    hanna = jp.client(HANNA)
    blank = hanna.get("/advisories/new")
    assert _person_blocks(blank.text) == [1, 2, 3]
    # Required fields are marked for eyes and screen readers alike.
    for label in ("plan", "legal_basis", "contact_name", "contact_phone", "valid_until"):
        marked = re.search(rf'<label for="{label}">[^<]*<span class="required"', blank.text)
        assert marked is not None, label
    assert blank.text.count("(måste fyllas i)") >= 7

    # Two persons filled, the contact missing: three blocks come back (not ten), values kept.
    bad = hanna.post("/advisories/new", data=_form(hanna, contact_name=""))
    assert bad.status_code == 422
    assert _person_blocks(bad.text) == [1, 2, 3]
    assert "Kalle Klient" in bad.text and "Sixten" in bad.text
    assert 'id="contact_name-error"' in bad.text

    # A fifth person filled in (rows 0 and 4): the blocks up to it come back, indexes kept.
    data = _form(hanna, contact_name="", **{"subjects-4-name": "Femte Person"})
    fifth = hanna.post("/advisories/new", data=data)
    assert fifth.status_code == 422
    assert _person_blocks(fifth.text) == [1, 2, 3, 4, 5]
    assert 'name="subjects-4-name"' in fifth.text and "Femte Person" in fifth.text
    assert set(FORM) <= set(data)


def test_after_withdrawing_the_handler_goes_back_to_her_own_list(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    assert (
        hanna.post(f"/api/v1/advisories/{aid}/withdraw", json={"reason": "Fel"}).status_code == 204
    )
    page = hanna.get(f"/advisories/{aid}")
    back = re.search(r'<a href="([^"]+)">← ([^<]+)</a>', page.text)
    assert back is not None and back.groups() == ("/advisories", "Aviseringar")
    assert hanna.get(back.group(1)).status_code == 200
    jour = re.search(r'<a href="([^"]+)">← ', jonna.get(f"/advisories/{aid}").text)
    assert jour is not None and jour.group(1) == "/jour/advisories"
    assert jonna.get(jour.group(1)).status_code == 200


def test_expiring_advisories_are_marked_in_the_app(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    expiring = hanna.post("/api/v1/advisories", json=body(valid_until=soon)).json()["id"]
    fine = hanna.post("/api/v1/advisories", json=body(valid_until=later)).json()["id"]
    summary = {a["id"]: a["expires_soon"] for a in hanna.get("/api/v1/advisories").json()}
    assert summary == {expiring: True, fine: False}
    for client, path in ((hanna, "/advisories"), (jonna, "/jour/advisories")):
        cards = client.get(path).text.split('<li class="card">')[1:]
        marked = {aid: "Går ut snart" in c for c in cards for aid in (expiring, fine) if aid in c}
        assert marked == {expiring: True, fine: False}, path
    detail = hanna.get(f"/advisories/{expiring}").text
    assert "Går ut snart:" in detail and "Bekräfta den om planeringen fortfarande gäller" in detail


def test_a_reconfirmation_keeps_the_jours_acknowledgement(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    ack = jonna.post(f"/api/v1/advisories/{aid}/acknowledge", json={"version": 1})
    assert ack.status_code == 201, ack.text
    r = hanna.post(f"/api/v1/advisories/{aid}/reconfirm", json={"base_version": 1})
    assert r.status_code == 201, r.text
    seen = jonna.get(f"/api/v1/advisories/{aid}").json()
    assert seen["advisory"]["version"] == 2 and seen["advisory"]["acknowledged"] is True
    # An amendment changes the content: the acknowledgement no longer covers it.
    assert (
        hanna.put(
            f"/api/v1/advisories/{aid}", json=body(plan="Ny plan", base_version=2)
        ).status_code
        == 200
    )
    assert jonna.get(f"/api/v1/advisories/{aid}").json()["advisory"]["acknowledged"] is False
