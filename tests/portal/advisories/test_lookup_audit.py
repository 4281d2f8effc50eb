"""The lookup's audit entry is stored before its answer, or there is no answer.

On PostgreSQL the lookup runs without a transaction block (portal.web.deps.
provide_autocommit_db): its reads each commit nothing, its one write — the audit append —
commits itself. These tests hold that to the guarantees of the one-transaction path (SQLite
keeps that path, and must give the same answers): an append that fails answers 503 with none
of the data and leaves nothing behind (no entry, the chain's head unmoved); every answered
lookup has its entry committed, in one unbroken chain, also when lookups run concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import service as audit
from portal.db.models import AuditEntry, AuditHead
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import BOY, HANNA, JONNA, body, run
from tests.portal.login import csrf_form

# The audit append fails as a statement timeout would (SQLSTATE 57014; on SQLite "database is
# locked"): an outage, so 503. Only the lookup's entries: the portal's own work goes on.
_PG_REFUSE = (
    "CREATE FUNCTION refuse_lookup_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit append refused by the test' USING ERRCODE = '57014'; END $$",
    "CREATE TRIGGER refuse_lookup_entry BEFORE INSERT ON audit_entries FOR EACH ROW "
    "WHEN (NEW.action = 'lookup') EXECUTE FUNCTION refuse_lookup_entry()",
)
_PG_ALLOW = ("DROP TRIGGER refuse_lookup_entry ON audit_entries",)
_SQLITE_REFUSE = (
    "CREATE TRIGGER refuse_lookup_entry BEFORE INSERT ON audit_entries "
    "WHEN NEW.action = 'lookup' BEGIN SELECT RAISE(ABORT, 'database is locked'); END",
)
_SQLITE_ALLOW = ("DROP TRIGGER refuse_lookup_entry",)


def _execute(jp: AdvisoryPortal, statements: tuple[str, ...]) -> None:
    async def go(db: AsyncSession) -> None:
        for statement in statements:
            await db.execute(text(statement))

    run(jp.settings, go)


def _chain(jp: AdvisoryPortal) -> tuple[int, str, int, bool]:
    """(head seq, head hash, lookup entries, chain verifies)."""

    async def read(db: AsyncSession) -> tuple[int, str, int, bool]:
        head = (await db.execute(select(AuditHead.seq, AuditHead.hash))).one()
        lookups = await db.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "lookup")
        )
        report = await audit.verify_chain(db)
        return head.seq, head.hash, int(lookups or 0), report.ok

    return run(jp.settings, read)


def test_a_failed_audit_append_answers_503_without_the_data_and_stores_nothing(
    jp: AdvisoryPortal,
) -> None:
    plan = "Hämtas av morbror efter skolan."
    posted = jp.client(HANNA).post("/api/v1/advisories", json=body(plan=plan))
    assert posted.status_code == 201, posted.text
    advisory_id = posted.json()["id"]
    jonna = jp.client(JONNA)
    postgres = jp.settings.database_url.startswith("postgresql")
    _execute(jp, _PG_REFUSE if postgres else _SQLITE_REFUSE)
    seq, head_hash, lookups, ok = _chain(jp)
    assert ok and lookups == 0

    refused = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY})
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert advisory_id not in refused.text and plan not in refused.text
    assert BOY not in refused.text and "Kalle" not in refused.text
    page = jonna.post(
        "/lookup",
        data={"personal_identity_number": BOY, **csrf_form(jonna)},
    )
    assert page.status_code == 503, page.text
    assert plan not in page.text and "Kalle" not in page.text
    # Nothing half-stored: no entry, the head where it was, the chain whole.
    assert _chain(jp) == (seq, head_hash, 0, True)

    _execute(jp, _PG_ALLOW if postgres else _SQLITE_ALLOW)
    found = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY})
    assert found.status_code == 200, found.text
    assert [a["id"] for a in found.json()["advisories"]] == [advisory_id]
    assert [p["plan"] for p in found.json()["plans"]] == [plan]
    after_seq, _, lookups, ok = _chain(jp)
    assert (after_seq, lookups, ok) == (seq + 1, 1, True)


def test_every_answered_lookup_is_audited_in_one_chain_also_when_concurrent(
    jp: AdvisoryPortal,
) -> None:
    posted = jp.client(HANNA).post("/api/v1/advisories", json=body())
    assert posted.status_code == 201, posted.text
    advisory_id = posted.json()["id"]
    clients = [jp.client(JONNA) for _ in range(4)]
    seq, _, _, _ = _chain(jp)

    def look_up(k: int) -> tuple[int, list[str]]:
        r = clients[k % 4].post("/api/v1/lookup", json={"personal_identity_number": BOY})
        return r.status_code, [a["id"] for a in r.json().get("advisories", [])]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(look_up, range(24)))
    assert all(status == 200 and ids == [advisory_id] for status, ids in answers), answers

    async def entries(db: AsyncSession) -> list[AuditEntry]:
        rows = await db.scalars(
            select(AuditEntry).where(AuditEntry.action == "lookup").order_by(AuditEntry.seq)
        )
        return list(rows)

    found = run(jp.settings, entries)
    assert len(found) == 24
    assert all(e.details["advisories"] == [advisory_id] for e in found)
    assert [e.seq for e in found] == list(range(seq + 1, seq + 25))  # no gaps, nothing between
    after_seq, _, lookups, ok = _chain(jp)
    assert (after_seq, lookups, ok) == (seq + 24, 24, True)
