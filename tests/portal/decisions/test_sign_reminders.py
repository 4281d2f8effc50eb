"""A decision left unsigned: the chair is reminded once after 30 minutes, the jour told once
after 60 (issue 14). The clock moves (`now=`), on both databases; mails carry only a link."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import Organisation, User
from portal.decisions.models import Decision
from portal.decisions.service import remind_unsigned
from portal.notify.models import OutboxMail
from portal.notify.service import compose
from portal.pii import Vault
from portal.settings import Settings
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database
from tests.portal.decisions.helpers import JONNA, OLOF

T = TypeVar("T")
SUBMITTED = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(tmp_path, database_url)
    asyncio.run(prepare_database(s))
    yield s


def _in_db(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `fn` in one transaction, as one request or one job round would."""

    async def go() -> T:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                return await fn(db)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _submitted(settings: Settings, vault: Vault) -> uuid.UUID:
    """A decision awaiting Olof's signature since SUBMITTED (the row as submit leaves it)."""

    async def make(db: AsyncSession) -> uuid.UUID:
        olof = await db.scalar(select(User.id).where(User.pnr_index == vault.index(OLOF)))
        jonna = await db.scalar(select(User.id).where(User.pnr_index == vault.index(JONNA)))
        town = await db.scalar(select(Organisation).where(Organisation.name == "Hudiksvall"))
        assert olof and jonna and town and town.jour_id
        d = Decision(
            kind="lvu6", municipality_id=town.id, jour_id=town.jour_id,
            status="awaiting_signature", subject_enc="x", content_enc="x",
            oral_decision_at=SUBMITTED - timedelta(minutes=20), decision_maker_id=olof,
            decision_maker_function="chair", drafted_by=jonna, submitted_at=SUBMITTED,
        )  # fmt: skip
        db.add(d)
        await db.flush()
        return d.id

    return _in_db(settings, make)


def test_an_unsigned_decision_reminds_the_chair_then_tells_the_jour(settings: Settings) -> None:
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    decision_id = _submitted(settings, vault)

    def tick(minutes: int) -> int:
        now = SUBMITTED + timedelta(minutes=minutes)
        return _in_db(settings, lambda db: remind_unsigned(db, vault, now=now))

    def mails() -> list[OutboxMail]:
        async def rows(db: AsyncSession) -> list[OutboxMail]:
            found = await db.scalars(
                select(OutboxMail).where(OutboxMail.template.in_(("sign_reminder", "sign_overdue")))
            )
            return sorted(found, key=lambda m: (m.template, m.to_addr))

        return _in_db(settings, rows)

    assert tick(29) == 0 and mails() == []
    assert tick(31) == 1
    (reminder,) = mails()
    assert (reminder.template, reminder.to_addr) == (
        "sign_reminder",
        "olof@hudiksvall.kommun.example",
    )
    assert reminder.link_path == f"/decisions/{decision_id}/sign"
    assert tick(45) == 0 and len(mails()) == 1  # once

    assert tick(61) == 1
    notice, reminder2 = mails()  # by template: sign_overdue < sign_reminder
    assert reminder2.id == reminder.id
    assert (notice.template, notice.to_addr) == (
        "sign_overdue",
        "socialjouren@gavle.kommun.example",
    )
    assert notice.link_path == f"/decisions/{decision_id}"
    assert tick(90) == 0 and len(mails()) == 2  # once
    for mail in (reminder, notice):
        text = compose(mail, public_url="https://jourpost.example").as_string()
        for secret in ("Pojke", "201103059893", "LVU", "Olof", "Hudiksvall"):
            assert secret not in text.replace("olof@hudiksvall", ""), secret


def test_a_signed_decision_sends_nothing_more(settings: Settings) -> None:
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    decision_id = _submitted(settings, vault)

    def tick(minutes: int) -> int:
        now = SUBMITTED + timedelta(minutes=minutes)
        return _in_db(settings, lambda db: remind_unsigned(db, vault, now=now))

    assert tick(31) == 1  # reminded, then Olof signs

    async def sign(db: AsyncSession) -> None:
        await db.execute(
            update(Decision)
            .where(Decision.id == decision_id)
            .values(status="signed", signed_at=SUBMITTED + timedelta(minutes=40))
        )

    _in_db(settings, sign)
    assert tick(61) == 0 and tick(120) == 0

    async def notices(db: AsyncSession) -> int:
        rows = await db.scalars(select(OutboxMail).where(OutboxMail.template == "sign_overdue"))
        return len(list(rows))

    assert _in_db(settings, notices) == 0


def test_the_servers_periodic_round_reminds_with_the_vault_it_needs(settings: Settings) -> None:
    """The reminder is addressed from the chair's encrypted e-mail address: the round the server
    runs in its lifespan must have the vault, or the chair is silently never reminded."""
    import dataclasses
    import time

    from portal.app import create_app
    from tests.servers.portal import serve

    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    _submitted(settings, vault)  # hours ago: both the reminder and the jour's notice are due

    def sent(db: AsyncSession) -> Awaitable[list[str]]:
        async def go() -> list[str]:
            rows = await db.scalars(
                select(OutboxMail.template).where(
                    OutboxMail.template.in_(("sign_reminder", "sign_overdue"))
                )
            )
            return sorted(rows)

        return go()

    def factory(port: int) -> object:
        return create_app(
            dataclasses.replace(settings, public_url=f"http://127.0.0.1:{port}"),
        )

    with serve(factory):
        deadline = time.monotonic() + 60
        while _in_db(settings, sent) != ["sign_overdue", "sign_reminder"]:
            assert time.monotonic() < deadline, _in_db(settings, sent)
            time.sleep(0.2)
