"""Placements and police requests as records: in the archive (with the signed PDF checked), in
retention (anchors, in progress, culling) and in the log review's person filter."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from portal.placements import records as placements
from portal.police import records as police
from portal.police.models import PoliceRequest
from tests.portal.advisories.helpers import ANDERS, BOY, GUNILLA, HANNA, JONNA, run
from tests.portal.conftest import RunningPortal
from tests.portal.placements.helpers import register
from tests.portal.police.helpers import org_id, request_body
from tests.portal.sessions import client_as


def test_archive_retention_and_log_review_see_both(portal: RunningPortal) -> None:
    hanna = client_as(portal.url, portal.settings, HANNA)
    jonna = client_as(portal.url, portal.settings, JONNA)
    pid = register(hanna)
    r = jonna.post("/api/v1/police-requests", json=request_body(org_id(portal, "Hudiksvall")))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    for step in ("sent", "granted", "executed"):
        done = jonna.post(f"/api/v1/police-requests/{rid}/status", json={"status": step})
        assert done.status_code == 200, done.text

    # Hudiksvall's archivist opens both; the signed PDF passes the integrity check.
    anders = client_as(portal.url, portal.settings, ANDERS)
    placed = anders.get(f"/api/v1/archive/records/placement/{pid}")
    assert placed.status_code == 200, placed.text
    facts = {c["label"]: c["value"] for c in placed.json()["content"]}
    assert facts["Lagrum"] == "3 § LVU – eget beteende" and BOY in facts["Person 1"]
    asked = anders.get(f"/api/v1/archive/records/police_request/{rid}")
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["integrity_ok"] is True and len(body["files"]) == 1
    assert [v["what"] for v in body["versions"]][-1] == "Verkställd"
    # Gävle's handler has no archive role; another municipality's archive does not hold them.
    assert client_as(portal.url, portal.settings, GUNILLA).get(
        f"/api/v1/archive/records/placement/{pid}"
    ).status_code in (403, 404)

    async def check(db: Any) -> None:
        pl_life = await placements.lifecycle(db, uuid.UUID(pid))
        rq_life = await police.lifecycle(db, uuid.UUID(rid))
        assert pl_life is not None and pl_life.in_progress  # no end date: kept
        assert rq_life is not None and rq_life.in_progress is None and rq_life.objects
        index = (await db.get(PoliceRequest, uuid.UUID(rid))).pnr_index
        assert uuid.UUID(pid) in await placements.ids_about(db, index)
        assert uuid.UUID(rid) in await police.ids_about(db, index)
        # Culling the placement leaves the request (and what its check said), unlinked.
        await placements.cull(db, uuid.UUID(pid))
        assert await placements.lifecycle(db, uuid.UUID(pid)) is None
        req = await db.scalar(select(PoliceRequest).where(PoliceRequest.id == uuid.UUID(rid)))
        assert req is not None and req.placement_id is None
        await police.cull(db, uuid.UUID(rid))
        assert await police.lifecycle(db, uuid.UUID(rid)) is None

    run(portal.settings, check)
