"""A draft decision is the jour's working material: no municipality reader sees it — not the
decision API, not the archive page, its JSON API, search or export — until it is sent for
signature. One rule (portal.decisions.service.archive_holders) for every reader."""

from __future__ import annotations

from contextlib import closing

from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    ANDERS,
    BOY,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.sessions import client_as


def test_a_draft_is_in_no_municipal_archive_until_it_is_submitted(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    draft = jonna.post("/api/v1/decisions", json=draft_body(known))
    assert draft.status_code == 201
    decision_id = draft.json()["id"]
    with closing(client_as(portal.url, portal.settings, ANDERS)) as anders:
        csrf = anders.cookies["csrftoken"]

        def every_reader() -> list[int]:
            search = anders.post(
                "/api/v1/archive/search",
                json={"types": ["decision"], "personal_identity_number": BOY},
            )
            assert search.status_code in (200, 201), search.text
            found = decision_id in search.text
            page_search = anders.post(
                "/archive/search",
                data={"_csrf_token": csrf, "types": ["decision"], "personal_identity_number": BOY},
            )
            return [
                anders.get(f"/api/v1/decisions/{decision_id}").status_code,
                anders.get(f"/api/v1/archive/records/decision/{decision_id}").status_code,
                anders.get(f"/archive/records/decision/{decision_id}").status_code,
                anders.post(
                    "/archive/export",
                    data={"ref": f"decision:{decision_id}", "_csrf_token": csrf},
                ).status_code,
                200 if found else 404,
                200 if decision_id in page_search.text else 404,
            ]

        assert every_reader() == [404] * 6
        for text in ("Pojke Testsson", "berusad"):
            assert text not in anders.get(f"/api/v1/archive/records/decision/{decision_id}").text
        assert jonna.post(f"/api/v1/decisions/{decision_id}/submit").status_code == 200
        assert every_reader() == [200] * 6
