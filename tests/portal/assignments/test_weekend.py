"""Nordväst deviation no. 2, replayed: a weekend assignment must be impossible to miss at
handover. The clock moves through the shifts (services take `now=`), on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.assignments import queries, service
from portal.assignments.content import AssignmentDraft
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, User
from portal.home.night import night
from portal.notify.models import OutboxMail
from portal.pii import Vault
from portal.principal import Principal, membership_views
from portal.settings import Settings
from portal.timefmt import STOCKHOLM
from tests.conftest import make_settings
from tests.portal.advisories.helpers import ERIK, HANNA, JONNA
from tests.portal.conftest import prepare_database


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Stockholm time on the weekend of Friday 4 December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=STOCKHOLM)


FRIDAY, SATURDAY, SUNDAY = 4, 5, 6


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(tmp_path, database_url)
    asyncio.run(prepare_database(s))
    yield s


class World:
    """One database session per step, as one request would have."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)

    async def step(self, pnr: str, fn: Any) -> Any:
        engine = make_engine(self.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                uid = await db.scalar(
                    select(User.id).where(User.pnr_index == self.vault.index(pnr))
                )
                assert uid is not None
                p = Principal(uid, pnr, "test", await membership_views(db, uid))
                return await fn(db, p)
        finally:
            await engine.dispose()

    def run(self, pnr: str, fn: Any) -> Any:
        return asyncio.run(self.step(pnr, fn))

    def night(self, pnr: str, now: datetime) -> Any:
        return self.run(pnr, lambda db, p: night(db, self.vault, p, now=now))


def test_a_weekend_assignment_stays_on_every_shift_until_done(settings: Settings) -> None:
    w = World(settings)
    vault = w.vault

    def create(due: datetime, task: str, at: datetime) -> Any:
        draft = AssignmentDraft(
            kind="visit", task=task, personal_identity_number="20110305-9893",
            subject_name="Kalle Klient", requester_name="Hanna Hedlund",
            contact_phone="0650-190 00", due_at=due,
        )  # fmt: skip
        return w.run(HANNA, lambda db, p: service.create(db, vault, p, draft, now=at))

    # Friday 15:30: Hudiksvall leaves a weekend task (and a small one due Saturday noon).
    weekend = create(local(SUNDAY, 20), "Hembesök lördag och söndag kväll.", local(FRIDAY, 15, 30))
    noon = create(local(SATURDAY, 12), "Ring mamma lördag förmiddag.", local(FRIDAY, 15, 31))

    # Friday evening shift: both on the dashboard, not yet accepted; Jonna accepts the weekend one
    # and writes a handover note.
    fri = w.night(JONNA, local(FRIDAY, 17))
    assert [a.id for a in fri.open_assignments] == [noon, weekend]  # by deadline
    assert all(a.status == "sent" and not a.overdue for a in fri.open_assignments)
    w.run(JONNA, lambda db, p: service.accept(db, p, weekend, now=local(FRIDAY, 22)))
    note = w.run(
        JONNA,
        lambda db, p: service.write_note(
            db,
            vault,
            p,
            "Hembesöket hos Kalle ej gjort ännu – lördag kväll.",
            now=local(FRIDAY, 23),
        ),
    )

    # Saturday day shift (08-16): Erik sees both, the weekend one accepted by Jonna, and
    # Jonna's handover note, unread until he acknowledges it.
    sat = w.night(ERIK, local(SATURDAY, 9))
    assert [a.id for a in sat.open_assignments] == [noon, weekend]
    assert sat.open_assignments[1].status == "accepted" and sat.open_assignments[1].accepted_by
    assert [n.id for n in sat.handover] == [note] and sat.unread_handover == 1
    w.run(ERIK, lambda db, p: service.acknowledge_note(db, p, note, now=local(SATURDAY, 9, 5)))
    w.run(ERIK, lambda db, p: service.acknowledge_note(db, p, note, now=local(SATURDAY, 9, 6)))
    again = w.night(ERIK, local(SATURDAY, 9, 10))
    assert again.unread_handover == 0 and again.handover[0].read_by_me
    # One receipt for the two clicks (the dashboard shows only "Läst"; the handover page names
    # who has read).
    (page,) = w.run(
        ERIK,
        lambda db, p: queries.handover_notes(db, vault, p, since=local(FRIDAY, 16), scope="page"),
    )
    assert [name for name, _ in page.read_by] == [page.read_by[0][0]]

    # Saturday afternoon: the noon task is overdue and highlighted; nobody accepted it.
    late = w.night(ERIK, local(SATURDAY, 13))
    assert [a.id for a in late.open_assignments if a.overdue] == [noon]
    assert late.overdue_assignments == 1
    # ... and escalated once, by e-mail to the jour and to the sending unit (FR-D1).
    escalate = w.run
    assert escalate(ERIK, lambda db, p: service.escalate_overdue(db, now=local(SATURDAY, 13))) == 1
    assert escalate(ERIK, lambda db, p: service.escalate_overdue(db, now=local(SATURDAY, 14))) == 0

    async def overdue_mail(db: AsyncSession, p: Principal) -> list[str]:
        rows = await db.scalars(
            select(OutboxMail).where(OutboxMail.template == "assignment_overdue")
        )
        return sorted(m.to_addr for m in rows if m.link_path == f"/assignments/{noon}")

    to = w.run(ERIK, overdue_mail)
    assert len(to) >= 2 and any("hudiksvall" in a for a in to), to

    # Saturday evening shift (16-08): Friday's note is two shifts old and gone; the
    # assignment is not.
    sat_eve = w.night(JONNA, local(SATURDAY, 18))
    assert weekend in [a.id for a in sat_eve.open_assignments] and sat_eve.handover == ()

    # Sunday day shift: still open; Erik carries it out and reports it done.
    sun = w.night(ERIK, local(SUNDAY, 10))
    assert weekend in [a.id for a in sun.open_assignments]
    w.run(
        ERIK,
        lambda db, p: service.report(
            db, vault, p, weekend, done=True, note="Besök 18:00 lör och sön, lugnt.",
            now=local(SUNDAY, 18),
        ),
    )  # fmt: skip

    # Sunday evening: gone from the dashboard (the overdue noon one stays).
    eve = w.night(JONNA, local(SUNDAY, 19))
    assert [a.id for a in eve.open_assignments] == [noon] and eve.open_assignments[0].overdue

    # The jour's list keeps it a week after it was done, then only the municipality's does.
    def jour_list(at: datetime) -> list[Any]:
        rows = w.run(JONNA, lambda db, p: queries.list_for_jour(db, vault, p, now=at))
        return [r.id for r in rows]

    assert jour_list(local(SUNDAY, 19)) == [noon, weekend]
    assert jour_list(local(SUNDAY, 19).replace(day=13)) == [noon]

    # The municipality sees it done without a phone call: list, detail, and a mail.
    page = w.run(HANNA, lambda db, p: queries.list_sent(db, vault, p, now=local(SUNDAY, 19)))
    status = {r.id: r.status for r in page.rows}
    assert status == {weekend: "done", noon: "sent"}
    d = w.run(HANNA, lambda db, p: queries.get(db, vault, p, weekend, now=local(SUNDAY, 19)))
    assert d.outcome_note == "Besök 18:00 lör och sön, lugnt."
    assert d.summary.outcome_at == local(SUNDAY, 18) and d.summary.outcome_by
    assert not d.can_withdraw and not d.can_report

    async def check(db: AsyncSession, p: Principal) -> None:
        mails = [(m.template, m.link_path) for m in await db.scalars(select(OutboxMail))]
        assert mails.count(("assignment_update", f"/assignments/{weekend}")) == 2  # accept, done
        actions = [
            e.action
            for e in await db.scalars(
                select(AuditEntry).where(AuditEntry.object_id == str(weekend))
            )
        ]
        for action in ("assignment.create", "assignment.accept", "assignment.report",
                       "assignment.read"):  # fmt: skip
            assert action in actions
        acks = [
            e
            for e in await db.scalars(
                select(AuditEntry).where(AuditEntry.action == "handover.acknowledge")
            )
        ]
        assert len(acks) == 1 and acks[0].object_id == str(note)
        lists = list(
            await db.scalars(select(AuditEntry).where(AuditEntry.action == "handover.list"))
        )
        assert any(str(note) in e.details["notes"] for e in lists)

    w.run(HANNA, check)


def test_shift_boundaries() -> None:
    assert queries.shift_start(local(SATURDAY, 7, 59)) == local(FRIDAY, 16)
    assert queries.shift_start(local(SATURDAY, 8)) == local(SATURDAY, 8)
    assert queries.previous_shift_start(local(SATURDAY, 9)) == local(FRIDAY, 16)
    assert queries.previous_shift_start(local(SATURDAY, 17)) == local(SATURDAY, 8)


def test_assignments_are_records_for_archive_retention_and_log_review(settings: Settings) -> None:
    from portal.archive import service as archive
    from portal.assignments import records
    from portal.logreview.service import _records_about
    from portal.retention import service as retention

    w = World(settings)
    vault = w.vault
    draft = AssignmentDraft(
        kind="call", task="Ring mamma lördag.", personal_identity_number="20110305-9893",
        subject_name="Kalle Klient", requester_name="Hanna Hedlund", contact_phone="0650-190 00",
        due_at=local(SATURDAY, 12),
    )  # fmt: skip
    now = local(FRIDAY, 15)
    done = w.run(HANNA, lambda db, p: service.create(db, vault, p, draft, now=now))
    still_open = w.run(HANNA, lambda db, p: service.create(db, vault, p, draft, now=now))
    w.run(JONNA, lambda db, p: service.accept(db, p, done, now=local(FRIDAY, 17)))
    w.run(
        JONNA,
        lambda db, p: service.report(
            db, vault, p, done, done=False, note="Ingen svarade.", now=local(SATURDAY, 11)
        ),
    )
    index = vault.index("201103059893")

    async def check(db: AsyncSession, p: Principal) -> None:
        assert await records.ids_about(db, index) == {done, still_open}
        assert await _records_about(db, index) >= {str(done), str(still_open)}
        held = await records.holding(db, done)
        assert held is not None and len(held.holders) == 2
        hits = await records.search(
            db, held.owner_org_id, is_jour=False, since=None, until=None, pnr_index=index
        )
        assert {h.id for h in hits} == {done, still_open}
        record = await archive.SOURCES["assignment"].describe(db, vault, done)
        assert record is not None
        facts = dict(record.facts)
        assert facts["Uppdrag"] == "Ring mamma lördag." and facts["Resultat"] == "Ingen svarade."
        assert [p.personal_identity_number for p in record.persons] == ["201103059893"]
        assert [v[0] for v in record.versions] == ["Skickat", "Accepterat av jouren", "Inte utfört"]
        assert await records.persons_named(db, vault, done) == ["201103059893"]
        # Retention: 60 months after it was closed; an open one is kept as in progress.
        rules = retention.load_rules()
        assert rules["assignment"].after_months == 60
        later = local(SATURDAY, 12).replace(year=2032)
        plan, more = await retention.plan_page(db, vault, None, rules, "assignment", now=later)
        mine = {c.record_id: c.action for c in plan}
        assert not more
        # Born on the 5th (20110305): kept in the research sample; the open one in progress.
        assert mine == {done: "exempt", still_open: "in_progress"}
        await records.cull(db, done)
        assert await records.lifecycle(db, done) is None

    w.run(ERIK, check)


def test_handover_notes_are_deleted_a_month_after_they_were_written(settings: Settings) -> None:
    """Working notes are not kept forever: the periodic jobs delete a note (and its receipts)
    `HANDOVER_KEEP` after it was written, with one audit entry per jour; newer notes stay."""
    from datetime import timedelta

    from portal import jobs
    from portal.assignments.models import HandoverNote, HandoverRead
    from portal.db.base import utcnow

    w = World(settings)
    now = utcnow()
    old_at = now - service.HANDOVER_KEEP - timedelta(hours=1)
    young_at = now - service.HANDOVER_KEEP + timedelta(hours=1)
    old = w.run(JONNA, lambda db, p: service.write_note(db, w.vault, p, "Gammal.", now=old_at))
    young = w.run(JONNA, lambda db, p: service.write_note(db, w.vault, p, "Ny.", now=young_at))
    for note in (old, young):
        w.run(ERIK, lambda db, p, n=note: service.acknowledge_note(db, p, n, now=young_at))

    async def run_jobs() -> None:
        engine = make_engine(settings.database_url)
        try:
            await jobs.run_once(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    asyncio.run(run_jobs())

    async def left(db: AsyncSession, p: Principal) -> tuple[list[Any], list[Any], list[Any]]:
        notes = list(await db.scalars(select(HandoverNote.id)))
        reads = list(await db.scalars(select(HandoverRead.note_id)))
        culls = list(
            await db.scalars(select(AuditEntry.details).where(AuditEntry.action == "handover.cull"))
        )
        return notes, reads, culls

    notes, reads, culls = w.run(ERIK, left)
    assert notes == [young] and reads == [young]
    assert len(culls) == 1 and culls[0]["notes"] == 1
    # Nothing more to delete: no second entry.
    again = w.run(ERIK, lambda db, p: service.purge_handover(db, now=utcnow()))
    assert again == 0 and len(w.run(ERIK, left)[2]) == 1
