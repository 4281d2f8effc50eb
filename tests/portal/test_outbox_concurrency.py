"""The mail outbox with several dispatchers (instances) and a slow relay: every mail once.

A real aiosmtpd that takes its time over each message, three dispatcher loops as three portal
instances would run them, and leases shortened so that a batch outlasts its lease: before
per-message claiming, the rows still waiting in a claimed batch were claimed and sent again by
another dispatcher.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from portal.db.engine import make_engine, make_sessionmaker
from portal.notify import service as notify
from portal.notify.models import OutboxMail
from tests.servers.net import free_port
from tests.servers.smtp import CollectingHandler

MAILS = 24
RELAY_SECONDS = 0.15


class SlowHandler(CollectingHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(RELAY_SECONDS)
        return await super().handle_DATA(server, session, envelope)


async def _run(url: str, port: int) -> tuple[int, list[int]]:
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as db, db.begin():
            for n in range(MAILS):
                db.add(
                    OutboxMail(
                        to_addr=f"enhet{n}@kommun.example", template="new_report", link_path="/"
                    )
                )
        mailer = notify.SmtpMailer("127.0.0.1", port, "jourpost@jour.example", timeout=10)

        async def pending() -> int:
            async with maker() as db:
                count = await db.scalar(
                    select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None))
                )
                return int(count or 0)

        async def instance() -> None:  # what run_dispatcher does, on a short interval
            while await pending():
                await notify.dispatch_pending(maker, mailer, public_url="https://jourpost.example")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asyncio.gather(instance(), instance(), instance()), timeout=120)
        async with maker() as db:
            attempts = list((await db.scalars(select(OutboxMail.attempts))).all())
        return await pending(), attempts
    finally:
        await engine.dispose()


def test_three_dispatchers_and_a_slow_relay_send_every_mail_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lease shorter than a batch takes to send (24 x 0.15 s), longer than one message.
    monkeypatch.setattr(notify, "LEASE", timedelta(seconds=1))
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        left, attempts = asyncio.run(_run(database_url, port))
    finally:
        controller.stop()
    ids = [m.message["Message-ID"] for m in handler.messages]
    assert left == 0
    assert len(ids) == MAILS, f"{len(ids) - len(set(ids))} duplicates among {len(ids)} mails"
    assert len(set(ids)) == MAILS
    assert attempts == [1] * MAILS
