"""Log review: an archivist sees who read the municipality's records, by user, period, person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    ANDERS,
    BOY,
    GUNILLA,
    HANNA,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.sessions import client_as

STHLM = ZoneInfo("Europe/Stockholm")


def _period() -> dict[str, str]:
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M"
    return {
        "since": (now - timedelta(hours=1)).astimezone(STHLM).strftime(fmt),
        "until": (now + timedelta(hours=1)).astimezone(STHLM).strftime(fmt),
    }


def test_archivist_reviews_reads_by_person_and_exports_csv(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    jonna.post(f"/api/v1/decisions/{d['id']}/submit")
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert hanna.get(f"/api/v1/decisions/{d['id']}").status_code == 200
    assert d["id"] in {x["id"] for x in hanna.get("/api/v1/decisions").json()}

    anders = client_as(portal.url, portal.settings, ANDERS)
    page = anders.get("/logs")
    assert page.status_code == 200 and "Loggkontroll" in page.text
    base = {"_csrf_token": anders.cookies["csrftoken"], "org_id": str(known["Hudiksvall"])}
    shown = anders.post("/logs", data={**base, **_period(), "format": "html"})
    assert shown.status_code == 200
    assert "Hanna Hedlund" in shown.text and "Läste beslut" in shown.text
    # Every label Swedish, every time Stockholm's with its zone: no raw codes or UTC.
    assert "Skickade beslut för underskrift" in shown.text
    assert f'Ordförandebeslut <span class="hash" title="Id {d["id"]}">nr {d["id"][:8]}' in (
        shown.text
    )
    for raw in ("decision.submit", "decision.read", f"decision {d['id'][:8]}", "+00:00"):
        assert raw not in shown.text, raw
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T</td>", shown.text)
    assert not re.search(r"<td>\d{4}-\d\d-\d\dT\d\d:\d\d", shown.text)

    by_person = anders.post(
        "/logs", data={**base, **_period(), "personal_identity_number": BOY, "format": "html"}
    )
    assert "Läste beslut" in by_person.text and "Hanna Hedlund" in by_person.text
    # A list that showed the decision is about the person too (its entry has no object id)
    assert "Listade beslut" in by_person.text
    other = anders.post(
        "/logs",
        data={**base, **_period(), "personal_identity_number": "200908179799", "format": "html"},
    )
    assert "0 händelser" in other.text and "Listade beslut" in shown.text

    csv = anders.post("/logs", data={**base, **_period(), "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("Tid;Användare;Organisation;Händelse")
    assert "Hanna Hedlund;Hudiksvall;Läste beslut;Ordförandebeslut;" in csv.text
    assert ";Genomförd" in csv.text and ";ok" not in csv.text and "decision" not in csv.text

    bad = anders.post(
        "/logs", data={**base, **_period(), "personal_identity_number": "123", "format": "html"}
    )
    assert bad.status_code == 422 and "Ange ett giltigt person- eller samordningsnummer" in bad.text


def test_others_cannot_review_and_other_organisations_are_404(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    assert gunilla.get("/logs").status_code == 403
    anders = client_as(portal.url, portal.settings, ANDERS)
    wrong = anders.post(
        "/logs",
        data={
            "_csrf_token": anders.cookies["csrftoken"],
            "org_id": str(known["Gävle"]),
            **_period(),
            "format": "html",
        },
    )
    assert wrong.status_code == 404


def test_refused_reads_look_the_same_in_the_actors_own_log(portal: RunningPortal) -> None:
    """Hanna (Hudiksvall) tries a Gävle advisory that exists and an id that doesn't: her own
    organisation's review must not tell the two apart (no existence oracle)."""
    import asyncio
    import csv
    import io
    import uuid

    from sqlalchemy import select

    from portal.db.engine import make_engine, make_sessionmaker
    from portal.db.models import AuditEntry
    from tests.portal.advisories.helpers import body

    known = roster_with_olof(portal)
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    existing = gunilla.post("/api/v1/advisories", json=body()).json()["id"]
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert hanna.get(f"/api/v1/advisories/{existing}").status_code == 404
    assert hanna.get(f"/api/v1/advisories/{uuid.uuid4()}").status_code == 404

    anders = client_as(portal.url, portal.settings, ANDERS)
    review = anders.post(
        "/logs",
        data={
            "_csrf_token": anders.cookies["csrftoken"],
            "org_id": str(known["Hudiksvall"]),
            **_period(),
            "format": "csv",
        },
    )
    rows = [
        r for r in csv.reader(io.StringIO(review.text), delimiter=";") if r[1] == "Hanna Hedlund"
    ]
    refused = [r[-1] for r in rows if r[3] == "Läste avisering"]
    assert refused == ["Nekad eller fanns inte", "Nekad eller fanns inte"], rows
    page = anders.post(
        "/logs",
        data={
            "_csrf_token": anders.cookies["csrftoken"],
            "org_id": str(known["Hudiksvall"]),
            **_period(),
            "format": "html",
        },
    )
    assert "Nekad eller fanns inte" in page.text and ">Nekad<" not in page.text

    # The owner's distinction is kept in the log itself (Gävle's reviewer sees "denied").
    async def outcomes() -> list[tuple[str, object]]:
        engine = make_engine(portal.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                found = await db.execute(
                    select(AuditEntry.outcome, AuditEntry.owner_org_id).where(
                        AuditEntry.action == "advisory.read", AuditEntry.outcome != "ok"
                    )
                )
                return [(o, owner) for o, owner in found.all()]
        finally:
            await engine.dispose()

    assert sorted(asyncio.run(outcomes()), key=str) == sorted(
        [("denied", known["Gävle"]), ("not_found", None)], key=str
    )
