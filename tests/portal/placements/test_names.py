"""The jour finds a placement by the placed person's name (portal.lookup.names), as it finds
advisories and reports: whole words, the current version's name, the caller's visibility; a
culled placement leaves nothing in the index."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from portal.lookup.models import NameToken
from portal.pii import Vault
from portal.placements import records
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    HANNA,
    JONNA,
    OTHER_HANDLER,
    OTHER_JOUR_STAFF,
    add_second_jour,
    audit_entries,
    run,
)
from tests.portal.placements.helpers import placement, register


def _by_name(client: Any, name: str) -> list[str]:
    r = client.post("/api/v1/lookup", json={"name": name})
    assert r.status_code == 200, r.text
    return [pl["id"] for pl in r.json()["placements"]]


def _tokens_of(jp: AdvisoryPortal, pid: str) -> int:
    async def count(db: Any) -> int:
        stmt = select(func.count()).where(
            NameToken.owner_type == "placement", NameToken.owner_id == uuid.UUID(pid)
        )
        return int(await db.scalar(stmt))

    return run(jp.settings, count)


def test_the_jour_finds_a_placement_by_name(jp: AdvisoryPortal) -> None:
    add_second_jour(jp.settings)
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    pid = register(hanna, name="Sixten Placerad", legal_section="sol")
    # The same name in another jour's member municipality: each jour sees its own.
    other = register(jp.client(OTHER_HANDLER), name="Sixten Placerad")

    assert _by_name(jonna, "sixten placerad") == [pid]  # case does not matter
    assert _by_name(jonna, "PLACERAD") == [pid]  # one word is enough
    assert _by_name(jonna, "Six") == []  # whole words only
    assert _by_name(jonna, "Sixten Okänd") == []  # every word must match
    assert _by_name(jp.client(OTHER_JOUR_STAFF), "Sixten") == [other]

    # The page: the placement with its personnummer, and SoL marked as in the number lookup.
    page = jonna.post("/lookup", data={"name": "Sixten", "_csrf_token": jonna.cookies["csrftoken"]})
    assert page.status_code == 200, page.text
    assert f"/placements/{pid}" in page.text and "20110305-9893" in page.text
    assert "handräckning får inte begäras" in page.text
    # The search is audited with the placement's id, and a keyed hash instead of the name.
    entry = [e for e in audit_entries(jp.settings, "lookup") if e.object_type == "person-name"][-1]
    assert pid in entry.details["placements"]
    assert "Sixten" not in str(entry.details) + str(entry.object_id)

    # An amendment re-indexes: the old name no longer finds it, the new one does.
    renamed = placement(name="Sigge Placerad", legal_section="sol", base_version=1)
    assert hanna.put(f"/api/v1/placements/{pid}", json=renamed).status_code == 200
    assert _by_name(jonna, "Sixten") == [] and _by_name(jonna, "Sigge") == [pid]

    # Culled (retention): nothing left in the index.
    assert _tokens_of(jp, pid) == 2

    async def cull(db: Any) -> None:
        await records.cull(db, uuid.UUID(pid))

    run(jp.settings, cull)
    assert _tokens_of(jp, pid) == 0 and _by_name(jonna, "Sigge") == []


def test_placements_registered_before_the_index_are_reindexed(jp: AdvisoryPortal) -> None:
    from sqlalchemy import delete

    from portal.lookup.service import reindex_names

    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    pid = register(hanna, name="Kalle Klient")
    amended = placement(name="Karl Klient", base_version=1)
    assert hanna.put(f"/api/v1/placements/{pid}", json=amended).status_code == 200

    async def wipe(db: Any) -> None:
        await db.execute(delete(NameToken).where(NameToken.owner_type == "placement"))

    run(jp.settings, wipe)
    assert _by_name(jonna, "Karl") == []

    vault = Vault(jp.settings.keks, jp.settings.current_kek, jp.settings.blind_index_key)

    async def reindex(db: Any) -> tuple[int, int, int]:
        return await reindex_names(db, vault)

    assert run(jp.settings, reindex)[2] == 1
    assert _by_name(jonna, "Karl") == [pid]  # the current version's name
    assert _by_name(jonna, "Kalle") == []
