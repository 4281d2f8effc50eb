"""A believable night for the demo: what a newcomer should find when they log in at once.

`seed_night` (called by `jourpost demo` after the persons and the synthetic year) adds, once:
- a roster for every member municipality (Hudiksvall and Gävle have the demo chairs; the other
  eight get a fictitious chair and substitute each, who can log in with the BankID simulator);
- three active advisories — one to Gävle expiring within a day ("Går ut snart");
- two placements in Hudiksvall's register: the advisory's teenager under 3 § LVU in a jourhem,
  and a boy placed voluntarily (SoL) in an HVB home — for whom the jour may not request police
  assistance (Nordväst deviation no. 1);
- Hudiksvall's delegation matrix: its chair decides handräckning (as the Nordväst chair did);
  the other municipalities keep the default (the jour decides under delegation);
- a 6 § LVU decision taken orally half an hour ago, waiting for Olof's signature (its
  notification is in /dev-mail);
- one open weekend assignment (uppdrag) from Hudiksvall, accepted by Jonna, due Sunday 20:00,
  and Jonna's handover note about it to the next shift;
- consistent receipts on the synthetic year's reports: an acknowledged report was also read by
  the handler who acknowledged it (it was "Oläst" and "Kvitterad" at once);
- the rosters acknowledged by the jour (Erik, the unit head), except Söderhamn's: the night
  dashboard shows one roster to acknowledge, not ten.

Everything goes through the services (encryption, versions, audit, notifications), as if the
people had done it. Persons are fictitious: valid check digits, no one real.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from portal.advisories import service as advisories
from portal.advisories.content import AdvisoryDraft, SubjectDraft
from portal.advisories.models import Advisory
from portal.assignments import service as assignments
from portal.assignments.content import AssignmentDraft
from portal.assignments.models import Assignment
from portal.db.models import Membership, Organisation, User
from portal.decisions import service as decisions
from portal.decisions.schemas import DecisionIn
from portal.pii import Vault, field_context
from portal.placements import service as placements
from portal.placements.content import PlacementDraft
from portal.police import delegation
from portal.principal import Principal, membership_views
from portal.reports.models import Report, ReportRead
from portal.rosters import service as rosters
from portal.rosters.models import RosterAck, RosterEntry, RosterVersion
from portal.stats.synthetic import fictitious_pnr
from portal.timefmt import STOCKHOLM

JONNA, HANNA, GUNILLA, OLOF = "197803129829", "196901159803", "196209219846", "197104309831"
# Fictitious chairs and substitutes of the eight municipalities without a demo chair.
OTHER_CHAIRS = {
    "Bollnäs": ("Birgitta Bergström", "Bengt Boman"),
    "Hofors": ("Harald Holm", "Helena Hed"),
    "Ljusdal": ("Lars Lindqvist", "Lena Ljung"),
    "Nordanstig": ("Nils Norrby", "Nora Nyström"),
    "Ockelbo": ("Olle Ockander", "Oda Olsson"),
    "Ovanåker": ("Ove Ovander", "Ulla Ulfsdotter"),
    "Sandviken": ("Sara Sandberg", "Sven Sundin"),
    "Söderhamn": ("Sture Söder", "Siv Sjöberg"),
}


def _rng(seed: object) -> random.Random:
    """Reproducible demo data (the same fictitious people every time), not a secret."""
    return random.Random(str(seed))  # noqa: S311


async def _user(db: AsyncSession, vault: Vault, pnr: str) -> User:
    user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
    assert user is not None, "seed the demo persons first"
    return user


async def _as(db: AsyncSession, vault: Vault, pnr: str) -> Principal:
    """The demo person acting, as if logged in (no session: nothing here signs)."""
    user = await _user(db, vault, pnr)
    name = vault.decrypt(user.name_enc, field_context(User.name_enc, user.id))
    return Principal(user.id, name, "demo-seed", await membership_views(db, user.id))


async def _chairs(db: AsyncSession, vault: Vault, org: Organisation, rng: random.Random) -> None:
    """A fictitious chair and substitute for `org`, with their roles (once)."""
    for i, (name, role) in enumerate(
        zip(OTHER_CHAIRS[org.name], (Role.CHAIR, Role.SUBSTITUTE), strict=True)
    ):
        born = datetime(1955 + rng.randint(0, 25), rng.randint(1, 12), rng.randint(1, 28))
        pnr = fictitious_pnr(_rng(f"{org.name}-{i}"), born)
        user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
        if user is None:
            user = User(pnr_index=vault.index(pnr), pnr_enc="", name_enc="")
            db.add(user)
            await db.flush()
            user.pnr_enc = vault.encrypt(pnr, field_context(User.pnr_enc, user.id))
            user.name_enc = vault.encrypt(name, field_context(User.name_enc, user.id))
            db.add(Membership(user_id=user.id, organisation_id=org.id, role=role.value))
            await db.flush()


async def seed_rosters_everywhere(db: AsyncSession, vault: Vault, *, now: datetime) -> int:
    """A roster for every member municipality that has none; return how many were added."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    admin = await _user(db, vault, "197512189882")
    rng = _rng(2026)
    added = 0
    for org in await db.scalars(
        select(Organisation).where(Organisation.kind == "municipality").order_by(Organisation.name)
    ):
        if await db.scalar(select(RosterVersion.id).where(RosterVersion.municipality_id == org.id)):
            continue
        if org.name not in OTHER_CHAIRS:
            continue  # Hudiksvall and Gävle: portal.demo.seed_rosters
        await _chairs(db, vault, org, rng)
        people = (
            await db.execute(
                select(Membership.user_id, Membership.role)
                .where(
                    Membership.organisation_id == org.id,
                    Membership.role.in_((Role.CHAIR.value, Role.SUBSTITUTE.value)),
                    Membership.revoked_at.is_(None),
                )
                .order_by(Membership.role)  # chair before substitute
            )
        ).all()
        version = RosterVersion(
            municipality_id=org.id, number=1, created_by=admin.id, created_at=start
        )
        db.add(version)
        await db.flush()
        for position, (user_id, role) in enumerate(people, start=1):
            entry = RosterEntry(
                version_id=version.id,
                user_id=user_id,
                function="chair" if role == Role.CHAIR.value else "substitute",
                position=position,
                valid_from=start,
                valid_to=start + timedelta(days=366),
                phone_enc="",
            )
            db.add(entry)
            await db.flush()
            entry.phone_enc = vault.encrypt(
                f"070-{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                field_context(RosterEntry.phone_enc, entry.id),
            )
        added += 1
    return added


def _advisory(name: str, pnr: str, plan: str, instructions: str, basis: str, until: datetime,
              contact: tuple[str, str]) -> AdvisoryDraft:  # fmt: skip
    return AdvisoryDraft(
        subjects=[SubjectDraft(personal_identity_number=pnr, name=name)],
        plan=plan,
        instructions=instructions,
        legal_basis=basis,
        contact_name=contact[0],
        contact_phone=contact[1],
        valid_until=until,
    )


async def seed_advisories(db: AsyncSession, vault: Vault, *, now: datetime) -> int:
    """Three active advisories, once (nothing when the jour already has any)."""
    if await db.scalar(select(func.count()).select_from(Advisory)):
        return 0
    rng = _rng(7)
    hanna, gunilla = await _as(db, vault, HANNA), await _as(db, vault, GUNILLA)
    teen = fictitious_pnr(rng, datetime(2010, 4, 17))
    mother = fictitious_pnr(rng, datetime(1984, 9, 2))
    young = fictitious_pnr(rng, datetime(2012, 1, 23))
    drafts = [
        (hanna, _advisory(
            "Tilde Testsson", teen,
            "Placerad i jourhem i Delsbo sedan i måndags. Rymmer ofta fredag kväll; "
            "brukar synas vid busstationen i Hudiksvall.",
            "Bevilja inte akutboende. Kontakta jourhemmet (070-111 22 33) och skjutsa tillbaka.",
            "lvu", now + timedelta(days=12), ("Hanna Hedlund", "0650-190 00"))),
        (hanna, _advisory(
            "Maja Modig", mother,
            "Skyddat boende via kvinnojouren. Mannen kan försöka ta kontakt via jouren.",
            "Lämna inte ut några uppgifter om var hon bor. Hänvisa till handläggaren vardagar.",
            "sol", now + timedelta(days=30), ("Hanna Hedlund", "0650-190 00"))),
        (gunilla, _advisory(
            "Elis Exempel", young,
            "Bor hos mormor under utredning. Mamman får inte hämta honom utan handläggarens "
            "besked.",
            "Om mamman hör av sig: hänvisa till socialtjänsten i Gävle, ring polisen vid hot.",
            "lvu", now + timedelta(hours=20), ("Gunilla Gran", "026-17 80 00"))),
    ]  # fmt: skip
    for who, draft in drafts:
        await advisories.create(db, vault, who, draft, now=now)
    return len(drafts)


def placed_persons() -> dict[str, str]:
    """Name -> personnummer of the demo's placed persons (fictitious; for the e2e journeys)."""
    rng = _rng(7)  # the same sequence as seed_advisories: Tilde is the advisory's teenager
    return {
        "Tilde Testsson": fictitious_pnr(rng, datetime(2010, 4, 17)),
        "Sixten Svensson": fictitious_pnr(_rng(11), datetime(2011, 6, 30)),
    }


async def seed_placements(db: AsyncSession, vault: Vault, *, now: datetime) -> int:
    """Two placements in Hudiksvall's register (one LVU, one SoL), once."""
    from portal.placements.models import Placement

    if await db.scalar(select(func.count()).select_from(Placement)):
        return 0
    placed = placed_persons()
    teen, boy = placed["Tilde Testsson"], placed["Sixten Svensson"]
    hanna = await _as(db, vault, HANNA)
    today = now.astimezone(STOCKHOLM).date()
    drafts = [
        PlacementDraft(
            personal_identity_number=teen, name="Tilde Testsson", legal_section="lvu-3",
            place_kind="jourhem", place_name="Jourhemmet Lind", place_address="Byvägen 4, Delsbo",
            place_phone="070-111 22 33", starts_on=today - timedelta(days=4),
            note="Rymmer ofta fredag kväll; brukar synas vid busstationen i Hudiksvall.",
        ),
        PlacementDraft(
            personal_identity_number=boy, name="Sixten Svensson", legal_section="sol",
            place_kind="hvb", place_name="HVB-hemmet Granen", place_address="Granvägen 1, Iggesund",
            place_phone="0650-300 00", starts_on=today - timedelta(days=90),
            note="Frivillig placering med föräldrarnas samtycke.",
        ),
    ]  # fmt: skip
    for draft in drafts:
        await placements.create(db, vault, hanna, draft, now=now)
    hudiksvall = await db.scalar(select(Organisation.id).where(Organisation.name == "Hudiksvall"))
    if hudiksvall is not None:
        for matter in ("handrackning_lvu", "handrackning_lvm"):
            await delegation.seed(db, hudiksvall, matter, "chair")
    return len(drafts)


async def seed_decision(db: AsyncSession, vault: Vault, *, now: datetime) -> bool:
    """A decision waiting for Olof's signature, once (none when any decision exists)."""
    from portal.decisions.models import Decision

    if await db.scalar(select(func.count()).select_from(Decision)):
        return False
    jonna = await _as(db, vault, JONNA)
    hudiksvall = await db.scalar(select(Organisation.id).where(Organisation.name == "Hudiksvall"))
    olof = await _user(db, vault, OLOF)
    assert hudiksvall is not None
    child = fictitious_pnr(_rng(11), datetime(2011, 8, 30))
    draft = DecisionIn(
        kind="lvu6",
        municipality_id=hudiksvall,
        oral_decision_at=now - timedelta(minutes=30),
        decision_maker_id=olof.id,
        subject_personal_identity_number=child,
        subject_name="Nils Nattsson",
        facts="Pojken hittades av polisen i Hudiksvall kl. 01.40, påverkad och utan ytterkläder. "
        "Vårdnadshavarna kan inte nås; hemmet bedöms inte som säkert i natt.",
        grounds="Det är sannolikt att pojken behöver beredas vård med stöd av LVU och rättens "
        "beslut kan inte avvaktas utan allvarlig risk för hans hälsa.",
        placement="Jourhem i Hudiksvall.",
    )
    decision_id = await decisions.create_draft(db, vault, jonna, draft)
    await decisions.submit_for_signature(db, vault, jonna, decision_id)
    return True


async def settle_receipts(db: AsyncSession, vault: Vault) -> int:
    """An acknowledged synthetic report was read by the handler of its unit who acknowledged
    it (one per unit with a demo handler); return how many reports were settled."""
    settled = 0
    for pnr in (HANNA, GUNILLA):
        user = await _user(db, vault, pnr)
        unit_ids = [
            u
            for u in await db.scalars(
                select(Membership.unit_id).where(
                    Membership.user_id == user.id, Membership.unit_id.is_not(None)
                )
            )
            if u is not None
        ]
        rows = (
            await db.execute(
                select(Report.id, Report.acknowledged_at).where(
                    Report.unit_id.in_(unit_ids),
                    Report.acknowledged_at.is_not(None),
                    Report.acknowledged_by.is_(None),
                )
            )
        ).all()
        for report_id, at in rows:
            db.add(ReportRead(report_id=report_id, user_id=user.id, read_at=at))
        if rows:
            await db.execute(
                update(Report)
                .where(Report.id.in_([r for r, _ in rows]))
                .values(acknowledged_by=user.id)
            )
        settled += len(rows)
    return settled


def coming_sunday_evening(now: datetime) -> datetime:
    """Sunday 20:00 Stockholm time of this weekend (next week's if less than 6 hours away)."""
    local = now.astimezone(STOCKHOLM)
    sunday = (local + timedelta(days=(6 - local.weekday()) % 7)).replace(
        hour=20, minute=0, second=0, microsecond=0
    )
    return sunday if sunday - local >= timedelta(hours=6) else sunday + timedelta(days=7)


async def seed_assignment(db: AsyncSession, vault: Vault, *, now: datetime) -> int:
    """One open weekend assignment, accepted by the jour, and a handover note, once."""
    if await db.scalar(select(func.count()).select_from(Assignment)):
        return 0
    hanna, jonna = await _as(db, vault, HANNA), await _as(db, vault, JONNA)
    child = fictitious_pnr(_rng(11), datetime(2014, 6, 9))
    draft = AssignmentDraft(
        kind="visit",
        task=(
            "Hembesök lördag och söndag kväll hos Sanna Sample och hennes son, som kom hem från "
            "placering i torsdags. Kontrollera att mamman är nykter och att pojken är hemma."
        ),
        personal_identity_number=child,
        subject_name="Sixten Sample",
        requester_name="Hanna Hedlund",
        contact_phone="0650-190 00",
        due_at=coming_sunday_evening(now),
        report_back="Ring Hanna måndag 08:15 om något har hänt.",
    )
    sent = now - timedelta(hours=3)
    assignment_id = await assignments.create(db, vault, hanna, draft, now=sent)
    await assignments.accept(db, jonna, assignment_id, now=sent + timedelta(minutes=20))
    await assignments.write_note(
        db, vault, jonna,
        "Hembesöket hos familjen Sample (uppdrag från Hudiksvall) är inte gjort än – "
        "planera in det i kväll. Mamman vill helst ha besök före 19.",
        now=now - timedelta(minutes=30),
    )  # fmt: skip
    return 1


UNACKNOWLEDGED_ROSTER = "Söderhamn"


async def acknowledge_rosters(db: AsyncSession, vault: Vault) -> int:
    """The jour has acknowledged every municipality's roster but Söderhamn's (once: nothing when
    any roster receipt exists); return how many receipts were added."""
    if await db.scalar(select(RosterAck.id).limit(1)):
        return 0
    erik = await _as(db, vault, "198507049818")
    versions = await db.scalars(
        select(RosterVersion.id)
        .join(Organisation, Organisation.id == RosterVersion.municipality_id)
        .where(Organisation.name != UNACKNOWLEDGED_ROSTER)
    )
    added = 0
    for version_id in list(versions):
        await rosters.acknowledge(db, erik, version_id)  # audited as Erik's receipt
        added += 1
    return added


async def seed_night(db: AsyncSession, vault: Vault, *, now: datetime) -> dict[str, int]:
    """Everything above, each part once; what was added, by part."""
    return {
        "rosters": await seed_rosters_everywhere(db, vault, now=now),
        "advisories": await seed_advisories(db, vault, now=now),
        "placements": await seed_placements(db, vault, now=now),
        "decisions": int(await seed_decision(db, vault, now=now)),
        "assignments": await seed_assignment(db, vault, now=now),
        "receipts": await settle_receipts(db, vault) + await acknowledge_rosters(db, vault),
    }
