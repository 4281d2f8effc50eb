"""Shared set-up for decision tests: a roster with Olof on call in Hudiksvall."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import Organisation, User
from portal.pii import Vault
from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as

HANNA, GUNILLA, JONNA, ERIK = "196901159803", "196209219846", "197803129829", "198507049818"
OLOF, EVA, GUSTAV, ANDERS = "197104309831", "195806119862", "199002279850", "198311099876"
BOY = "201103059893"


async def _ids(portal: RunningPortal) -> dict[str, uuid.UUID]:
    s = portal.settings
    vault = Vault(s.keks, s.current_kek, s.blind_index_key)
    engine = make_engine(s.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            out: dict[str, uuid.UUID] = {}
            for pnr in (OLOF, EVA, GUSTAV):
                uid = await db.scalar(select(User.id).where(User.pnr_index == vault.index(pnr)))
                assert uid is not None
                out[pnr] = uid
            for name in ("Hudiksvall", "Gävle"):
                oid = await db.scalar(select(Organisation.id).where(Organisation.name == name))
                assert oid is not None
                out[name] = oid
            return out
    finally:
        await engine.dispose()


def ids(portal: RunningPortal) -> dict[str, uuid.UUID]:
    """User and organisation ids of the demo persons used here."""
    return asyncio.run(_ids(portal))


def roster_with_olof(portal: RunningPortal, start_hours_ago: int = 24) -> dict[str, uuid.UUID]:
    """Hanna posts a Hudiksvall roster: Olof on call from `start_hours_ago` for a week."""
    known = ids(portal)
    now = datetime.now(UTC)
    hanna = client_as(portal.url, portal.settings, HANNA)
    r = hanna.post(
        "/api/v1/rosters",
        json={
            "municipality_id": str(known["Hudiksvall"]),
            "entries": [
                {
                    "user_id": str(known[OLOF]),
                    "function": "chair",
                    "position": 1,
                    "valid_from": (now - timedelta(hours=start_hours_ago)).isoformat(),
                    "valid_to": (now + timedelta(days=7)).isoformat(),
                    "phone": "070-000 00 01",
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    return known


def draft_body(known: dict[str, uuid.UUID], **over: object) -> dict[str, object]:
    """A valid 6 § LVU draft taken orally by Olof just now (after the roster was posted)."""
    body: dict[str, object] = {
        "kind": "lvu6",
        "municipality_id": str(known["Hudiksvall"]),
        "oral_decision_at": datetime.now(UTC).isoformat(),
        "decision_maker_id": str(known[OLOF]),
        "subject_personal_identity_number": BOY,
        "subject_name": "Pojke Testsson",
        "facts": "Polisen påträffade pojken kl 02.10 berusad i centrum.",
        "grounds": "Påtaglig risk för att hälsan skadas; rättens beslut kan inte avvaktas.",
        "placement": "Jourhem i kommunen",
    }
    body.update(over)
    return body


def jour_client(portal: RunningPortal) -> httpx.Client:
    """Jonna, jour staff."""
    return client_as(portal.url, portal.settings, JONNA)


def signed_decision(portal: RunningPortal) -> str:
    """A 6 § LVU decision drafted by Jonna and signed by Olof through the dev IdP; its id."""
    from tests.portal.login import csrf_form, login, through_idp

    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    done = through_idp(olof, start.headers["location"], OLOF)
    assert done.status_code in (302, 303), done.text
    return str(d["id"])
