"""Attachments: type by content, names, size, encryption at rest, and nothing half-stored."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.advisories.models import Advisory
from portal.attachments.models import Attachment
from portal.settings import Settings
from storage import BackendUnavailable, EncryptedObjectStore, FilesystemStore, Keyring
from tests.portal.advisories.conftest import AdvisoryPortal, start_portal
from tests.portal.advisories.helpers import HANNA, JONNA, body, pdf_bytes, png_bytes, run


def _in_ten_days() -> str:
    return (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")


def _objects(settings: Settings) -> list[Path]:
    root = settings.object_root / "objects"
    # Audit-chain anchors (written by the periodic job at start-up) are not attachments.
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return [p for p in files if "anchors" not in p.parts]


def _count(settings: Settings, model: Any) -> int:
    async def count(db: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(model)))

    return run(settings, count)


def _post(jp: AdvisoryPortal) -> tuple[Any, str]:
    hanna = jp.client(HANNA)
    r = hanna.post("/api/v1/advisories", json=body())
    assert r.status_code == 201
    return hanna, r.json()["id"]


def _upload(
    client: Any, aid: str, name: str, content: bytes, ctype: str = "application/pdf"
) -> Any:
    """POST one file; the multipart body is built by hand so the name arrives byte for byte.

    (httpx percent-encodes control characters in file names, which would hide them.)
    """
    boundary = "jourpost-test-boundary"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="attachments"; filename="{quoted}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode()
    return client.post(
        f"/api/v1/advisories/{aid}/attachments",
        content=head + content + f"\r\n--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


BAD_FILES = [
    ("program.pdf", b"MZ\x90\x00\x03" + os.urandom(2000), "Filtypen stöds inte"),
    ("bild.png", b"<html><script>alert(1)</script></html>", "Filtypen stöds inte"),
    ("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "Filtypen stöds inte"),
    ("trasig.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "Filen är inte en giltig PDF"),
    ("trasig2.pdf", b"%PDF-1.7\ngarbage\nstartxref\n999\n%%EOF\n", "Filen är inte en giltig PDF"),
    ("halv.png", png_bytes()[:30], "Bilden är skadad"),
    ("tom.pdf", b"", "Filen är tom"),
]
BAD_NAMES = [
    "../../etc/passwd.pdf",
    "mapp/plan.pdf",
    "mapp\\plan.pdf",
    "plan..pdf",
    "plan\x07.pdf",
    "plan\u202efdp.exe",  # right-to-left override hides the real extension
    "x" * 151 + ".pdf",
]


def test_disguised_damaged_and_badly_named_files_are_refused(jp: AdvisoryPortal) -> None:
    hanna, aid = _post(jp)
    for name, content, message in BAD_FILES:
        r = _upload(hanna, aid, name, content)
        assert r.status_code == 422, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        (error,) = r.json()["errors"]
        assert error["field"] == "attachments" and message in error["detail"], (name, error)
    for name in BAD_NAMES:
        r = _upload(hanna, aid, name, pdf_bytes())
        assert r.status_code == 422, (name, r.text)
        assert "Filnamn" in r.json()["errors"][0]["detail"], name
    assert _count(jp.settings, Attachment) == 0
    assert _objects(jp.settings) == []


def test_size_limits(jp: AdvisoryPortal) -> None:
    hanna, aid = _post(jp)
    r = _upload(hanna, aid, "stor.pdf", b"%PDF-1.7\n" + b"0" * (21 * 1024 * 1024))
    assert r.status_code == 422
    assert "Filen är för stor. Största tillåtna storlek är 20 MB." in r.text
    r = _upload(hanna, aid, "jättestor.pdf", b"%PDF-1.7\n" + b"0" * (26 * 1024 * 1024))
    assert r.status_code == 413  # the portal's request limit, before any handler runs
    assert _count(jp.settings, Attachment) == 0 and _objects(jp.settings) == []


def test_type_by_content_and_encrypted_at_rest(jp: AdvisoryPortal) -> None:
    hanna, aid = _post(jp)
    image = png_bytes()
    r = _upload(hanna, aid, "Kalle Klients ritning.pdf", image, "application/pdf")
    assert r.status_code == 201, r.text
    (att_id,) = r.json()["ids"]
    got = jp.client(JONNA).get(f"/api/v1/advisories/{aid}/attachments/{att_id}")
    assert got.status_code == 200 and got.content == image
    assert got.headers["content-type"] == "image/png"  # the content decides, not the name
    assert got.headers["content-disposition"].endswith(
        "filename*=UTF-8''Kalle%20Klients%20ritning.pdf.png"
    )
    doc = pdf_bytes("Orosanmälan Kalle Klient", padding=3 * 1024 * 1024)
    r = _upload(hanna, aid, "Orosanmälan.pdf", doc)
    assert r.status_code == 201
    (stored_file,) = [p for p in _objects(jp.settings) if p.stat().st_size > 3_000_000]
    ciphertext = stored_file.read_bytes()
    assert doc[:2000] not in ciphertext and b"Orosanm" not in ciphertext

    async def names(db: Any) -> list[str]:
        return list(await db.scalars(select(Attachment.name_enc)))

    assert not any("Kalle" in n or "Orosan" in n for n in run(jp.settings, names))
    big = jp.client(JONNA).get(f"/api/v1/advisories/{aid}/attachments/{r.json()['ids'][0]}")
    assert big.content == doc and big.headers["content-length"] == str(len(doc))


def test_page_form_refuses_a_bad_file_and_stores_nothing(jp: AdvisoryPortal) -> None:
    hanna = jp.client(HANNA)
    form = {
        "_csrf_token": hanna.cookies["csrftoken"],
        "subjects-0-personal_identity_number": "201103059893",
        "subjects-0-name": "Kalle Klient",
        "plan": "Plan",
        "legal_basis": "none",
        "contact_name": "Hanna",
        "contact_phone": "0650-190 00",
        "valid_until": _in_ten_days(),
    }
    r = hanna.post(
        "/advisories/new",
        data=form,
        files={"attachments": ("plan.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")},
    )
    assert r.status_code == 422
    assert 'role="alert"' in r.text and 'href="#attachments"' in r.text
    assert 'aria-invalid="true" aria-describedby="attachments-hint attachments-error"' in r.text
    assert "Kalle Klient" in r.text  # the rest of the form is kept
    assert _count(jp.settings, Advisory) == 0 and _objects(jp.settings) == []


class FailingStore:
    """Fault injection (a fake, on purpose): a real FilesystemStore whose source stream breaks.

    `put` hands the inner store a stream that raises BackendUnavailable after the first chunk,
    as if the network to S3 dropped in the middle of an upload. Everything else is the real store.
    """

    def __init__(self, inner: FilesystemStore) -> None:
        self.inner = inner
        self.started = 0

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, retain_until: datetime | None = None
    ) -> None:
        async def breaking() -> AsyncGenerator[bytes, None]:
            async for chunk in chunks:
                self.started += 1
                yield chunk
                raise BackendUnavailable("connection reset (injected)")

        await self.inner.put(key, breaking(), retain_until=retain_until)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def broken(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[AdvisoryPortal, list[FailingStore]]]:
    """A portal whose object store fails in the middle of every upload."""
    made: list[FailingStore] = []

    def store(settings: Settings) -> EncryptedObjectStore:
        made.append(FailingStore(FilesystemStore(settings.object_root)))
        return EncryptedObjectStore(made[0], Keyring(settings.keks, settings.current_kek))

    server, holder = start_portal(database_url, tmp_path, store)
    with server as url:
        yield AdvisoryPortal(url, holder["settings"]), made


def test_store_failing_mid_upload_leaves_nothing(
    broken: tuple[AdvisoryPortal, list[FailingStore]],
) -> None:
    jp, (store,) = broken
    hanna, aid = _post(jp)
    doc = pdf_bytes(padding=3 * 1024 * 1024)
    r = _upload(hanna, aid, "plan.pdf", doc)
    assert r.status_code == 503
    assert "inget av det du skickade sparades" in r.json()["detail"]
    assert store.started >= 1  # the upload really began
    assert _count(jp.settings, Attachment) == 0
    all_files = [p for p in (jp.settings.object_root).rglob("*") if p.is_file()]
    assert [p for p in all_files if "anchors" not in p.parts] == []  # not even a temporary file

    # The page form: the advisory is not created either.
    r = hanna.post(
        "/advisories/new",
        data={
            "_csrf_token": hanna.cookies["csrftoken"],
            "subjects-0-personal_identity_number": "200908179799",
            "subjects-0-name": "Olle",
            "plan": "Plan",
            "legal_basis": "none",
            "contact_name": "Hanna",
            "contact_phone": "0650-190 00",
            "valid_until": _in_ten_days(),
        },
        files={"attachments": ("plan.pdf", doc, "application/pdf")},
    )
    assert r.status_code == 503
    assert _count(jp.settings, Advisory) == 1  # only the one posted above
    assert _count(jp.settings, Attachment) == 0


async def test_rolled_back_transaction_deletes_the_object(
    database_url: str, tmp_path: Path
) -> None:
    """Stored files whose recording transaction rolls back (or whose commit fails) are deleted."""
    import io

    from portal.attachments.service import (
        Upload,
        check_uploads,
        discards_settled,
        record_files,
        recording,
        store_files,
    )
    from portal.audit.service import Actor
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.db.models import Organisation, User
    from portal.pii import Vault
    from tests.conftest import make_settings
    from tests.portal.conftest import prepare_database

    settings = make_settings(tmp_path, database_url)
    await prepare_database(settings)
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    files = EncryptedObjectStore(
        FilesystemStore(settings.object_root), Keyring(settings.keks, settings.current_kek)
    )
    engine = make_engine(database_url)
    try:
        maker = make_sessionmaker(engine)
        async with maker() as db:
            user_id = await db.scalar(select(User.id).limit(1))
            org_id = await db.scalar(select(Organisation.id).limit(1))
        assert user_id and org_id
        actor = Actor(user_id, org_id)

        async def stage(*names: str) -> Any:
            uploads = [Upload(io.BytesIO(pdf_bytes()), name) for name in names]
            return await store_files(files, uploads, await check_uploads(uploads))

        staged = await stage("a.pdf", "b.pdf")
        assert len(_objects(settings)) == 2  # stored before any transaction
        with pytest.raises(RuntimeError):
            async with recording(maker, files, staged) as db:
                await record_files(
                    db, vault, staged, owner_type="test", owner_id=org_id, org_id=org_id,
                    actor=actor,
                )  # fmt: skip
                raise RuntimeError("the re-check of the owner failed")
        await discards_settled()
        assert _objects(settings) == []
        async with maker() as db:
            assert await db.scalar(select(func.count()).select_from(Attachment)) == 0

        kept = await stage("c.pdf")
        async with recording(maker, files, kept) as db:
            (row,) = await record_files(
                db, vault, kept, owner_type="test", owner_id=org_id, org_id=org_id, actor=actor
            )
        await discards_settled()  # a wrongly discarded object would be gone by now
        assert await files.store.exists(row.object_id)
        assert len(_objects(settings)) == 1
    finally:
        await engine.dispose()
