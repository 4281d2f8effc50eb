"""find_by_person: the lookup's view of reports about one person, within the caller's tenancy."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.models import User
from portal.pii import Vault
from portal.principal import Principal, live_memberships, to_views
from portal.reports.models import ReportSubject
from portal.reports.queries import find_by_person
from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import (
    ADA,
    BOY_15,
    BOY_17,
    ERIK,
    GUNILLA,
    HANNA,
    JONNA,
    OLOF,
    WOMAN,
    People,
)
from tests.portal.reports.helpers import BARN, report_payload, unit_ids, with_db


def _vault(portal: RunningPortal) -> Vault:
    s = portal.settings
    return Vault(s.keks, s.current_kek, s.blind_index_key)


async def _principal(db: AsyncSession, vault: Vault, pnr: str) -> Principal:
    user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
    assert user is not None
    return Principal(user.id, pnr, "test", to_views(await live_memberships(db, user.id)))


def _found(portal: RunningPortal, who: str, about: str) -> set[str]:
    vault = _vault(portal)

    async def work(db: AsyncSession) -> set[str]:
        principal = await _principal(db, vault, who)
        return {str(s.id) for s in await find_by_person(db, principal, vault.index(about))}

    return with_db(portal.settings, work)


def test_find_by_person_respects_tenancy(portal: RunningPortal, people: People) -> None:
    units = unit_ids(portal.settings)
    jonna = people(JONNA)
    family = [
        {"personal_identity_number": WOMAN, "name": "Mamma Testsson"},
        {"personal_identity_number": "200908179799", "name": "Kalle Testsson"},
    ]
    hud = jonna.post(
        "/api/v1/reports",
        json=report_payload(
            units[("Hudiksvall", BARN)], category="kvinna_med_barn", subjects=family
        ),
    ).json()["id"]
    gav = jonna.post("/api/v1/reports", json=report_payload(units[("Gävle", BARN)])).json()["id"]
    unknown = jonna.post(
        "/api/v1/reports",
        json=report_payload(
            units[("Gävle", BARN)],
            subjects=[{"identity_unknown": True, "name": "Okänd pojke, ca 14 år"}],
        ),
    )
    assert unknown.status_code == 201, unknown.text

    assert _found(portal, JONNA, BOY_17) == {hud}
    assert _found(portal, ERIK, WOMAN) == {hud}
    assert _found(portal, HANNA, BOY_17) == {hud}
    assert _found(portal, GUNILLA, BOY_17) == set()
    assert _found(portal, GUNILLA, BOY_15) == {gav}
    assert _found(portal, HANNA, BOY_15) == set()
    for outsider in (OLOF, ADA):
        assert _found(portal, outsider, BOY_17) == set()

    # At rest: no personnummer or name in clear, and the index column is what is searched.
    async def stored(db: AsyncSession) -> list[ReportSubject]:
        return list(await db.scalars(select(ReportSubject)))

    rows = with_db(portal.settings, stored)
    dump = repr([(r.pnr_index, r.pnr_enc, r.name_enc) for r in rows])
    for secret in (WOMAN, BOY_17, BOY_15, "Testsson", "Okänd pojke"):
        assert secret not in dump
    assert sum(1 for r in rows if r.identity_unknown and r.pnr_index is None) == 1
