"""The placement register end to end (FR-B8): a handler registers and amends, the jour finds
the placement by personnummer, history is kept, every read is audited."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from portal.placements.models import Placement, PlacementVersion
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import BOY, BOY17, HANNA, JONNA, audit_entries, run
from tests.portal.placements.helpers import placement, register


def _count(jp: AdvisoryPortal, model: Any) -> int:
    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(model)))

    return run(jp.settings, count)


def test_register_amend_and_jour_lookup(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    pid = register(hanna)

    r = hanna.get(f"/api/v1/placements/{pid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["placement"]["status"] == "active"
    assert body["content"]["legal_basis"] == "lvu"
    assert body["content"]["legal_section_label"] == "3 § LVU – eget beteende"
    assert body["content"]["personal_identity_number"] == BOY
    assert body["placement"]["organisation_name"] == "Hudiksvall"

    # A move to an institution under a new section: version 2, version 1 kept.
    moved = placement(legal_section="lvu-6", place_kind="hvb", place_name="HVB Lärkan",
                      base_version=1)  # fmt: skip
    r = hanna.put(f"/api/v1/placements/{pid}", json=moved)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    stale = hanna.put(f"/api/v1/placements/{pid}", json=placement(base_version=1))
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert "version 2" in stale.json()["detail"]

    d = hanna.get(f"/api/v1/placements/{pid}").json()
    assert d["content"]["place_name"] == "HVB Lärkan"
    assert [v["version"] for v in d["versions"]] == [2, 1]
    old = hanna.get(f"/api/v1/placements/{pid}/versions/1").json()
    assert old["shown_version"] == 1 and old["content"]["place_name"] == "Familjehemmet Björk"
    assert hanna.get(f"/api/v1/placements/{pid}/versions/3").status_code == 404

    # The jour finds it by personnummer (any format), with its legal basis.
    found = jonna.post("/api/v1/lookup", json={"personal_identity_number": "110305-9893"})
    assert found.status_code == 200, found.text
    (pl,) = found.json()["placements"]
    assert pl["id"] == pid and pl["version"] == 2
    assert pl["content"]["legal_basis"] == "lvu" and pl["content"]["place_name"] == "HVB Lärkan"
    other = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY17}).json()
    assert other["placements"] == []
    # The jour reads it but can't change it.
    assert jonna.get(f"/api/v1/placements/{pid}").status_code == 200
    r = jonna.put(f"/api/v1/placements/{pid}", json=placement(base_version=2))
    assert r.status_code == 403
    assert jonna.get("/api/v1/placements").status_code == 403

    # Ended long ago: no longer in the lookup; ended recently: shown, marked ended.
    ended = placement(ends_on=(date.today() - timedelta(days=40)).isoformat(), base_version=2)
    assert hanna.put(f"/api/v1/placements/{pid}", json=ended).status_code == 200
    gone = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY}).json()
    assert gone["placements"] == []
    recent = placement(ends_on=(date.today() - timedelta(days=2)).isoformat(), base_version=3)
    assert hanna.put(f"/api/v1/placements/{pid}", json=recent).status_code == 200
    (pl,) = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY}).json()[
        "placements"
    ]
    assert pl["status"] == "ended" and pl["status_label"] == "Avslutad"

    assert _count(jp, Placement) == 1 and _count(jp, PlacementVersion) == 4
    assert [e.outcome for e in audit_entries(jp.settings, "placement.create")] == ["ok"]
    amends = [e.outcome for e in audit_entries(jp.settings, "placement.amend")]
    assert sorted(amends) == ["denied", "ok", "ok", "ok"]  # the jour's attempt is on record
    reads = audit_entries(jp.settings, "placement.read")
    assert len(reads) == 4 and all(e.object_id == pid and e.outcome == "ok" for e in reads)
    lookups = audit_entries(jp.settings, "lookup")
    assert pid in lookups[0].details["placements"]
    assert BOY not in str([e.details for e in lookups])


def test_list_is_the_municipalitys_own_and_audited(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    first = register(hanna)
    second = register(hanna, personal_identity_number=BOY17, name="Olle Klient",
                      legal_section="sol", place_kind="jourhem")  # fmt: skip
    rows = hanna.get("/api/v1/placements").json()
    assert {r["id"] for r in rows} == {first, second}
    (entry,) = audit_entries(jp.settings, "placement.list")
    assert set(entry.details["placements"]) == {first, second}


def test_pnr_is_encrypted_at_rest(jp: AdvisoryPortal) -> None:
    pid = register(jp.client(HANNA))

    async def raw(db: Any) -> list[str]:
        row = (await db.execute(select(PlacementVersion))).scalar_one()
        return [row.pnr_enc, row.content_enc, row.pnr_index]

    stored = run(jp.settings, raw)
    assert pid
    assert not any(BOY in s or "Kalle" in s or "Björk" in s for s in stored)
