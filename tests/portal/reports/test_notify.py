"""Notification e-mail through the outbox, delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.notify import service as notify
from portal.notify.models import OutboxMail
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import RunningPortal, prepare_database
from tests.portal.reports.conftest import BOY_15, HANNA, JONNA, People
from tests.portal.reports.helpers import BARN, report_payload, unit_ids, with_db
from tests.servers.net import free_port
from tests.servers.portal import serve
from tests.servers.smtp import SmtpServer


def _outbox(settings: Settings) -> list[OutboxMail]:
    async def work(db: AsyncSession) -> list[OutboxMail]:
        return list(await db.scalars(select(OutboxMail).order_by(OutboxMail.created_at)))

    return with_db(settings, work)


def _dispatch(settings: Settings, mailer: notify.Mailer, public_url: str) -> int:
    async def run() -> int:
        engine = make_engine(settings.database_url)
        try:
            return await notify.dispatch_pending(
                make_sessionmaker(engine), mailer, public_url=public_url, sender=settings.mail_from
            )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_new_report_mails_the_unit_a_generic_text_without_personal_data(
    portal: RunningPortal, people: People, smtp_server: SmtpServer
) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    payload = report_payload(unit)
    rid = people(JONNA).post("/api/v1/reports", json=payload).json()["id"]
    queued = _outbox(portal.settings)
    assert [(m.to_addr, m.template, m.link_path) for m in queued] == [
        ("ifo.barn@hudiksvall.kommun.example", "new_report", f"/reports/{rid}")
    ]
    mailer = notify.SmtpMailer(smtp_server.host, smtp_server.port, "jourpost@example.org")
    assert _dispatch(portal.settings, mailer, portal.url) == 1
    (got,) = smtp_server.wait_for(1)
    assert got.rcpt_tos == ["ifo.barn@hudiksvall.kommun.example"]
    msg = got.message
    assert msg["Subject"] == notify.SUBJECT
    body = msg.get_content()
    assert "Det finns en ny händelserapport till er enhet i Jourpost." in body
    assert f"{portal.url}/reports/{rid}" in body
    raw = got.raw.decode("utf-8", "replace") + body
    secrets = [
        BOY_15,
        BOY_15[2:],
        "20110305-9893",
        "Pelle",
        "Testsson",
        "Resecentrum",
        payload["narrative"][:20],
        "inte vara i akut fara",
    ]
    for secret in secrets:
        assert secret not in raw, secret
    assert _outbox(portal.settings)[0].sent_at is not None
    assert _dispatch(portal.settings, mailer, portal.url) == 0  # never twice
    assert len(smtp_server.messages) == 1
    # An addendum notifies again, just as generically.
    people(JONNA).post(f"/api/v1/reports/{rid}/addenda", json={"text": "Pelle kom hem."})
    assert _dispatch(portal.settings, mailer, portal.url) == 1
    second = smtp_server.wait_for(2)[1]
    assert "tillägg" in second.message.get_content() and "Pelle" not in second.raw.decode()


def test_rejected_report_queues_nothing(portal: RunningPortal, people: People) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    bad = people(JONNA).post("/api/v1/reports", json=report_payload(unit, minutes=-5))
    assert bad.status_code == 422
    denied = people(HANNA).post("/api/v1/reports", json=report_payload(unit))
    assert denied.status_code == 403
    assert _outbox(portal.settings) == []


def test_failed_delivery_is_retried_with_backoff_and_sent_once(
    portal: RunningPortal, people: People, smtp_server: SmtpServer
) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    people(JONNA).post("/api/v1/reports", json=report_payload(unit))
    dead = notify.SmtpMailer("127.0.0.1", free_port(), "jourpost@example.org", timeout=2)
    assert _dispatch(portal.settings, dead, portal.url) == 0
    (row,) = _outbox(portal.settings)
    assert row.sent_at is None and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=20)  # backoff
    live = notify.SmtpMailer(smtp_server.host, smtp_server.port, "jourpost@example.org")
    assert _dispatch(portal.settings, live, portal.url) == 0  # not due yet

    async def make_due(db: AsyncSession) -> None:
        await db.execute(update(OutboxMail).values(next_attempt_at=utcnow()))

    with_db(portal.settings, make_due)
    assert _dispatch(portal.settings, live, portal.url) == 1
    assert _dispatch(portal.settings, live, portal.url) == 0
    assert len(smtp_server.wait_for(1)) == 1
    (row,) = _outbox(portal.settings)
    assert row.sent_at is not None and row.attempts == 2


def test_backoff_grows_and_is_capped() -> None:
    delays = [notify.backoff(n) for n in range(1, 12)]
    assert delays[0] == timedelta(seconds=30) and delays[1] == timedelta(seconds=60)
    assert delays == sorted(delays) and delays[-1] == notify.MAX_BACKOFF


@dataclass
class _State:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Any = None


def test_app_dispatcher_runs_only_with_smtp_and_sends(
    portal: RunningPortal, people: People, smtp_server: SmtpServer
) -> None:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    people(JONNA).post("/api/v1/reports", json=report_payload(unit))

    async def run() -> None:
        engine = make_engine(portal.settings.database_url)
        try:
            maker = make_sessionmaker(engine)
            assert notify.start_dispatcher(_State(portal.settings, maker)) is None  # no smtp_host
            configured = replace(
                portal.settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port
            )
            task = notify.start_dispatcher(_State(configured, maker), interval=0.05)
            assert task is not None
            for _ in range(200):
                if smtp_server.messages:
                    break
                await asyncio.sleep(0.05)
            await notify.stop_dispatcher(task)
            assert task.done()
        finally:
            await engine.dispose()

    asyncio.run(run())
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0].message["From"] == portal.settings.mail_from


async def test_queue_mail_refuses_unknown_templates_and_foreign_links() -> None:
    import pytest

    with pytest.raises(notify.InvalidNotification):
        await notify.queue_mail(None, to="a@b", template="nope", link_path="/x")  # type: ignore[arg-type]
    with pytest.raises(notify.InvalidNotification):
        await notify.queue_mail(
            None,  # type: ignore[arg-type]
            to="a@b",
            template="new_report",
            link_path="//evil.example/x",
        )


def test_the_running_app_dispatches_when_smtp_is_configured(
    database_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """The lifespan starts the dispatcher; its first round runs at start-up."""
    from portal.app import create_app

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path,
            database_url,
            public_url=f"http://127.0.0.1:{port}",
            smtp_host=smtp_server.host,
            smtp_port=smtp_server.port,
            mail_from="jourpost@kommun.example",
        )
        asyncio.run(prepare_database(settings))

        async def queue(db: AsyncSession) -> None:
            await notify.queue_mail(
                db, to="ifo@kommun.example", template="advisory_expiring", link_path="/x/1"
            )

        with_db(settings, queue)
        return create_app(settings)

    with serve(factory) as url:
        (got,) = smtp_server.wait_for(1, timeout=15)
    assert got.message["From"] == "jourpost@kommun.example"
    assert "Det finns en avisering som snart går ut." in got.message.get_content()
    assert f"{url}/x/1" in got.message.get_content()
