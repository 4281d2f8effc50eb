"""Culling removes exactly what is due, keeps what is held, exempt, unfinished or locked.

Records are built directly in the database around every boundary (one day either side of the
rule's months), with real encrypted objects in a filesystem object store; both databases.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.advisories.models import Advisory, AdvisorySubject, AdvisoryVersion
from portal.attachments.models import Attachment
from portal.attachments.store import build_file_store
from portal.audit import service as audit
from portal.audit.service import ANONYMOUS, Actor
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Organisation, User
from portal.decisions.models import Decision
from portal.errors import NotFound
from portal.pii import Vault
from portal.reports.models import Report, ReportAction, ReportSubject
from portal.retention import service
from portal.rosters.models import RosterEntry, RosterVersion
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database

NOW = utcnow()
BORN_10TH, BORN_15TH, BORN_3RD = "198001109816", "198001159811", "198001039817"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class World:
    settings: Settings
    db: AsyncSession
    vault: Vault
    files: object
    ids: dict[str, uuid.UUID]
    hud: uuid.UUID
    gavle: uuid.UUID
    user: uuid.UUID


async def _attach(w: World, owner_type: str, owner_id: uuid.UUID, *, retain: bool = False) -> str:
    key = f"attachments/{uuid.uuid4()}"
    stored = await w.files.put(  # type: ignore[attr-defined]
        key, _one(b"%PDF-1.7 test"), retain_until=NOW + timedelta(days=30) if retain else None
    )
    aid = uuid.uuid4()
    w.db.add(
        Attachment(
            id=aid,
            owner_type=owner_type,
            owner_id=owner_id,
            organisation_id=w.hud,
            object_id=key,
            name_enc=w.vault.encrypt("plan.pdf", f"attachments.name:{aid}"),
            content_type="application/pdf",
            size=stored.size,
            sha256=stored.sha256,
            kek_id=stored.kek_id,
            wrapped_key=stored.wrapped_key,
            created_by=w.user,
        )
    )
    return key


async def _advisory(
    w: World, name: str, expired_days_ago: int, org: uuid.UUID | None = None
) -> None:
    valid_until = service.add_months(NOW, -3) - timedelta(days=expired_days_ago - 0)
    a = Advisory(
        organisation_id=org or w.hud,
        jour_id=w.ids["jour"],
        created_by=w.user,
        status="active",
        current_version=1,
        content_version=1,
        valid_until=valid_until,
        legal_basis="sol",
    )
    w.db.add(a)
    await w.db.flush()
    v = AdvisoryVersion(
        advisory_id=a.id,
        version=1,
        kind="created",
        created_by=w.user,
        valid_until=valid_until,
        legal_basis="sol",
        content_enc="x",
    )
    s = AdvisorySubject(advisory_id=a.id, version=1, position=0, pnr_index="i", pnr_enc="")
    w.db.add_all([v, s])
    await w.db.flush()
    s.pnr_enc = w.vault.encrypt(BORN_10TH, f"advisory_subjects.pnr:{s.id}")
    w.ids[name] = a.id
    w.ids[name + "_key"] = uuid.UUID(int=0)
    w.keys[name] = await _attach(w, "advisory", a.id)  # type: ignore[attr-defined]


async def _report(w: World, name: str, months: int, days: int, pnr: str) -> None:
    r = Report(
        jour_id=w.ids["jour"],
        author_id=w.user,
        municipality_id=w.hud,
        code_list_version="2017",
        occurred_at=service.add_months(NOW, -months) + timedelta(days=days),
        on_call=False,
        initiator_code="polisen",
        category_code="man",
        character_code="boende",
        minutes=10,
        child_involved=False,
        narrative_enc="x",
        follow_up_requested=False,
    )
    w.db.add(r)
    await w.db.flush()
    s = ReportSubject(report_id=r.id, position=0, identity_unknown=False, pnr_index="i")
    w.db.add(s)
    await w.db.flush()
    s.pnr_enc = w.vault.encrypt(pnr, f"report_subjects.pnr:{s.id}")
    w.db.add(ReportAction(report_id=r.id, action_code="uppfoljning"))
    w.ids[name] = r.id
    w.keys[name] = await _attach(w, "report", r.id)  # type: ignore[attr-defined]


async def _decision(w: World, name: str, status: str, *, locked: bool) -> None:
    d = Decision(
        kind="lvu6",
        municipality_id=w.hud,
        jour_id=w.ids["jour"],
        status=status,
        subject_enc="",
        content_enc="x",
        oral_decision_at=service.add_months(NOW, -61),
        decision_maker_id=w.user,
        decision_maker_function="chair",
        drafted_by=w.user,
    )
    w.db.add(d)
    await w.db.flush()
    d.subject_enc = w.vault.encrypt(
        json.dumps({"name": "X", "pnr": BORN_3RD}), f"decisions.subject:{d.id}"
    )
    key = f"decisions/{d.id}.pdf"
    stored = await w.files.put(  # type: ignore[attr-defined]
        key, _one(b"%PDF signed"), retain_until=NOW + timedelta(days=400) if locked else None
    )
    d.signed_object_id, d.signed_sha256, d.signed_size = key, stored.sha256, stored.size
    d.signed_kek_id, d.signed_wrapped_key = stored.kek_id, stored.wrapped_key
    w.ids[name] = d.id
    w.keys[name] = key  # type: ignore[attr-defined]


async def _roster(w: World, name: str, number: int, ended_months_ago: int) -> None:
    v = RosterVersion(municipality_id=w.hud, number=number, created_by=w.user)
    w.db.add(v)
    await w.db.flush()
    end = service.add_months(NOW, -ended_months_ago)
    w.db.add(
        RosterEntry(
            version_id=v.id,
            user_id=w.user,
            function="chair",
            position=1,
            valid_from=end - timedelta(days=30),
            valid_to=end,
            phone_enc="",
        )
    )
    w.ids[name] = v.id


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = make_settings(tmp_path, database_url)
    await prepare_database(settings)
    engine = make_engine(database_url)
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    files = build_file_store(settings)
    async with make_sessionmaker(engine)() as db:
        async with db.begin():
            orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
            user = await db.scalar(select(User.id).limit(1))
            assert user is not None
            w = World(
                settings,
                db,
                vault,
                files,
                {"jour": orgs["Socialjouren Gävleborg"]},
                orgs["Hudiksvall"],
                orgs["Gävle"],
                user,
            )
            w.keys = {}  # type: ignore[attr-defined]
            await _advisory(w, "adv_due", 1)  # expired 3 months and a day ago
            await _advisory(w, "adv_not_due", -1)  # a day short of 3 months
            await _report(w, "rep_due", 60, -1, BORN_10TH)  # 5 years and a day ago
            await _report(w, "rep_not_due", 60, 1, BORN_10TH)  # a day short of 5 years
            await _report(w, "rep_exempt", 61, 0, BORN_15TH)  # born on the 15th: research sample
            await _report(w, "rep_held", 61, 0, BORN_10TH)
            await _decision(w, "dec_locked", "delivered", locked=True)
            await _decision(w, "dec_draft", "draft", locked=False)
            await _decision(w, "dec_due", "delivered", locked=False)
            await _roster(w, "ros_old", 1, 25)
            await _roster(w, "ros_newest", 2, 25)  # old, but still the municipality's newest
        async with db.begin():
            await service.place_hold(
                db,
                vault,
                files.store,
                actor_orgs={w.hud},
                actor=Actor(user, w.hud),
                record_type="report",
                record_id=w.ids["rep_held"],
                reason="Begärd av förvaltningsrätten",
            )
        yield w
    await engine.dispose()


@dataclass
class Plan:
    """The whole plan, collected from `service.iter_plan` (a test's plan is small)."""

    due: list[service.Candidate]
    kept: list[service.Candidate]
    not_due: dict[str, int]


async def _plan(w: World, org_id: uuid.UUID | None = None) -> Plan:
    rules = service.load_rules()
    async with w.db.begin():
        every = [
            c
            async for c in service.iter_plan(
                w.db,
                w.vault,
                w.files.store,  # type: ignore[attr-defined]
                rules,
                now=NOW,
                org_id=org_id,
            )
        ]
        counts = await service.plan_counts(w.db, rules, now=NOW, org_id=org_id)
    return Plan(
        [c for c in every if c.action == "cull"],
        [c for c in every if c.action != "cull"],
        {t: n.not_due for t, n in counts.items()},
    )


async def _cull(w: World, store: Any = None) -> service.CullResult:
    maker = make_sessionmaker(w.db.bind)  # type: ignore[arg-type]
    return await service.cull(
        maker,
        w.vault,
        store or w.files.store,  # type: ignore[attr-defined]
        service.load_rules(),
        now=NOW,
        actor=ANONYMOUS,
    )


async def test_the_plan_names_exactly_what_is_due_and_why_the_rest_is_kept(world: World) -> None:
    p = await _plan(world)
    ids = world.ids
    assert {c.record_id for c in p.due} == {
        ids["adv_due"],
        ids["rep_due"],
        ids["dec_due"],
        ids["ros_old"],
    }
    kept = {c.record_id: (c.action, c.reason) for c in p.kept}
    assert kept[ids["rep_exempt"]][0] == "exempt" and "15" in kept[ids["rep_exempt"]][1]
    assert kept[ids["rep_held"]][0] == "hold"
    assert kept[ids["dec_locked"]][0] == "blocked"
    assert kept[ids["dec_draft"]][0] == "in_progress"
    assert kept[ids["ros_newest"]][0] == "in_progress"
    blocked = next(c for c in p.kept if c.record_id == ids["dec_locked"])
    assert blocked.blocked_until is not None and blocked.blocked_until > NOW + timedelta(days=399)
    assert ids["adv_not_due"] not in kept and ids["rep_not_due"] not in kept
    assert p.not_due["advisory"] == 1 and p.not_due["report"] == 1


async def test_a_municipality_plan_leaves_out_the_jours_drafts(world: World) -> None:
    mine = await _plan(world, world.hud)
    listed = {c.record_id for c in mine.due} | {c.record_id for c in mine.kept}
    assert world.ids["dec_due"] in listed and world.ids["dec_locked"] in listed
    assert world.ids["dec_draft"] not in listed  # the jour's working material, not Hudiksvall's


async def _counts(w: World) -> dict[str, int]:
    async with w.db.begin():
        out = {}
        for model in (
            Advisory,
            AdvisoryVersion,
            AdvisorySubject,
            Report,
            ReportAction,
            ReportSubject,
            Decision,
            RosterVersion,
            RosterEntry,
            Attachment,
        ):
            out[model.__tablename__] = int(
                await w.db.scalar(select(func.count()).select_from(model)) or 0
            )
        return out


async def test_a_dry_run_changes_nothing(world: World) -> None:
    before = await _counts(world)
    await _plan(world)
    await _plan(world)
    assert await _counts(world) == before


async def test_culling_deletes_exactly_the_due_records_with_their_files(world: World) -> None:
    before = await _counts(world)
    result = await _cull(world)
    assert not result.failed and result.failed_count == 0
    ids, keys = world.ids, world.keys  # type: ignore[attr-defined]
    assert result.deleted == 4  # which four: the audit entries below
    after = await _counts(world)
    assert after["advisories"] == before["advisories"] - 1
    assert after["advisory_versions"] == before["advisory_versions"] - 1
    assert after["advisory_subjects"] == before["advisory_subjects"] - 1
    assert after["reports"] == before["reports"] - 1
    assert after["report_actions"] == before["report_actions"] - 1
    assert after["report_subjects"] == before["report_subjects"] - 1
    assert after["decisions"] == before["decisions"] - 1
    assert after["roster_versions"] == before["roster_versions"] - 1
    assert after["roster_entries"] == before["roster_entries"] - 1
    assert after["attachments"] == before["attachments"] - 2
    store = world.files.store  # type: ignore[attr-defined]
    for gone in ("adv_due", "rep_due", "dec_due"):
        assert not await store.exists(keys[gone])
    for kept in ("adv_not_due", "rep_not_due", "rep_exempt", "rep_held", "dec_locked", "dec_draft"):
        assert await store.exists(keys[kept])
    async with world.db.begin():
        culled = list(
            await world.db.scalars(select(AuditEntry).where(AuditEntry.action == "retention.cull"))
        )
        assert {e.object_id for e in culled} == {
            str(ids[k]) for k in ("adv_due", "rep_due", "dec_due", "ros_old")
        }
        assert all("months after" in e.details["rule"] for e in culled)
    # Nothing more is due afterwards.
    assert not (await _plan(world)).due


async def test_a_held_record_has_its_files_held_in_the_store_until_lifted(world: World) -> None:
    store, key = world.files.store, world.keys["rep_held"]  # type: ignore[attr-defined]
    assert (await store.lock_state(key))[1] is True
    async with world.db.begin():
        holds = await service.hold_page(
            world.db, world.vault, org_id=world.hud, actor=Actor(world.user, world.hud)
        )
        [hold] = holds.rows
        assert hold.reason == "Begärd av förvaltningsrätten"
        await service.lift_hold(
            world.db,
            store,
            actor_orgs={world.hud},
            actor=Actor(world.user, world.hud),
            hold_id=hold.id,
            now=NOW,
        )
    assert (await store.lock_state(key))[1] is False
    p = await _plan(world)
    assert world.ids["rep_held"] in {c.record_id for c in p.due}


async def test_another_municipality_cannot_hold_a_record(world: World) -> None:
    with pytest.raises(NotFound) as raised:
        async with world.db.begin():
            await service.place_hold(
                world.db,
                world.vault,
                world.files.store,  # type: ignore[attr-defined]
                actor_orgs={world.gavle},
                actor=Actor(world.user, world.gavle),
                record_type="report",
                record_id=world.ids["rep_due"],
                reason="x",
            )
    assert raised.value.audit is not None and raised.value.audit.outcome == "not_found"


def test_month_arithmetic_and_birth_days() -> None:
    from datetime import UTC, datetime

    assert service.add_months(datetime(2024, 8, 31, tzinfo=UTC), -6) == datetime(
        2024, 2, 29, tzinfo=UTC
    )
    assert service.add_months(datetime(2020, 1, 31, tzinfo=UTC), 61) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert service.birth_day("198001159811") == 15
    assert service.birth_day("198001759811") == 15  # coordination number: day + 60


async def test_the_command_line_dry_run_and_run(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from portal.retention.cli import run_command

    before = await _counts(world)
    assert await run_command(world.settings, dry_run=True, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True
    assert {c["id"] for c in report["cull"]} == {
        str(world.ids[k]) for k in ("adv_due", "rep_due", "dec_due", "ros_old")
    }
    assert {c["action"] for c in report["kept"]} == {"exempt", "hold", "blocked", "in_progress"}
    assert await _counts(world) == before
    assert await run_command(world.settings, dry_run=False, as_json=False) == 0
    assert "4 handlingar gallrade, 0 misslyckades" in capsys.readouterr().out
    assert (await _counts(world))["reports"] == before["reports"] - 1


class HangingDeletes:
    """Fault injection (a wrapper on purpose): the real store, whose `delete` waits on a gate,
    as an S3 delete does while the server is frozen. Everything else is the real store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def delete(self, key: str) -> None:
        self.entered.set()
        await self.gate.wait()
        await self.inner.delete(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# Row locks are PostgreSQL's (SQLite has one write lock per database): PostgreSQL only.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_culling_holds_no_audit_lock_while_the_store_hangs(world: World) -> None:
    """While a culled record's file deletion hangs, other requests can still audit.

    An audit entry updates the chain's head row; a cull that audits before it deletes files
    keeps that row locked for as long as the store hangs (every audited request waits)."""
    maker = make_sessionmaker(world.db.bind)  # type: ignore[arg-type]
    store = HangingDeletes(world.files.store)  # type: ignore[attr-defined]
    cull = asyncio.create_task(_cull(world, store))
    try:
        await asyncio.wait_for(store.entered.wait(), 30)
        async with maker() as db, db.begin():
            await db.execute(text("SET LOCAL lock_timeout = '3s'"))
            await audit.record(db, "test.while_culling")  # needs the chain's head row
    finally:
        store.gate.set()
        result = await asyncio.wait_for(cull, 60)
    assert not result.failed and result.deleted == 4
