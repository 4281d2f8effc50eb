"""`jourpost keys rotate`: every field and every file key moves to the new KEK; afterwards the
old key can leave the keyring and everything still reads back."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace

from sqlalchemy import select

from portal.app import build_runtime
from portal.keys.service import encrypted_columns, rotate
from portal.settings import Settings
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import OLOF, draft_body, jour_client, roster_with_olof
from tests.portal.login import csrf_form, login, through_idp


async def _rotate(settings: Settings) -> tuple[int, int]:
    runtime = build_runtime(settings)
    try:
        report = await rotate(runtime.sessionmaker, runtime.vault, runtime.object_store)
        return report.fields, report.objects
    finally:
        await runtime.engine.dispose()


async def _read_everything(settings: Settings) -> int:
    """Decrypt every encrypted value with the given keyring; return how many were read."""
    runtime = build_runtime(settings)
    count = 0
    try:
        async with runtime.sessionmaker() as db:
            for table, name in encrypted_columns():
                base = name[: -len("_enc")]
                for row_id, value in (await db.execute(select(table.c.id, table.c[name]))).all():
                    if value:
                        runtime.vault.decrypt(value, f"{table.name}.{base}:{row_id}")
                        count += 1
    finally:
        await runtime.engine.dispose()
    return count


def test_rotation_moves_fields_and_files_to_the_new_key(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    jonna.post(f"/api/v1/decisions/{d['id']}/submit")
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    through_idp(olof, start.headers["location"], OLOF)
    signed_before = olof.get(f"/decisions/{d['id']}/signed.pdf").content
    assert signed_before.startswith(b"%PDF-")

    old = portal.settings
    new_key = os.urandom(32)
    both = replace(old, keks={**old.keks, "k2": new_key}, current_kek="k2")
    fields, objects = asyncio.run(_rotate(both))
    assert fields > 10 and objects >= 1
    assert asyncio.run(_rotate(both)) == (0, 0)  # idempotent: nothing left under the old key

    only_new = replace(old, keks={"k2": new_key}, current_kek="k2")
    assert asyncio.run(_read_everything(only_new)) == fields
    try:
        asyncio.run(_read_everything(old))
    except ValueError:
        pass
    else:
        raise AssertionError("values still readable with the old key only")

    async def read_signed() -> bytes:
        runtime = build_runtime(only_new)
        try:
            from portal.decisions.models import Decision
            from storage import StoredObject

            async with runtime.sessionmaker() as db:
                row = await db.get(Decision, uuid.UUID(d["id"]))
                assert row is not None and row.signed_kek_id == "k2"
                stored = StoredObject(
                    row.signed_object_id or "",
                    row.signed_size or 0,
                    row.signed_sha256 or "",
                    row.signed_kek_id,
                    row.signed_wrapped_key or b"",
                )
            return b"".join([c async for c in runtime.object_store.get(stored)])
        finally:
            await runtime.engine.dispose()

    assert asyncio.run(read_signed()) == signed_before
