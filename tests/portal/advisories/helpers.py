"""Demo people, request bodies and test files for the advisory tests."""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from portal.advisories.models import Advisory
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, Membership, Organisation, Unit, User
from portal.pii import Vault
from portal.settings import Settings

JONNA = "197803129829"  # jour staff, Socialjouren Gävleborg
ERIK = "198507049818"  # jour unit head
HANNA = "196901159803"  # handler, Hudiksvall
GUNILLA = "196209219846"  # handler, Gävle
OLOF = "197104309831"  # chair, Hudiksvall
EVA = "195806119862"  # substitute chair, Hudiksvall
GUSTAV = "199002279850"  # chair, Gävle
ANDERS = "198311099876"  # archivist, Hudiksvall
ADA = "197512189882"  # admin
ALL_DEMO = (JONNA, ERIK, HANNA, GUNILLA, OLOF, EVA, GUSTAV, ANDERS, ADA)

BOY = "201103059893"  # client, boy 15
BOY17 = "200908179799"  # client, boy 17
WOMAN = "199204029780"  # client, adult woman

# A second jour with one member municipality, its handler and its jour worker (fictitious,
# valid check digits): the demo has one jour, the code must keep several apart.
OTHER_HANDLER = "197001019871"
OTHER_JOUR_STAFF = "198002029851"

T = TypeVar("T")


def body(**overrides: Any) -> dict[str, Any]:
    """A valid advisory request body."""
    data: dict[str, Any] = {
        "subjects": [{"personal_identity_number": "20110305-9893", "name": "Kalle Klient"}],
        "plan": "Placerad hos morbror i Delsbo. Ska till skolan måndag.",
        "alternative_plans": "Om morbror inte svarar: jourhem via IFO.",
        "instructions": "Bevilja inte akutboende.",
        "legal_basis": "lvu",
        "contact_name": "Hanna Hedlund",
        "contact_phone": "0650-190 00",
    }
    data.update(overrides)
    return data


def iso(delta: timedelta) -> str:
    """An ISO timestamp `delta` from now (UTC)."""
    return (datetime.now(UTC) + delta).isoformat()


def pdf_bytes(text: str = "Journalanteckning", *, padding: int = 0) -> bytes:
    """A valid PDF made with pikepdf; `padding` random bytes in an extra stream make it big."""
    import os

    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = text
    if padding:
        pdf.Root.Padding = pdf.make_stream(os.urandom(padding))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def _add_second_jour(settings: Settings) -> None:
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            jour = Organisation(kind="jour", name="Socialjouren Testlän")
            db.add(jour)
            await db.flush()
            town = Organisation(kind="municipality", name="Testby", jour_id=jour.id)
            db.add(town)
            await db.flush()
            unit = Unit(organisation_id=town.id, name="IFO", mailbox="ifo@testby.example")
            db.add(unit)
            await db.flush()
            for pnr, org, role, unit_id in (
                (OTHER_HANDLER, town.id, Role.HANDLER, unit.id),
                (OTHER_JOUR_STAFF, jour.id, Role.JOUR_STAFF, None),
            ):
                user_id = uuid.uuid4()
                db.add(
                    User(
                        id=user_id,
                        pnr_index=vault.index(pnr),
                        pnr_enc=vault.encrypt(pnr, f"users.pnr:{user_id}"),
                        name_enc=vault.encrypt(f"Test {pnr[-4:]}", f"users.name:{user_id}"),
                    )
                )
                await db.flush()
                db.add(
                    Membership(
                        user_id=user_id, organisation_id=org, unit_id=unit_id, role=role.value
                    )
                )
    finally:
        await engine.dispose()


def add_second_jour(settings: Settings) -> None:
    """Add "Socialjouren Testlän" with member "Testby", a handler and a jour worker."""
    asyncio.run(_add_second_jour(settings))


async def _run(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            return await fn(db)
    finally:
        await engine.dispose()


def run(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `fn(db)` in one transaction on the portal's database (set-up and checks only)."""
    return asyncio.run(_run(settings, fn))


def audit_entries(settings: Settings, action: str) -> list[AuditEntry]:
    """Audit rows with this action, oldest first."""

    async def fetch(db: AsyncSession) -> list[AuditEntry]:
        rows = await db.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return list(rows)

    return run(settings, fetch)


def expire(settings: Settings, advisory_id: str, ago: timedelta) -> None:
    """Move an advisory's expiry into the past (time travel for expiry tests)."""

    async def move(db: AsyncSession) -> None:
        await db.execute(
            update(Advisory)
            .where(Advisory.id == uuid.UUID(advisory_id))
            .values(valid_until=datetime.now(UTC) - ago)
        )

    run(settings, move)


def in_one_shift(steps: Callable[[], T]) -> T:
    """Run `steps` (post something, then look at the jour's view) within one jour shift.

    What the jour sees as "new since the shift started" depends on the server's clock: if a shift
    change (08:00 or 16:00 Stockholm time) fell while the steps ran, they run once more, and the
    second run is within one shift (shift changes are 8 hours apart).
    """
    from portal.advisories.queries import shift_start

    for _ in range(2):
        started = datetime.now(UTC)
        seen = steps()
        if shift_start(datetime.now(UTC)) == shift_start(started):
            return seen
    raise AssertionError("two shift changes within two runs of the steps")
