"""The signed decision through the JSON API, and the repair of decisions signed before the
long-term fix (`renew_timestamps`, what `jourpost archive renew-timestamps` runs)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from portal.chair_signing import SigningSetup
from portal.decisions.models import Decision
from portal.decisions.signing import RenewalReport, renew_timestamps
from signing.pki import DevPki
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    ANDERS,
    GUNILLA,
    HANNA,
    OLOF,
    draft_body,
    jour_client,
    signed_decision,
)
from tests.portal.decisions.helpers import roster_with_olof as _roster
from tests.portal.sessions import client_as
from tests.signing.legacy import LEGACY_PDF, old_style_decision
from tests.signing.test_long_term import jourpost_verify


def test_the_signed_pdf_through_the_api(portal: RunningPortal) -> None:
    known = _roster(portal)
    jonna = jour_client(portal)
    draft = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    hanna = client_as(portal.url, portal.settings, HANNA)
    assert hanna.get(f"/api/v1/decisions/{draft['id']}/signed.pdf").status_code == 404

    decision_id = signed_decision(portal)
    r = hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == hanna.get(f"/decisions/{decision_id}/signed.pdf").content
    # Another municipality's handler: 404, as for every other read across tenants.
    gunilla = client_as(portal.url, portal.settings, GUNILLA)
    other = gunilla.get(f"/api/v1/decisions/{decision_id}/signed.pdf")
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")

    schema = hanna.get("/schema/openapi.json").json()
    operation = schema["paths"]["/api/v1/decisions/{decision_id}/signed.pdf"]["get"]
    assert "application/pdf" in operation["responses"]["200"]["content"]


async def _replace_signed_object(portal: RunningPortal, decision_id: str, pdf: bytes) -> None:
    from portal.app import build_runtime
    from portal.db.base import utcnow
    from portal.decisions.signing import RETENTION, _one_chunk

    runtime = build_runtime(portal.settings)
    try:
        stored = await runtime.object_store.put(
            f"decisions/{decision_id}/signed-legacy.pdf",
            _one_chunk(pdf),
            retain_until=utcnow() + RETENTION,
        )
        async with runtime.sessionmaker() as db, db.begin():
            await db.execute(
                update(Decision)
                .where(Decision.id == uuid.UUID(decision_id))
                .values(
                    signed_object_id=stored.object_id,
                    signed_sha256=stored.sha256,
                    signed_size=stored.size,
                    signed_kek_id=stored.kek_id,
                    signed_wrapped_key=stored.wrapped_key,
                )
            )
    finally:
        await runtime.engine.dispose()


async def _renew(
    portal: RunningPortal, setup: SigningSetup | None = None, **kw: Any
) -> RenewalReport:
    from portal.app import build_runtime

    runtime = build_runtime(portal.settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            return await renew_timestamps(db, runtime.object_store, setup or runtime.signing, **kw)
    finally:
        await runtime.engine.dispose()


def _legacy_setup(pki: DevPki) -> SigningSetup:
    return SigningSetup(
        pki.issuer, (pki.signing_ca, pki.root), (pki.root,), f"{pki.trust_services_url}/tsa"
    )


def test_renew_timestamps_repairs_a_decision_signed_by_the_old_code(
    portal: RunningPortal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stored decision whose signed PDF has the old code's defects (tests/signing/legacy.py);
    # the portal's signing set-up is that PKI's, served again at its address.
    decision_id = signed_decision(portal)
    signer, original = asyncio.run(old_style_decision(tmp_path, monkeypatch))
    asyncio.run(_replace_signed_object(portal, decision_id, original))
    hanna = client_as(portal.url, portal.settings, HANNA)
    with signer.todays_services():
        setup = _legacy_setup(signer.pki)
        dry = asyncio.run(_renew(portal, setup, dry_run=True))
        assert (dry.checked, dry.renewed, dry.repaired, dry.still_invalid) == (1, 1, 1, 0)
        done = asyncio.run(_renew(portal, setup))
        assert (done.renewed, done.repaired, done.still_invalid) == (1, 1, 0)
        again = asyncio.run(_renew(portal, setup))
        assert (again.renewed, again.repaired) == (0, 0)  # valid now: nothing more to do
    repaired = hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf").content
    assert repaired.startswith(original)  # the original signature untouched
    path = tmp_path / "reparerat.pdf"
    path.write_bytes(repaired)
    for offset in ("+1d", "+1826d"):
        report = jourpost_verify(offset, path, signer.pki.root_path)
        assert report["valid"] is True, (offset, report)


def test_renew_timestamps_leaves_a_damaged_decision_alone(portal: RunningPortal) -> None:
    decision_id = signed_decision(portal)
    hanna = client_as(portal.url, portal.settings, HANNA)
    signed = hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf").content
    offset = signed.index(b"\n%", 0, 64) + 2  # inside the first signed byte range
    damaged = signed[:offset] + bytes([signed[offset] ^ 1]) + signed[offset + 1 :]
    asyncio.run(_replace_signed_object(portal, decision_id, damaged))
    result = asyncio.run(_renew(portal))
    assert (result.renewed, result.still_invalid) == (0, 1)
    assert hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf").content == damaged


def test_verifying_logs_no_personal_data(
    portal: RunningPortal, caplog: pytest.LogCaptureFixture
) -> None:
    # pyHanko logs every failed validation step with the signer certificate's subject (name and
    # PNOSE personnummer); the fixture's expired chair certificate makes it try and fail.
    anders = client_as(portal.url, portal.settings, ANDERS)
    anders.get("/verify")
    with caplog.at_level(logging.DEBUG):
        r = anders.post(
            "/verify",
            data={"_csrf_token": anders.cookies["csrftoken"]},
            files={"file": ("beslut.pdf", LEGACY_PDF.read_bytes(), "application/pdf")},
        )
    assert r.status_code == 200 and "Inte giltig" in r.text
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    assert OLOF not in caplog.text and "Ordén" not in caplog.text


class _HangingPuts:
    """Fault injection (a wrapper on purpose): the real encrypted store whose second `put`
    waits on a gate, as a put does while S3 is frozen. Everything else is the real store."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.puts = 0
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        self.puts += 1
        if self.puts == 2:
            self.entered.set()
            await self.gate.wait()
        return await self.inner.put(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _renew_while_auditing(portal: RunningPortal) -> RenewalReport:
    from sqlalchemy import text

    from portal.app import build_runtime
    from portal.audit import service as audit

    runtime = build_runtime(portal.settings)
    files = _HangingPuts(runtime.object_store)

    async def renew() -> RenewalReport:
        async with runtime.sessionmaker() as db, db.begin():
            return await renew_timestamps(db, files, runtime.signing, force=True)  # type: ignore[arg-type]

    try:
        task = asyncio.create_task(renew())
        try:
            await asyncio.wait_for(files.entered.wait(), 60)
            async with runtime.sessionmaker() as db, db.begin():
                await db.execute(text("SET LOCAL lock_timeout = '3s'"))
                await audit.record(db, "test.while_renewing")  # needs the chain's head row
        finally:
            files.gate.set()
            result = await asyncio.wait_for(task, 120)
        return result
    finally:
        await runtime.engine.dispose()


# Row locks are PostgreSQL's (SQLite has one write lock per database): PostgreSQL only.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_renewing_timestamps_holds_no_audit_lock_while_the_store_hangs(
    portal: RunningPortal,
) -> None:
    """The run audits at its end: an entry per renewed decision written inside the loop would
    keep the audit chain's head row locked across every later TSA call and S3 put."""
    signed_decision(portal)
    signed_decision(portal)
    result = asyncio.run(_renew_while_auditing(portal))
    assert (result.checked, result.renewed, result.still_invalid) == (2, 2, 0)
