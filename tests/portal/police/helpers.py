"""Request bodies and set-up for the police-request tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import Organisation
from tests.portal.conftest import RunningPortal


async def _org(portal: RunningPortal, name: str) -> uuid.UUID:
    engine = make_engine(portal.settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            oid = await db.scalar(select(Organisation.id).where(Organisation.name == name))
            assert oid is not None
            return oid
    finally:
        await engine.dispose()


def org_id(portal: RunningPortal, name: str) -> str:
    """The id of an organisation by name."""
    return str(asyncio.run(_org(portal, name)))


def request_body(municipality: str, **overrides: Any) -> dict[str, Any]:
    """A valid request body for handräckning under 43 § LVU."""
    data: dict[str, Any] = {
        "personal_identity_number": "20110305-9893",
        "act": "lvu",
        "organisation_id": municipality,
        "name": "Kalle Klient",
        "purpose": "return",
        "whereabouts": "Hos en kompis på Storgatan 12, Hudiksvall",
        "destination": "Familjehemmet Björk, Skogsvägen 3, Delsbo",
        "grounds": "Har avvikit från familjehemmet och vägrar återvända; hot mot personal.",
        "police_station": "Polisen, stationsbefäl Hudiksvall",
        "contact_phone": "026-17 80 00",
    }
    data.update(overrides)
    return data


def awaiting_chair(portal: RunningPortal) -> str:
    """Hudiksvall's chair decides handräckning under LVU; Jonna makes a request for a boy
    placed under 3 § LVU (Hanna registered it). The request's id, awaiting the chair."""
    from tests.portal.advisories.helpers import ADA, HANNA, JONNA
    from tests.portal.placements.helpers import register
    from tests.portal.sessions import client_as

    hud = org_id(portal, "Hudiksvall")
    ada = client_as(portal.url, portal.settings, ADA)
    r = ada.put(f"/api/v1/delegation/{hud}", json={"rules": {"handrackning_lvu": "chair"}})
    assert r.status_code == 200, r.text
    register(client_as(portal.url, portal.settings, HANNA))
    jonna = client_as(portal.url, portal.settings, JONNA)
    made = jonna.post("/api/v1/police-requests", json=request_body(hud))
    assert made.status_code == 201 and made.json()["status"] == "awaiting_chair", made.text
    return str(made.json()["id"])
