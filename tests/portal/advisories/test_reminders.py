"""Expiry reminders: one mail per advisory near expiry, to the unit mailbox, no personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from portal.advisories.service import send_expiry_reminders
from portal.notify.models import OutboxMail
from portal.notify.service import compose
from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import BOY, GUNILLA, HANNA, body, run


def _post(client: Any, days: float) -> str:
    until = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    r = client.post("/api/v1/advisories", json=body(valid_until=until))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _remind(jp: AdvisoryPortal, now: datetime) -> int:
    async def go(db: Any) -> int:
        return await send_expiry_reminders(db, now=now)

    return run(jp.settings, go)


def _outbox(jp: AdvisoryPortal) -> list[OutboxMail]:
    async def fetch(db: Any) -> list[OutboxMail]:
        return list(await db.scalars(select(OutboxMail).order_by(OutboxMail.created_at)))

    return run(jp.settings, fetch)


def test_expiry_reminder_is_queued_once_without_personal_data(jp: AdvisoryPortal) -> None:
    hanna, gunilla = jp.client(HANNA), jp.client(GUNILLA)
    due = _post(hanna, 1)
    _post(hanna, 10)  # not yet
    withdrawn = _post(gunilla, 1.5)
    assert (
        gunilla.post(
            f"/api/v1/advisories/{withdrawn}/withdraw", json={"reason": "Klar"}
        ).status_code
        == 204
    )

    assert _remind(jp, datetime.now(UTC)) == 1
    (mail,) = [m for m in _outbox(jp) if m.template == "advisory_expiring"]
    assert mail.to_addr == "ifo.barn@hudiksvall.kommun.example"
    assert mail.template == "advisory_expiring" and mail.link_path == f"/advisories/{due}"
    message = compose(mail, public_url=jp.url).as_string()
    text = compose(mail, public_url=jp.url).get_content()
    assert "Det finns en avisering som snart går ut" in text
    for secret in (BOY, BOY[:8], "Kalle", "Klient", "Delsbo", "akutboende", "LVU", "Hanna"):
        assert secret not in message, secret

    assert _remind(jp, datetime.now(UTC)) == 0  # never twice for the same expiry

    # Re-confirming sets a new expiry; that one is reminded again when it comes near.
    r = hanna.post(f"/api/v1/advisories/{due}/reconfirm", json={"base_version": 1})
    assert r.status_code == 201, r.text
    assert _remind(jp, datetime.now(UTC)) == 0
    assert _remind(jp, datetime.now(UTC) + timedelta(days=9)) == 1  # the 10-day one
    assert _remind(jp, datetime.now(UTC) + timedelta(days=13)) == 1  # the re-confirmed one
    reminders = [m for m in _outbox(jp) if m.template == "advisory_expiring"]
    assert reminders[-1].link_path == f"/advisories/{due}"
    assert len(reminders) == 3


def test_periodic_job_runs_the_reminders(jp: AdvisoryPortal) -> None:
    """portal.jobs.run_once (lifespan loop and `jourpost jobs run-once`) queues due reminders."""
    from portal import jobs
    from portal.db.engine import make_engine, make_sessionmaker

    _post(jp.client(HANNA), 1)

    async def once() -> int:
        engine = make_engine(jp.settings.database_url)
        try:
            return await jobs.run_once(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    import asyncio

    assert asyncio.run(once()) == 1
    assert asyncio.run(once()) == 0
    assert [m.template for m in _outbox(jp) if m.template != "new_advisory"] == [
        "advisory_expiring"
    ]


def test_a_new_advisory_notifies_the_jour_mailbox_without_content(jp: AdvisoryPortal) -> None:
    aid = _post(jp.client(HANNA), 10)
    mails = [m for m in _outbox(jp) if m.template == "new_advisory"]
    assert [(m.to_addr, m.link_path) for m in mails] == [
        ("socialjouren@gavle.kommun.example", f"/advisories/{aid}")
    ]
    message = compose(mails[0], public_url=jp.url).as_string()
    for secret in (BOY, "Kalle", "Delsbo", "akutboende", "Hudiksvall"):
        assert secret not in message, secret
