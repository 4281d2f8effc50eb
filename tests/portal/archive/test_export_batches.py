"""The export reads records in batches and each stored file once.

Reports are described a batch at a time (one query per kind of row): each record must get its own
subjects, addenda and files, exactly as described one by one. Each stored object is read from
the store once — the integrity check happens in the read that copies it into the package — and
every exported record still gets its own `archive.export` audit entry, in its own trail.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.app import build_runtime
from portal.archive import service
from portal.archive.cli import export_command
from portal.attachments.models import Attachment
from portal.db.base import utcnow
from portal.db.models import AuditEntry, Organisation, User
from portal.reports import records as report_records
from portal.reports.models import Report, ReportAddendum
from portal.stats.synthetic import generate_year
from storage import StoredObject
from storage.encrypted import EncryptedObjectStore
from tests.conftest import make_settings
from tests.portal.archive.eark import validate_sip
from tests.portal.conftest import prepare_database

CASES = 12


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _fill(settings: Any) -> list[uuid.UUID]:
    """Reports to Hudiksvall; every other one with an attachment, every third with an addendum."""
    await prepare_database(settings)
    rt = build_runtime(settings)
    try:
        async with rt.sessionmaker() as db, db.begin():
            await generate_year(db, rt.vault, now=utcnow(), cases=CASES)
            hud = await db.scalar(select(Organisation.id).where(Organisation.name == "Hudiksvall"))
            await db.execute(
                Report.__table__.update().values(municipality_id=hud, other_municipality=None)
            )
            ids = sorted(await db.scalars(select(Report.id)))
            author = await db.scalar(select(User.id).limit(1))
            assert hud and author
            for n, rid in enumerate(ids):
                for copy in range(n % 2):
                    object_id = f"attachments/{uuid.uuid4()}"
                    stored = await rt.object_store.put(object_id, _one(os.urandom(3000 + n)))
                    aid = uuid.uuid4()
                    db.add(
                        Attachment(
                            id=aid,
                            owner_type="report",
                            owner_id=rid,
                            organisation_id=hud,
                            object_id=object_id,
                            name_enc=rt.vault.encrypt(
                                f"fil-{n}-{copy}.pdf", f"attachments.name:{aid}"
                            ),
                            content_type="application/pdf",
                            size=stored.size,
                            sha256=stored.sha256,
                            kek_id=stored.kek_id,
                            wrapped_key=stored.wrapped_key,
                            created_by=author,
                        )
                    )
                if n % 3 == 0:
                    from portal.reports.content import encrypt_addendum

                    db.add(
                        encrypt_addendum(
                            rt.vault, rid, author, f"Tillägg till nummer {n}.", now=utcnow()
                        )
                    )
        return ids
    finally:
        await rt.engine.dispose()


@pytest.fixture
async def filled(tmp_path: Path, database_url: str) -> tuple[Any, list[uuid.UUID]]:
    settings = make_settings(tmp_path, database_url)
    return settings, await _fill(settings)


async def test_a_batch_describes_each_report_as_alone(filled: tuple[Any, list[uuid.UUID]]) -> None:
    settings, ids = filled
    rt = build_runtime(settings)
    try:
        async with rt.sessionmaker() as db:
            batch = await report_records.describe_many(db, rt.vault, [*ids, uuid.uuid4()])
            assert sorted(batch) == ids  # the unknown id is simply absent
            for n, rid in enumerate(ids):
                alone = await report_records.describe(db, rt.vault, rid)
                assert alone is not None
                assert batch[rid] == alone
                assert [f.name for f in alone.files] == [f"fil-{n}-0.pdf"] * (n % 2)
                addenda = await db.scalar(
                    select(func.count()).where(ReportAddendum.report_id == rid)
                )
                assert sum(v[0].startswith("Tillägg:") for v in alone.versions) == addenda
                if n % 3 == 0:
                    assert any(f"nummer {n}." in v[0] for v in alone.versions)
            loaded = await service.load_many_unchecked(
                db, rt.vault, [("report", ids[1]), ("report", uuid.uuid4()), ("report", ids[0])]
            )
            assert [r.id for _, r in loaded] == [ids[1], ids[0]]
    finally:
        await rt.engine.dispose()


async def test_the_export_reads_each_file_once_and_audits_each_record(
    filled: tuple[Any, list[uuid.UUID]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, ids = filled
    reads: Counter[str] = Counter()
    real_get = EncryptedObjectStore.get

    async def counting_get(
        self: EncryptedObjectStore, stored: StoredObject
    ) -> AsyncGenerator[bytes, None]:
        reads[stored.object_id] += 1
        async for chunk in real_get(self, stored):
            yield chunk

    monkeypatch.setattr(EncryptedObjectStore, "get", counting_get)
    out = tmp_path / "export.zip"
    code = await export_command(
        settings, org="Hudiksvall", since=None, until=None, kinds=["report"], out=out, pdf=False
    )
    assert code == 0
    rt = build_runtime(settings)
    try:
        async with rt.sessionmaker() as db:
            keys = set(await db.scalars(select(Attachment.object_id)))
            exports = list(
                await db.scalars(select(AuditEntry).where(AuditEntry.action == "archive.export"))
            )
    finally:
        await rt.engine.dispose()
    assert len(keys) == CASES // 2
    assert reads == dict.fromkeys(keys, 1)
    assert sorted(uuid.UUID(e.object_id) for e in exports if e.object_id) == ids
    report = validate_sip(out.read_bytes(), tmp_path / "check")
    assert report.ok, report.problems
    assert sum("/attachments/" in n for n in report.data_files) == len(keys)
    with zipfile.ZipFile(out) as z:
        for rid in ids:
            (trail_name,) = [n for n in z.namelist() if n.endswith(f"report-{rid}/audit.json")]
            trail = json.loads(z.read(trail_name))
            assert [e["action"] for e in trail].count("archive.export") == 1


def test_the_fast_escaping_is_saxutils() -> None:
    import random
    from xml.sax import saxutils

    from portal.archive import export

    rng = random.Random(20261204)
    alphabet = "ab/ .-_åÖ&<>\"'\n\r\t;#"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 10)))
        assert export.escape(text) == saxutils.escape(text)
        assert export.quoteattr(text) == saxutils.quoteattr(text)
