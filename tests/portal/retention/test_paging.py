"""The retention plan in keyset pages, selected and counted in the database (issue 14).

After a long pause everything is due at once: the plan is read oldest anchor first by
(anchor, id), 50 a page on `/retention` (one record type at a time), and culled 200 at a time;
nothing reads every record. Here: a plan of more than one page walked over HTTP (each due record
once, no record not due, another organisation's never, counts of the whole plan, a record
inserted between page loads, a bad cursor), the month-end edges of the cutoff, a cull of more
than one batch and one stopped after its first batch, and that the plan's statements are
LIMITed whatever the number of records. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal import paging
from portal.attachments.models import Attachment
from portal.audit.service import ANONYMOUS, Actor
from portal.db.base import utcnow
from portal.db.models import AuditEntry, Organisation, User
from portal.pii import Vault, field_context
from portal.reports.models import Report, ReportSubject
from portal.retention import service
from portal.retention.models import LegalHold
from storage.errors import BackendUnavailable
from tests.portal.conftest import RunningPortal
from tests.portal.paging import next_href, summary, walk_pages
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.retention.helpers import seeded
from tests.portal.sessions import client_as

ANDERS = "198311099876"  # Hudiksvall's archivist
ROW = r'<tr><td><a href="/archive/records/report/([0-9a-f-]{36})">'
BORN_15TH = "198001159811"  # the research sample (born on the 15th)


def _report_row(
    jour: uuid.UUID, author: uuid.UUID, municipality: uuid.UUID, occurred_at: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "jour_id": jour,
        "author_id": author,
        "municipality_id": municipality,
        "code_list_version": "2017",
        "occurred_at": occurred_at,
        "on_call": False,
        "initiator_code": "polisen",
        "category_code": "man",
        "character_code": "boende",
        "minutes": 5,
        "child_involved": False,
        "narrative_enc": "x",
        "follow_up_requested": False,
    }


async def _insert_reports(
    db: AsyncSession, municipality: str, anchors: list[datetime]
) -> list[uuid.UUID]:
    """Bare reports (no subjects, no files) of the municipality at these anchors, in one go."""
    orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
    author = await db.scalar(select(User.id).limit(1))
    assert author is not None
    rows = [
        _report_row(orgs["Socialjouren Gävleborg"], author, orgs[municipality], at)
        for at in anchors
    ]
    await db.execute(insert(Report), rows)
    return [r["id"] for r in rows]


# --- the page, over HTTP ---------------------------------------------------------------------

DUE = 120


def test_the_plan_pages_every_due_record_once_and_counts_the_whole_plan(
    portal: RunningPortal,
) -> None:
    now = utcnow()
    old = service.add_months(now, -61)  # the report rule: 60 months after the event

    async def seed(db: AsyncSession) -> dict[str, list[uuid.UUID]]:
        return {
            # Many at the same moment, so that pages split among equal anchors (by id).
            "due": await _insert_reports(
                db, "Hudiksvall", [old - timedelta(days=i // 7) for i in range(DUE)]
            ),
            "not_due": await _insert_reports(
                db, "Hudiksvall", [now - timedelta(days=d) for d in (1, 400, 1700)]
            ),
            "gavle": await _insert_reports(db, "Gävle", [old] * 5),
        }

    made = with_db(portal.settings, seed)
    due = {str(i) for i in made["due"]}
    anders = client_as(portal.url, portal.settings, ANDERS)

    first = anders.get("/retention")
    assert first.status_code == 200, first.text
    assert summary(first.text) == (
        f"Visar 1–50 av {DUE} handlingar, den äldsta först. Listan fortsätter på nästa sida."
    )
    counts = first.text.split('id="plan-counts"')[1].split("</table>")[0]
    assert re.search(rf"Händelserapport</th><td>{DUE}</td><td>0</td><td>0</td><td>0</td>"
                     rf"<td>{DUE}</td><td>(\d+)</td>", counts)  # fmt: skip
    assert f"Gallringsbara nu: {DUE} handlingar." in first.text
    assert f"Gallra {DUE} handlingar" in first.text

    # Page by page: each due record once, oldest first, nothing else, nothing of Gävle's.
    ids, lines = walk_pages(anders, "/retention?type=report", ROW)
    assert len(ids) == DUE and set(ids) == due
    assert lines[1].startswith(f"Visar 51–100 av {DUE} handlingar")
    assert lines[-1] == f"Visar 101–{DUE} av {DUE} handlingar, den äldsta först."
    assert not {str(i) for i in made["not_due"] + made["gavle"]} & set(ids)

    # A record that comes due between page loads (older than the first page's last) does not
    # shift or repeat what the next page shows.
    second_href = next_href(first.text)
    assert second_href is not None
    shown_first = re.findall(ROW, first.text)

    async def more(db: AsyncSession) -> list[uuid.UUID]:
        return await _insert_reports(db, "Hudiksvall", [old - timedelta(days=400)])

    newcomer = str(with_db(portal.settings, more)[0])
    second = anders.get(second_href)
    assert second.status_code == 200
    shown_second = re.findall(ROW, second.text)
    assert len(shown_second) == 50 and not set(shown_second) & set(shown_first)
    assert newcomer not in shown_second
    assert summary(second.text).startswith(f"Visar 51–100 av {DUE + 1} handlingar")
    assert newcomer in re.findall(ROW, anders.get("/retention?type=report").text)  # first now

    # Bad paging input is the client's mistake, in Swedish.
    bad = anders.get("/retention", params={"type": "report", "before": "igår"})
    assert bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in bad.text
    unknown = anders.get("/retention", params={"type": "allt"})
    assert unknown.status_code == 400 and "Okänd handlingstyp" in unknown.text

    # Gävle's archive is not Hudiksvall's archivist's to see.
    gavle = with_db(portal.settings, _org_id("Gävle"))
    assert anders.get("/retention", params={"org": str(gavle)}).status_code == 404


# --- the list of legal holds, in pages ------------------------------------------------------

HOLDS = 2 * paging.PAGE_SIZE + 7
HOLD_ROW = (
    r'<li><a href="/archive/records/report/([0-9a-f-]{36})#sparr">[^<]*</a> — ([^(]*) \(spärrad '
)


def _holds_next(html: str) -> str | None:
    """The holds list's "Nästa sida" link (unescaped), None on its last page."""
    found = re.search(
        r'<a class="button" rel="next" href="([^"]+)">Nästa sida'
        r'<span class="visually-hidden"> med spärrar</span></a>',
        html,
    )
    return found.group(1).replace("&amp;", "&") if found else None


def _holds_summary(html: str) -> str:
    found = re.search(r'<p class="paging-summary" id="holds-summary">([^<]*)</p>', html)
    assert found is not None, "no summary of the holds on the page"
    return found.group(1)


def _seed_holds(portal: RunningPortal, now: datetime) -> dict[str, Any]:
    """HOLDS active holds of Hudiksvall's (a third placed at one moment, so pages split among
    equal times by id), some lifted ones and Gävle's, each held record a made-up id."""
    vault = Vault(
        portal.settings.keks, portal.settings.current_kek, portal.settings.blind_index_key
    )

    async def seed(db: AsyncSession) -> dict[str, Any]:
        orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
        placer = await db.scalar(select(User.id).limit(1))
        rows: list[dict[str, Any]] = []

        def hold(org: str, n: int, placed_at: datetime, lifted: bool = False) -> dict[str, Any]:
            hid = uuid.uuid4()
            reason = vault.encrypt(f"Mål {n}", field_context(LegalHold.reason_enc, hid))
            row = {
                "id": hid,
                "record_type": "report",
                "record_id": uuid.uuid4(),
                "organisation_id": orgs[org],
                "reason_enc": reason,
                "placed_by": placer,
                "placed_at": placed_at,
                "lifted_by": placer if lifted else None,
                "lifted_at": now if lifted else None,
            }
            rows.append(row)
            return row

        active = [
            hold("Hudiksvall", n, now - timedelta(hours=1 if n % 3 == 0 else n))
            for n in range(HOLDS)
        ]
        lifted = [hold("Hudiksvall", 1000 + n, now - timedelta(hours=n), True) for n in range(4)]
        gavle = [hold("Gävle", 2000 + n, now - timedelta(hours=n)) for n in range(3)]
        await db.execute(insert(LegalHold), rows)
        newest_first = sorted(active, key=lambda r: (r["placed_at"], r["id"]), reverse=True)
        return {
            "order": [str(r["record_id"]) for r in newest_first],
            "holds": [str(r["id"]) for r in newest_first],
            "reasons": [
                vault.decrypt(r["reason_enc"], field_context(LegalHold.reason_enc, r["id"]))
                for r in newest_first
            ],
            "others": {str(r["record_id"]) for r in lifted + gavle},
        }

    return with_db(portal.settings, seed)


def test_the_holds_are_listed_in_pages_each_audited_with_the_holds_it_shows(
    portal: RunningPortal,
) -> None:
    now = utcnow()
    made = _seed_holds(portal, now)

    async def due(db: AsyncSession) -> list[uuid.UUID]:  # the plan has a second page too
        return await _insert_reports(db, "Hudiksvall", [service.add_months(now, -61)] * 60)

    with_db(portal.settings, due)
    anders = client_as(portal.url, portal.settings, ANDERS)
    listed_before = len(audit_entries(portal.settings, "retention.hold_list"))

    # Page by page: every active hold of Hudiksvall's once, newest first, nothing else.
    shown: list[list[tuple[str, str]]] = []
    lines: list[str] = []
    pages: list[str] = []
    url: str | None = "/retention?type=report"
    while url:
        r = anders.get(url)
        assert r.status_code == 200, r.text
        pages.append(r.text)
        shown.append(re.findall(HOLD_ROW, r.text.split('id="sparrar"')[1]))
        lines.append(_holds_summary(r.text))
        url = _holds_next(r.text)
    assert [len(p) for p in shown] == [50, 50, HOLDS - 100]
    assert [i for p in shown for i, _ in p] == made["order"]
    assert [why for p in shown for _, why in p] == made["reasons"]  # decrypted on the page
    assert not made["others"] & {i for p in shown for i, _ in p}
    assert lines == [
        f"Visar 1–50 av {HOLDS} aktiva spärrar, nyaste först. Listan fortsätter på nästa sida.",
        f"Visar 51–100 av {HOLDS} aktiva spärrar, nyaste först. Listan fortsätter på nästa sida.",
        f"Visar 101–{HOLDS} av {HOLDS} aktiva spärrar, nyaste först.",
    ]
    # The plan's list stays on its first page while the holds are paged.
    assert all(summary(p).startswith("Visar 1–50 av 60 handlingar") for p in pages)
    assert "Första sidan<span" in pages[1] and "Första sidan<span" not in pages[0]

    # Each page's audit entry names exactly the holds it showed, in Hudiksvall's archive.
    listed = audit_entries(portal.settings, "retention.hold_list")[listed_before:]
    assert [e.details["holds"] for e in listed] == [
        made["holds"][:50],
        made["holds"][50:100],
        made["holds"][100:],
    ]
    assert [e.details["from"] for e in listed] == [1, 51, 101]
    hud = with_db(portal.settings, _org_id("Hudiksvall"))
    assert all(e.owner_org_id == e.actor_org_id == hud for e in listed)

    # Each list's pager keeps the other list's place.
    plan_next = next_href(pages[1])
    assert plan_next is not None and "holds=" in plan_next
    both = anders.get(plan_next)
    assert summary(both.text).startswith("Visar 51–60 av 60 handlingar")
    assert _holds_summary(both.text).startswith(f"Visar 51–100 av {HOLDS}")
    back = _holds_next(both.text)
    assert back is not None and "before=" in back
    assert summary(anders.get(back).text).startswith("Visar 51–60 av 60 handlingar")

    # A holds cursor that does not decode is the client's mistake, in Swedish.
    bad = anders.get("/retention", params={"holds": "igår"})
    assert bad.status_code == 400 and "Sidmarkeringen går inte att läsa" in bad.text


def _org_id(name: str) -> Any:
    async def work(db: AsyncSession) -> uuid.UUID:
        found = await db.scalar(select(Organisation.id).where(Organisation.name == name))
        assert found is not None
        return found

    return work


# --- the cutoff at a month's end ------------------------------------------------------------


def _edges() -> list[datetime]:
    """Moments around every month's end of a leap and a common year, at several times of day."""
    out = []
    for year in (2023, 2024):
        for month in range(1, 13):
            start = datetime(year, month, 1, tzinfo=UTC)
            for day_offset in (-4, -3, -2, -1, 0, 1, 27, 28):
                for hour in (0, 11, 12, 13, 23):
                    out.append(start + timedelta(days=day_offset, hours=hour))
    return out


@pytest.mark.parametrize("months", [0, 1, 2, 3, 6, 12, 24, 60, 61])
def test_the_bounds_never_miss_a_due_anchor_and_never_admit_a_not_due_one(months: int) -> None:
    """Exhaustively around month ends: every anchor up to `sure` is due, and every due anchor
    is at most `until` (the records between are re-checked with `add_months`)."""
    for now in _edges():
        sure, until = service.due_bounds(now, months)
        assert sure <= until <= sure + timedelta(days=4)
        probes = [sure, until, sure + timedelta(microseconds=1), until + timedelta(microseconds=1)]
        base = service.add_months(now, -months).replace(hour=0, minute=0)
        probes += [base + timedelta(hours=h) for h in range(-5 * 24, 6 * 24)]
        for anchor in probes:
            due = service.add_months(anchor, months) <= now
            if anchor <= sure:
                assert due, (now, months, anchor)
            if due:
                assert anchor <= until, (now, months, anchor)


def test_the_clamped_month_end_is_not_one_cutoff() -> None:
    """At 28 February 12:00 (2023), one month back: 31 January 10:00 is due (clamped to 28
    February 10:00) but 28 January 13:00 is not, though it is earlier."""
    now = datetime(2023, 2, 28, 12, tzinfo=UTC)
    sure, until = service.due_bounds(now, 1)
    assert sure == datetime(2023, 1, 28, 12, tzinfo=UTC)
    assert until == datetime(2023, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert service.add_months(datetime(2023, 1, 31, 10, tzinfo=UTC), 1) <= now
    assert service.add_months(datetime(2023, 1, 28, 13, tzinfo=UTC), 1) > now


@dataclass
class Db:
    settings: Any
    maker: async_sessionmaker[AsyncSession]
    vault: Vault
    files: Any
    hud: uuid.UUID
    gavle: uuid.UUID
    user: uuid.UUID


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Db]:
    async with seeded(database_url, tmp_path) as w:
        yield Db(
            w.settings, w.maker, w.vault, w.files, w.orgs["Hudiksvall"], w.orgs["Gävle"], w.user
        )


def _one_month_reports() -> dict[str, service.Rule]:
    rules = service.load_rules()
    return {**rules, "report": replace(rules["report"], after_months=1, exempt_birth_days=())}


async def _walk(
    d: Db, rules: dict[str, service.Rule], now: datetime, limit: int, record_type: str = "report"
) -> list[service.Candidate]:
    out: list[service.Candidate] = []
    after = None
    async with d.maker() as s, s.begin():
        while True:
            page, more = await service.plan_page(
                s, d.vault, d.files.store, rules, record_type,
                now=now, org_id=d.hud, after=after, limit=limit,
            )  # fmt: skip
            assert len(page) <= limit
            out += page
            if not more:
                return out
            after = page[-1].key


@pytest.mark.parametrize(
    ("now", "due", "not_due"),
    [
        (  # 28 Feb (not a leap year), the last day: the end of January clamps onto it.
            datetime(2023, 2, 28, 12, tzinfo=UTC),
            ["2023-01-28 11:00", "2023-01-28 12:00", "2023-01-29 10:00", "2023-01-31 12:00",
             "2022-12-31 23:59"],
            ["2023-01-28 13:00", "2023-01-29 12:01", "2023-01-31 23:00", "2023-02-01 00:00"],
        ),
        (  # 31 March: every day of February is due, and not 1 March.
            datetime(2023, 3, 31, 1, tzinfo=UTC),
            ["2023-02-28 23:59", "2023-02-28 00:00", "2023-01-31 23:59"],
            ["2023-03-01 00:00", "2023-03-31 00:00"],
        ),
        (  # 30 March 2024 (not the last day): there is no 30 February, so all of February is
            # due (the bare inverse, 29 February 12:00, would miss its evening).
            datetime(2024, 3, 30, 12, tzinfo=UTC),
            ["2024-02-29 23:00", "2024-02-29 12:00"],
            ["2024-03-01 00:00"],
        ),
        (  # 15 April, mid-month: exactly the anchors up to 15 March at the same time.
            datetime(2023, 4, 15, 12, tzinfo=UTC),
            ["2023-03-15 12:00", "2023-03-14 23:59"],
            ["2023-03-15 12:01", "2023-03-31 00:00"],
        ),
    ],
)  # fmt: skip
async def test_month_end_edges_of_the_cutoff_in_the_database(
    db: Db, now: datetime, due: list[str], not_due: list[str]
) -> None:
    """Reports one month after the event, at the edges: listed and counted exactly."""

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    async with db.maker() as s, s.begin():
        due_ids = await _insert_reports(s, "Hudiksvall", [at(t) for t in due])
        await _insert_reports(s, "Hudiksvall", [at(t) for t in not_due])
    rules = _one_month_reports()
    listed = await _walk(db, rules, now, limit=2)
    assert sorted(c.record_id for c in listed) == sorted(due_ids)
    assert [c.key for c in listed] == sorted(c.key for c in listed)  # oldest first
    assert all(c.due_at <= now and c.action == "cull" for c in listed)
    async with db.maker() as s, s.begin():
        counts = (await service.plan_counts(s, rules, now=now, org_id=db.hud))["report"]
    assert (counts.due, counts.not_due, counts.cullable) == (len(due), len(not_due), len(due))


# --- culling in batches -----------------------------------------------------------------------


async def _due_with_files(d: Db, n: int, now: datetime) -> list[uuid.UUID]:
    """`n` due reports of Hudiksvall, each with an encrypted file in the store."""
    old = service.add_months(now, -61)

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async with d.maker() as s, s.begin():
        ids = await _insert_reports(s, "Hudiksvall", [old - timedelta(hours=i) for i in range(n)])
        for rid in ids:
            key = f"attachments/{uuid.uuid4()}"
            stored = await d.files.put(key, one(b"%PDF-1.7 test"))
            aid = uuid.uuid4()
            s.add(
                Attachment(
                    id=aid, owner_type="report", owner_id=rid, organisation_id=d.hud,
                    object_id=key, name_enc=d.vault.encrypt("a.pdf", f"attachments.name:{aid}"),
                    content_type="application/pdf", size=stored.size, sha256=stored.sha256,
                    kek_id=stored.kek_id, wrapped_key=stored.wrapped_key, created_by=d.user,
                )
            )  # fmt: skip
    return ids


async def _kept_ones(d: Db, now: datetime) -> dict[str, uuid.UUID]:
    """A held report, one in the research sample, and Gävle's (never Hudiksvall's to cull):
    due, but after every record of `_due_with_files`."""
    old = service.add_months(now, -61) + timedelta(hours=1)
    async with d.maker() as s, s.begin():
        held, exempt = await _insert_reports(s, "Hudiksvall", [old, old])
        (gavle,) = await _insert_reports(s, "Gävle", [old])
        subject = ReportSubject(report_id=exempt, position=0, identity_unknown=False,
                                pnr_index="i")  # fmt: skip
        s.add(subject)
        await s.flush()
        subject.pnr_enc = d.vault.encrypt(BORN_15TH, f"report_subjects.pnr:{subject.id}")
        await service.place_hold(
            s, d.vault, d.files.store, actor_orgs={d.hud}, actor=Actor(d.user, d.hud),
            record_type="report", record_id=held, reason="Begärd av förvaltningsrätten",
        )  # fmt: skip
    return {"held": held, "exempt": exempt, "gavle": gavle}


async def _reports_left(d: Db) -> set[uuid.UUID]:
    async with d.maker() as s, s.begin():
        return set(await s.scalars(select(Report.id)))


async def _culled(d: Db) -> list[str]:
    async with d.maker() as s, s.begin():
        return list(
            await s.scalars(
                select(AuditEntry.object_id).where(AuditEntry.action == "retention.cull")
            )
        )


async def _cull(d: Db, now: datetime, store: Any, batch: int) -> service.CullResult:
    return await service.cull(
        d.maker, d.vault, store, service.load_rules(), now=now, actor=ANONYMOUS,
        org_id=d.hud, batch=batch,
    )  # fmt: skip


async def test_a_cull_of_several_batches_culls_everything_due_and_nothing_kept(db: Db) -> None:
    now = utcnow()
    due = await _due_with_files(db, 25, now)
    kept = await _kept_ones(db, now)
    result = await _cull(db, now, db.files.store, batch=10)
    assert (result.deleted, result.failed_count) == (25, 0)
    assert await _reports_left(db) >= set(kept.values())
    assert not await _reports_left(db) & set(due)
    assert sorted(await _culled(db)) == sorted(str(i) for i in due)  # one entry each
    assert (await _cull(db, now, db.files.store, batch=10)).deleted == 0  # nothing left to do


class FailsAfter:
    """Fault injection (a wrapper on purpose): the real store, whose `delete` fails once
    `allowed` deletes went through, with `error` (a store outage, or the process being
    killed). Everything else is the real store."""

    def __init__(self, inner: Any, allowed: int, error: BaseException) -> None:
        self.inner, self.allowed, self.error = inner, allowed, error

    async def delete(self, key: str) -> None:
        if self.allowed <= 0:
            raise self.error
        self.allowed -= 1
        await self.inner.delete(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Killed(BaseException):
    """Stands for the process being killed mid-run (nothing after it runs)."""


@pytest.mark.parametrize("error", [BackendUnavailable("store down"), Killed()])
async def test_a_cull_stopped_after_its_first_batch_leaves_a_whole_state_and_the_next_run_finishes(
    db: Db, error: BaseException
) -> None:
    now = utcnow()
    due = await _due_with_files(db, 25, now)
    kept = await _kept_ones(db, now)
    store = FailsAfter(db.files.store, 10, error)
    if isinstance(error, Killed):
        with pytest.raises(Killed):
            await _cull(db, now, store, batch=10)
    else:
        result = await _cull(db, now, store, batch=10)
        assert (result.deleted, result.failed_count) == (10, 15)
        assert "BackendUnavailable" in result.failed[0][1]
    # The first batch is gone with its files and an audit entry each; the rest is whole.
    culled = await _culled(db)
    left = await _reports_left(db)
    assert len(culled) == 10 and not left & {uuid.UUID(i) for i in culled}
    assert left >= set(due) - {uuid.UUID(i) for i in culled} | set(kept.values())
    async with db.maker() as s, s.begin():
        rows = await s.execute(select(Attachment.owner_id, Attachment.object_id))
        files = {owner: key for owner, key in rows}
    for rid in set(due) & left:
        assert await db.files.store.exists(files[rid])  # still whole: its file too
    # The next run culls the rest, and nothing kept.
    again = await _cull(db, now, db.files.store, batch=10)
    assert (again.deleted, again.failed_count) == (15, 0)
    assert not await _reports_left(db) & set(due)
    assert await _reports_left(db) >= set(kept.values())
    assert sorted(await _culled(db)) == sorted(str(i) for i in due)


# --- bounded: the plan's statements are LIMITed -----------------------------------------------


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)


async def _page_statements(d: Db, now: datetime) -> list[str]:
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter)
    try:
        async with d.maker() as s, s.begin():
            rules = service.load_rules()
            await service.plan_counts(s, rules, now=now, org_id=d.hud)
            page, more = await service.plan_page(
                s, d.vault, d.files.store, rules, "report", now=now, org_id=d.hud
            )
    finally:
        event.remove(Engine, "before_cursor_execute", counter)
    assert len(page) == 50 and more
    return counter.seen


async def test_the_plan_reads_a_page_not_the_plan(db: Db) -> None:
    """However many records are due, a page of the plan runs the same statements, and the one
    that reads records (not counts) reads at most a page and one more."""
    now = utcnow()
    old = service.add_months(now, -61)
    async with db.maker() as s, s.begin():
        await _insert_reports(s, "Hudiksvall", [old - timedelta(minutes=i) for i in range(60)])
    few = await _page_statements(db, now)
    async with db.maker() as s, s.begin():
        await _insert_reports(s, "Hudiksvall", [old - timedelta(hours=i) for i in range(300)])
        assert await s.scalar(select(func.count()).select_from(Report)) >= 360
    many = await _page_statements(db, now)
    assert len(many) == len(few)
    reads = [st for st in many if "reports.occurred_at" in st and "count(" not in st.lower()]
    assert reads, "the plan's query of reports was not seen"
    limited = [st for st in reads if re.search(r"\bLIMIT\b", st)]
    assert limited and all("ORDER BY" in st for st in limited)
    # Every other statement reading reports reads one page's ids (IN …) or the few days at a
    # month's end between the cutoff's two bounds (`due_bounds`).
    for st in reads:
        assert (
            re.search(r"\bLIMIT\b", st)
            or re.search(r"\bIN\b", st)
            or re.search(r"anchor > .*anchor <= ", st, re.S)
        ), st
