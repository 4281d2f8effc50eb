"""Person lookups are limited per user: 429 in Swedish past the limit, audited as "throttled",
visible to the unit head in log review; other users are unaffected; the window slides."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Organisation
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import ERIK, HANNA, JONNA
from tests.portal.sessions import client_as

LIMIT = 5


def valid_pnr(n: int) -> str:
    """A valid 12-digit personnummer for a fictitious person born 1990-01-01 (serial n)."""
    body = f"900101{n + 1:03d}"  # serial 000 is not issued
    digits = [int(c) * (2 - i % 2) for i, c in enumerate(body)]
    check = (10 - sum(d // 10 + d % 10 for d in digits) % 10) % 10
    return f"19{body}{check}"


async def _jour_id(url: str) -> uuid.UUID:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            found = await db.scalar(
                select(Organisation.id).where(Organisation.name == "Socialjouren Gävleborg")
            )
            assert found is not None
            return found
    finally:
        await engine.dispose()


async def _throttled(url: str) -> list[AuditEntry]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            rows = await db.scalars(select(AuditEntry).where(AuditEntry.outcome == "throttled"))
            return list(rows)
    finally:
        await engine.dispose()


async def _age_lookups(url: str, by: timedelta) -> None:
    engine = make_engine(url)
    try:
        # (This breaks the audit hash chain of this throw-away database; nothing checks it.)
        async with make_sessionmaker(engine)() as db, db.begin():
            for entry in await db.scalars(select(AuditEntry).where(AuditEntry.action == "lookup")):
                entry.at = entry.at - by
    finally:
        await engine.dispose()


def test_lookups_past_the_limit_are_refused_audited_and_shown_to_the_unit_head(
    portal: RunningPortal,
) -> None:
    state = portal.app.state.portal
    state.settings = replace(state.settings, lookup_limit=LIMIT, lookup_window_minutes=10)
    jonna = client_as(portal.url, portal.settings, JONNA)
    for n in range(LIMIT):
        ok = jonna.post("/api/v1/lookup", json={"personal_identity_number": valid_pnr(n)})
        assert ok.status_code == 200, ok.text
    refused = jonna.post("/api/v1/lookup", json={"personal_identity_number": valid_pnr(99)})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["status"] == 429 and "personuppslag" in problem["detail"]
    page = jonna.post(
        "/lookup",
        data={"_csrf_token": jonna.cookies["csrftoken"], "personal_identity_number": valid_pnr(98)},
    )
    assert page.status_code == 429 and "Vänta en stund" in page.text

    # Audited with the actor's own organisation as owner, and nothing about whom she sought.
    jour = asyncio.run(_jour_id(portal.settings.database_url))
    entries = asyncio.run(_throttled(portal.settings.database_url))
    assert len(entries) == 2
    assert all(e.owner_org_id == jour and e.action == "lookup" for e in entries)
    assert all(valid_pnr(99) not in str(e.details) for e in entries)

    # Another person at the jour is not affected.
    other = client_as(portal.url, portal.settings, HANNA)
    assert other.post("/api/v1/lookup", json={"personal_identity_number": valid_pnr(1)}).is_success

    # The unit head sees the refusals in the jour's log review.
    erik = client_as(portal.url, portal.settings, ERIK)
    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Stockholm"))
    review = erik.post(
        "/logs",
        data={
            "_csrf_token": erik.cookies["csrftoken"],
            "org_id": str(jour),
            "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "until": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "format": "csv",
        },
    )
    assert review.status_code in (200, 201), review.text
    rows = list(csv.reader(io.StringIO(review.text), delimiter=";"))
    assert (
        sum(1 for r in rows if r[1] == "Jonna Jourström" and r[-1] == "Stoppad: för många försök")
        == 2
    )

    # The window slides: once the lookups are older than it, she may search again.
    asyncio.run(_age_lookups(portal.settings.database_url, timedelta(minutes=11)))
    again = jonna.post("/api/v1/lookup", json={"personal_identity_number": valid_pnr(7)})
    assert again.status_code == 200
