"""The lookup finds incident reports and decisions about a person, over HTTP (API and page).

The advisory tests only ever see lookup's reports empty; here a report and a submitted decision
about one boy are written first, and the lookup must find both for those who may see them and
for no one else.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import draft_body, jour_client, roster_with_olof
from tests.portal.login import csrf_form
from tests.portal.reports.helpers import BARN, report_payload, unit_ids
from tests.portal.sessions import client_as

HANNA = "196901159803"  # handler, Hudiksvall IFO barn och unga
GUNILLA = "196209219846"  # handler, Gävle
BOY = "201103059893"  # the person both records are about (dashed below, as people type it)
OTHER = "200908179799"  # another boy, in neither record


def _lookup(client: httpx.Client, pnr: str) -> dict[str, Any]:
    r = client.post("/api/v1/lookup", json={"personal_identity_number": pnr})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_lookup_finds_the_report_and_the_decision_about_the_person(
    portal: RunningPortal,
) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    sent = jonna.post("/api/v1/reports", json=report_payload(unit))
    assert sent.status_code == 201, sent.text
    report_id = sent.json()["id"]
    drafted = jonna.post("/api/v1/decisions", json=draft_body(known))
    assert drafted.status_code == 201, drafted.text
    decision_id = drafted.json()["id"]
    assert jonna.post(f"/api/v1/decisions/{decision_id}/submit").status_code == 200
    hanna = client_as(portal.url, portal.settings, HANNA)
    gunilla = client_as(portal.url, portal.settings, GUNILLA)

    # The jour that wrote both, and the unit they concern, find both by the person's number.
    for client in (jonna, hanna):
        found = _lookup(client, "20110305-9893")
        assert found["personal_identity_number"] == BOY
        (report,) = found["reports"]
        assert report["id"] == report_id and report["municipality_name"] == "Hudiksvall"
        assert report["unit_name"] == BARN and report["child_involved"] is True
        (decision,) = found["decisions"]
        assert decision["id"] == decision_id and decision["status"] == "awaiting_signature"
        assert decision["act"] == "6 § LVU" and decision["municipality"] == "Hudiksvall"
        # Lists carry no personal data: names and texts only on the audited record.
        assert "Pelle Testsson" not in str(found) and "Pojke Testsson" not in str(found)

    # Another municipality's handler, and a lookup of another person, find neither.
    elsewhere = _lookup(gunilla, BOY)
    assert elsewhere["reports"] == [] and elsewhere["decisions"] == []
    other = _lookup(jonna, OTHER)
    assert other["reports"] == [] and other["decisions"] == []

    # The lookup page lists both, each linked to its record.
    page = jonna.post("/lookup", data={"personal_identity_number": BOY, **csrf_form(jonna)})
    assert page.status_code == 200, page.text
    reports = page.text.split("<h3>Händelserapporter</h3>", 1)[1].split("<h3>", 1)[0]
    assert re.search(rf'<a href="/[a-z]+/{report_id}">Händelserapport ', reports)
    decisions = page.text.split("<h3>Beslut om omedelbart omhändertagande</h3>", 1)[1]
    assert f'<a href="/decisions/{decision_id}">' in decisions and "(6 § LVU)" in decisions
    nothing = jonna.post("/lookup", data={"personal_identity_number": OTHER, **csrf_form(jonna)})
    assert "Inga händelserapporter som du har behörighet att se." in nothing.text
    assert "Inga beslut som du har behörighet att se." in nothing.text
