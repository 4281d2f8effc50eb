"""Filtering the log by person: the records about a person are found through each record
feature's `ids_about` (advisories, incident reports, decisions), and only those."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from portal.advisories.models import Advisory, AdvisorySubject
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import Organisation, User
from portal.decisions.models import Decision
from portal.logreview.service import _records_about
from portal.reports.models import Report, ReportSubject
from tests.conftest import make_settings
from tests.portal.conftest import prepare_database


async def test_each_record_type_about_the_person_is_found(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url)
    await prepare_database(settings)
    engine = make_engine(database_url)
    person, other = f"idx-{uuid.uuid4()}", f"idx-{uuid.uuid4()}"
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            orgs = {n: i for i, n in await db.execute(select(Organisation.id, Organisation.name))}
            jour, hud = orgs["Socialjouren Gävleborg"], orgs["Hudiksvall"]
            user = await db.scalar(select(User.id).limit(1))
            assert user is not None
            now = utcnow()
            found: dict[str, set[uuid.UUID]] = {"about": set(), "other": set()}
            for which, index in (("about", person), ("other", other)):
                a = Advisory(
                    organisation_id=hud,
                    jour_id=jour,
                    created_by=user,
                    status="active",
                    current_version=1,
                    content_version=1,
                    valid_until=now,
                    legal_basis="sol",
                )
                r = Report(
                    jour_id=jour,
                    author_id=user,
                    municipality_id=hud,
                    code_list_version="2017",
                    occurred_at=now,
                    on_call=False,
                    initiator_code="polisen",
                    category_code="man",
                    character_code="boende",
                    minutes=10,
                    child_involved=False,
                    narrative_enc="x",
                    follow_up_requested=False,
                )
                d = Decision(
                    kind="lvu6",
                    municipality_id=hud,
                    jour_id=jour,
                    status="delivered",
                    subject_pnr_index=index,
                    subject_enc="x",
                    content_enc="x",
                    oral_decision_at=now,
                    decision_maker_id=user,
                    decision_maker_function="chair",
                    drafted_by=user,
                )
                db.add_all([a, r, d])
                await db.flush()
                db.add_all(
                    [
                        AdvisorySubject(
                            advisory_id=a.id, version=1, position=0, pnr_index=index, pnr_enc=""
                        ),
                        ReportSubject(
                            report_id=r.id, position=0, identity_unknown=False, pnr_index=index
                        ),
                    ]
                )
                await db.flush()
                found[which] = {a.id, r.id, d.id}

            assert await _records_about(db, person) == {str(i) for i in found["about"]}
            assert await _records_about(db, f"idx-{uuid.uuid4()}") == set()
            await db.rollback()
    finally:
        await engine.dispose()
