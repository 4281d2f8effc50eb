"""Demo data (DESIGN.md §8): Socialjouren Gävleborg, its ten municipalities and the demo persons.

Every person here is fictitious (valid check digits only). Seeding is idempotent: running the
demo again finds what exists and adds only what is missing.
"""

from __future__ import annotations

import base64
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from portal.audit import service as audit
from portal.db.models import Membership, Organisation, Unit, User
from portal.pii import Vault, field_context
from portal.settings import Settings, load_settings
from portal.stats import costs

SERVICE_ORG = "Jourpost förvaltning"
JOUR = "Socialjouren Gävleborg"
HOST = "Gävle"
# SCB municipality codes of the members of Socialjouren Gävleborg.
MEMBERS = {
    "Bollnäs": "2183",
    "Gävle": "2180",
    "Hofors": "2104",
    "Hudiksvall": "2184",
    "Ljusdal": "2161",
    "Nordanstig": "2132",
    "Ockelbo": "2101",
    "Ovanåker": "2121",
    "Sandviken": "2181",
    "Söderhamn": "2182",
}
# The demo jour's cost key is Gävleborg's: shared by population only ("Kostnadsfördelningen mellan
# länets kommuner baseras på invånarantal", seeds 004:136-142, 998-1000; REQUIREMENTS §4.8 and
# FR-G6). Gävleborg's budget is not in the sources: the annual cost is an example, Socialjouren
# Nordväst's 2017 budget (7.714 mkr, seeds 003:125-133; shared/domain/stats/budgets.csv). The
# invoicing period is not given for Gävleborg either: tertials, as Nordost invoices three times
# a year (002:211-221).
DEMO_COST_KEY = costs.Key(population_percent=100, annual_sek=7_714_000, period="tertial")
UNITS = ("IFO barn och unga", "IFO vuxen", "IFO mottagning")
UNIT_SLUGS = {"IFO barn och unga": "barn", "IFO vuxen": "vuxen", "IFO mottagning": "mottagning"}


@dataclass(frozen=True, slots=True)
class DemoPerson:
    """A fictitious demo user."""

    personnummer: str
    """12 digits, valid check digit, fictitious."""
    given_name: str
    """Given name."""
    family_name: str
    """Family name."""
    role: Role
    """The role in the demo."""
    organisation: str
    """Where the role is held."""
    unit: str | None = None
    """Unit, for handlers."""

    @property
    def name(self) -> str:
        """Full name."""
        return f"{self.given_name} {self.family_name}"


DEMO_PERSONS: tuple[DemoPerson, ...] = (
    DemoPerson("197803129829", "Jonna", "Jourström", Role.JOUR_STAFF, JOUR),
    DemoPerson("198507049818", "Erik", "Ek", Role.JOUR_HEAD, JOUR),
    DemoPerson("196901159803", "Hanna", "Hedlund", Role.HANDLER, "Hudiksvall", "IFO barn och unga"),
    DemoPerson("196209219846", "Gunilla", "Gran", Role.HANDLER, "Gävle", "IFO barn och unga"),
    DemoPerson("197104309831", "Olof", "Ordén", Role.CHAIR, "Hudiksvall"),
    DemoPerson("195806119862", "Eva", "Ersson", Role.SUBSTITUTE, "Hudiksvall"),
    DemoPerson("199002279850", "Gustav", "Gavelin", Role.CHAIR, "Gävle"),
    DemoPerson("198311099876", "Anders", "Arkell", Role.ARCHIVIST, "Hudiksvall"),
    DemoPerson("197512189882", "Ada", "Adminsson", Role.ADMIN, SERVICE_ORG),
)


def _slug(municipality: str) -> str:
    return municipality.lower().translate(str.maketrans("åäö", "aao"))


def _mailbox(municipality: str, unit: str) -> str:
    return f"ifo.{UNIT_SLUGS[unit]}@{_slug(municipality)}.kommun.example"


async def _org(db: AsyncSession, name: str, **fields: object) -> Organisation:
    org = await db.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name, **fields)
        db.add(org)
        await db.flush()
    return org


async def _unit(db: AsyncSession, org: Organisation, name: str, mailbox: str | None) -> Unit:
    unit = await db.scalar(select(Unit).where(Unit.organisation_id == org.id, Unit.name == name))
    if unit is None:
        unit = Unit(organisation_id=org.id, name=name, mailbox=mailbox)
        db.add(unit)
        await db.flush()
    return unit


async def seed(db: AsyncSession, vault: Vault) -> None:
    """Create the demo organisations, units and persons that are missing."""
    await _org(db, SERVICE_ORG, kind="service")
    jour = await _org(db, JOUR, kind="jour", phone="026-000 00 00")
    await _unit(db, jour, "Socialjouren", "socialjouren@gavle.kommun.example")
    orgs: dict[str, Organisation] = {SERVICE_ORG: await _org(db, SERVICE_ORG), JOUR: jour}
    for name, code in MEMBERS.items():
        org = await _org(
            db,
            name,
            kind="municipality",
            municipality_code=code,
            committee_name="Socialnämnden",
            jour_id=jour.id,
        )
        orgs[name] = org
        for unit in UNITS:
            await _unit(db, org, unit, _mailbox(name, unit))
    jour.host_municipality_id = orgs[HOST].id
    await costs.seed_key(db, jour.id, DEMO_COST_KEY)
    for person in DEMO_PERSONS:
        index = vault.index(person.personnummer)
        user = await db.scalar(select(User).where(User.pnr_index == index))
        if user is None:
            user = User(pnr_index=index, pnr_enc="", name_enc="")
            db.add(user)
            await db.flush()
            user.pnr_enc = vault.encrypt(person.personnummer, field_context(User.pnr_enc, user.id))
            user.name_enc = vault.encrypt(person.name, field_context(User.name_enc, user.id))
            if person.role in (Role.CHAIR, Role.SUBSTITUTE):
                address = f"{person.given_name.lower()}@{_slug(person.organisation)}.kommun.example"
                user.email_enc = vault.encrypt(address, field_context(User.email_enc, user.id))
        org = orgs[person.organisation]
        unit_id = None
        if person.unit:
            unit_id = (
                await _unit(db, org, person.unit, _mailbox(person.organisation, person.unit))
            ).id
        exists = await db.scalar(
            select(Membership.id).where(
                Membership.user_id == user.id,
                Membership.organisation_id == org.id,
                Membership.role == person.role.value,
            )
        )
        if exists is None:
            db.add(
                Membership(
                    user_id=user.id, organisation_id=org.id, unit_id=unit_id, role=person.role.value
                )
            )
            await db.flush()
            await audit.record(
                db,
                "membership.grant",
                owner_org_id=org.id,
                object_type="membership",
                details={"user_id": str(user.id), "role": person.role.value, "source": "demo"},
            )


async def seed_rosters(db: AsyncSession, vault: Vault) -> None:
    """A roster for Hudiksvall (Olof, then Eva) and Gävle (Gustav), valid for a year from now.

    Only for municipalities without any roster, so a restart never adds versions. The version is
    dated from the start of its period (a day before the first start of the demo), as if it had
    been sent then, so a demo user can record a decision taken "half an hour ago" at once.
    """
    from datetime import timedelta

    from portal.db.base import utcnow
    from portal.rosters.models import RosterEntry, RosterVersion

    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    plan = {
        "Hudiksvall": [("197104309831", "chair", 1), ("195806119862", "substitute", 2)],
        "Gävle": [("199002279850", "chair", 1)],
    }
    admin = await db.scalar(select(User).where(User.pnr_index == vault.index("197512189882")))
    assert admin is not None
    for name, people in plan.items():
        org = await db.scalar(select(Organisation).where(Organisation.name == name))
        assert org is not None
        if await db.scalar(select(RosterVersion.id).where(RosterVersion.municipality_id == org.id)):
            continue
        version = RosterVersion(
            municipality_id=org.id, number=1, created_by=admin.id, created_at=start
        )
        db.add(version)
        await db.flush()
        for pnr, function, position in people:
            user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
            assert user is not None
            entry = RosterEntry(
                version_id=version.id,
                user_id=user.id,
                function=function,
                position=position,
                valid_from=start,
                valid_to=start + timedelta(days=366),
                phone_enc="",
            )
            db.add(entry)
            await db.flush()
            entry.phone_enc = vault.encrypt(
                f"070-000 00 0{position}", field_context(RosterEntry.phone_enc, entry.id)
            )


def _b64(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def demo_settings(data_dir: Path, host: str, port: int) -> Settings:
    """Settings for `jourpost demo`: SQLite, filesystem storage, dev identity provider.

    Keys are generated once into <data_dir>/secrets.toml (mode 0600) so restarts keep working.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets_file = data_dir / "secrets.toml"
    if not secrets_file.exists():
        content = (
            f'keks = {{ demo1 = "{_b64()}" }}\n'
            'current_kek = "demo1"\n'
            f'blind_index_key = "{_b64()}"\n'
            f'secret_key = "{_b64()}"\n'
            f'oidc_client_secret = "{secrets.token_urlsafe(24)}"\n'
        )
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
    with open(secrets_file, "rb") as fh:
        tomllib.load(fh)  # fail early and clearly on a damaged file
    return load_settings(
        environ={},
        config_file=secrets_file,
        mode="demo",
        public_url=f"http://{host}:{port}",
        host=host,
        port=port,
        database_url=f"sqlite+aiosqlite:///{(data_dir / 'jourpost.sqlite3').resolve()}",
        data_dir=str(data_dir.resolve()),
        storage_backend="filesystem",
        dev_idp_enabled=True,
        # The demo jour's cost key (with its example annual cost) is data: DEMO_COST_KEY.
    )
