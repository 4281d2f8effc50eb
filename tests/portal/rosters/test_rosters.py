"""On-call roster: versions kept by the municipality, acknowledged by the jour, tenancy."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Organisation, User
from portal.pii import Vault
from portal.rosters import service
from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as

HANNA, GUNILLA, JONNA = "196901159803", "196209219846", "197803129829"
OLOF, EVA, GUSTAV, ANDERS = "197104309831", "195806119862", "199002279850", "198311099876"


async def _ids(portal: RunningPortal) -> dict[str, uuid.UUID]:
    s = portal.settings
    vault = Vault(s.keks, s.current_kek, s.blind_index_key)
    engine = make_engine(s.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            out = {}
            for pnr in (OLOF, EVA, GUSTAV):
                out[pnr] = await db.scalar(
                    select(User.id).where(User.pnr_index == vault.index(pnr))
                )
            for name in ("Hudiksvall", "Gävle"):
                out[name] = await db.scalar(
                    select(Organisation.id).where(Organisation.name == name)
                )
            return out
    finally:
        await engine.dispose()


def _entry(
    user_id: uuid.UUID, function: str, position: int, hours: tuple[int, int]
) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "user_id": str(user_id),
        "function": function,
        "position": position,
        "valid_from": (now + timedelta(hours=hours[0])).isoformat(),
        "valid_to": (now + timedelta(hours=hours[1])).isoformat(),
        "phone": "070-000 00 01",
    }


def test_roster_version_on_call_and_acknowledgement(portal: RunningPortal) -> None:
    ids = asyncio.run(_ids(portal))
    hanna = client_as(portal.url, portal.settings, HANNA)
    body = {
        "municipality_id": str(ids["Hudiksvall"]),
        "entries": [
            _entry(ids[EVA], "substitute", 2, (-1, 48)),
            _entry(ids[OLOF], "chair", 1, (-1, 48)),
            _entry(ids[OLOF], "chair", 1, (48, 96)),
        ],
    }
    created = hanna.post("/api/v1/rosters", json=body)
    assert created.status_code == 201, created.text
    version = created.json()
    assert version["number"] == 1 and version["acknowledgements"] == []

    jonna = client_as(portal.url, portal.settings, JONNA)
    on_call = {row["municipality"]: row for row in jonna.get("/api/v1/rosters/on-call").json()}
    assert len(on_call) == 10  # every member municipality, with or without a roster
    hud = on_call["Hudiksvall"]
    assert [e["name"] for e in hud["on_call"]] == ["Olof Ordén", "Eva Ersson"]
    assert hud["acknowledged"] is False
    assert on_call["Gävle"]["version_id"] is None

    page = jonna.get("/rosters/on-call")
    assert page.status_code == 200 and "Olof Ordén" in page.text and "inte kvitterad" in page.text

    ack = jonna.post(f"/api/v1/rosters/versions/{version['id']}/acknowledgements")
    assert ack.status_code == 204
    again = jonna.post(f"/api/v1/rosters/versions/{version['id']}/acknowledgements")
    assert again.status_code == 204  # idempotent
    seen = hanna.get(f"/api/v1/rosters/versions/{version['id']}").json()
    assert len(seen["acknowledgements"]) == 1
    assert seen["acknowledgements"][0]["user_name"] == "Jonna Jourström"

    second = hanna.post("/api/v1/rosters", json={**body, "entries": body["entries"][:1]})
    assert second.json()["number"] == 2
    hud = {r["municipality"]: r for r in jonna.get("/api/v1/rosters/on-call").json()}["Hudiksvall"]
    assert [e["name"] for e in hud["on_call"]] == ["Eva Ersson"] and hud["acknowledged"] is False


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ([], "entries"),
        ("gustav_in_hudiksvall", "entries-0-user_id"),
        ("backwards", "entries-0-valid_to"),
        ("bad_phone", "entries-0-phone"),
    ],
)
def test_invalid_rosters_are_refused_with_field_errors(
    portal: RunningPortal, entries: object, field: str
) -> None:
    ids = asyncio.run(_ids(portal))
    rows: list[dict[str, object]] = []
    if entries == "gustav_in_hudiksvall":
        rows = [_entry(ids[GUSTAV], "chair", 1, (0, 5))]
    elif entries == "backwards":
        rows = [_entry(ids[OLOF], "chair", 1, (5, 0))]
    elif entries == "bad_phone":
        rows = [{**_entry(ids[OLOF], "chair", 1, (0, 5)), "phone": "ring mig"}]
    hanna = client_as(portal.url, portal.settings, HANNA)
    r = hanna.post(
        "/api/v1/rosters", json={"municipality_id": str(ids["Hudiksvall"]), "entries": rows}
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}
    assert hanna.get(f"/api/v1/rosters/municipalities/{ids['Hudiksvall']}/versions").json() == []


def test_other_municipalities_and_other_roles_get_404_and_are_audited(
    portal: RunningPortal,
) -> None:
    ids = asyncio.run(_ids(portal))
    hanna = client_as(portal.url, portal.settings, HANNA)
    vid = hanna.post(
        "/api/v1/rosters",
        json={
            "municipality_id": str(ids["Hudiksvall"]),
            "entries": [_entry(ids[OLOF], "chair", 1, (0, 5))],
        },
    ).json()["id"]
    missing = str(uuid.uuid4())
    for pnr in (GUNILLA, OLOF, ANDERS):
        other = client_as(portal.url, portal.settings, pnr)
        wrong = other.get(f"/api/v1/rosters/versions/{vid}")
        absent = other.get(f"/api/v1/rosters/versions/{missing}")
        assert wrong.status_code == absent.status_code == 404
        assert {k: v for k, v in wrong.json().items() if k != "instance"} == {
            k: v for k, v in absent.json().items() if k != "instance"
        }
        assert (
            other.get(f"/api/v1/rosters/municipalities/{ids['Hudiksvall']}/versions").status_code
            == 404
        )
        assert other.post(f"/api/v1/rosters/versions/{vid}/acknowledgements").status_code == 404
        assert (
            other.get(f"/rosters/versions/{vid}", headers={"accept": "text/html"}).status_code
            == 404
        )
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    assert (
        gunilla.post(
            "/api/v1/rosters",
            json={
                "municipality_id": str(ids["Hudiksvall"]),
                "entries": [_entry(ids[OLOF], "chair", 1, (0, 5))],
            },
        ).status_code
        == 404
    )

    async def denied() -> int:
        engine = make_engine(portal.settings.database_url)
        async with make_sessionmaker(engine)() as db:
            rows = (await db.scalars(select(AuditEntry).where(AuditEntry.object_id == vid))).all()
        await engine.dispose()
        return sum(1 for r in rows if r.outcome == "not_found")

    assert asyncio.run(denied()) >= 9


def test_new_version_through_the_page_form(portal: RunningPortal) -> None:
    ids = asyncio.run(_ids(portal))
    hanna = client_as(portal.url, portal.settings, HANNA)
    form = hanna.get(f"/rosters/municipalities/{ids['Hudiksvall']}/new")
    assert form.status_code == 200 and "Olof Ordén" in form.text and "Gustav" not in form.text
    data = {
        "_csrf_token": hanna.cookies["csrftoken"],
        "entries-0-user_id": str(ids[OLOF]),
        "entries-0-function": "chair",
        "entries-0-valid_from": "2026-12-01T08:00",
        "entries-0-valid_to": "2026-11-30T08:00",
        "entries-0-phone": "070-1234567",
        "entries-0-position": "1",
    }
    bad = hanna.post(f"/rosters/municipalities/{ids['Hudiksvall']}", data=data)
    assert bad.status_code == 422 and "sluttiden måste vara efter starttiden" in bad.text
    data["entries-0-valid_to"] = "2026-12-08T08:00"
    ok = hanna.post(f"/rosters/municipalities/{ids['Hudiksvall']}", data=data)
    assert ok.status_code == 303
    page = hanna.get(ok.headers["location"])
    assert "2026-12-01 08:00" in page.text  # shown in Stockholm time as entered


async def test_was_on_roster_uses_the_version_in_force_at_the_time(
    migrated_engine: object, tmp_path: object
) -> None:
    """The decision check: who was on call when the oral decision was taken."""
    from portal.db.models import Membership
    from portal.rosters.models import RosterEntry, RosterVersion

    maker = make_sessionmaker(migrated_engine)  # type: ignore[arg-type]
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    async with maker() as db, db.begin():
        org = Organisation(kind="municipality", name="Testkommun")
        olof = User(pnr_index="a", pnr_enc="", name_enc="")
        eva = User(pnr_index="b", pnr_enc="", name_enc="")
        db.add_all([org, olof, eva])
        await db.flush()
        db.add(Membership(user_id=olof.id, organisation_id=org.id, role="chair"))
        v1 = RosterVersion(municipality_id=org.id, number=1, created_by=olof.id, created_at=t0)
        v2 = RosterVersion(
            municipality_id=org.id, number=2, created_by=olof.id, created_at=t0 + timedelta(days=5)
        )
        db.add_all([v1, v2])
        await db.flush()
        week = (t0, t0 + timedelta(days=30))
        db.add(
            RosterEntry(
                version_id=v1.id,
                user_id=olof.id,
                function="chair",
                position=1,
                valid_from=week[0],
                valid_to=week[1],
                phone_enc="",
            )
        )
        db.add(
            RosterEntry(
                version_id=v2.id,
                user_id=eva.id,
                function="substitute",
                position=1,
                valid_from=week[0],
                valid_to=week[1],
                phone_enc="",
            )
        )
    async with maker() as db:
        day2, day6 = t0 + timedelta(days=2), t0 + timedelta(days=6)
        assert await service.was_on_roster(db, org.id, olof.id, day2)
        assert not await service.was_on_roster(db, org.id, eva.id, day2)
        assert await service.was_on_roster(db, org.id, eva.id, day6)
        assert not await service.was_on_roster(db, org.id, olof.id, day6)
        assert not await service.was_on_roster(db, org.id, olof.id, t0 - timedelta(days=1))
