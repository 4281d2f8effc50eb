"""Anchor the audit chain's head in write-once storage.

The hash chain detects an edit, deletion or insertion, unless someone with database access
rewrites every entry after the edit and recomputes the hashes. Anchors close that gap: the
head (sequence number and hash) is written regularly as a small object with retention in the
object store (S3 Object Lock COMPLIANCE in production), where the database administrator cannot
change it. `verify_anchors` checks that every anchored entry still has the anchored hash.
Anchors hold no personal data (a number and a hash), so they are stored unencrypted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.base import utcnow
from portal.db.models import AuditEntry
from storage.errors import RetentionError

PREFIX = "audit/anchors/"
RETENTION = timedelta(days=365 * 10 + 3)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


ANCHOR_LOCK = 0x4A50_414E_4348  # "JPANCH"
"""PostgreSQL advisory lock key: one anchoring instance at a time."""


async def anchor(db: AsyncSession, store: object) -> int | None:
    """Write the current head as an anchor unless it is already anchored; return its seq.

    Single writer: every instance runs this job, and two of them checking "not anchored yet"
    at the same moment would both write a key that is locked for ten years the moment it exists
    (the second write fails, or leaves two locked versions). On PostgreSQL the job takes a
    transaction-scoped advisory lock and skips the round when another instance holds it.
    Idempotent too: if the object turns out to exist already (another writer, a retry), an
    anchor with the same seq and hash counts as done; a different one is a real alarm.
    """
    if db.get_bind().dialect.name == "postgresql":
        locked = await db.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ANCHOR_LOCK}
        )
        if not locked:
            return None
    head = (await db.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1"))).one()
    if head.seq == 0:
        return None
    key = f"{PREFIX}{head.seq:012d}.json"
    if await store.exists(key):  # type: ignore[attr-defined]
        return None
    body = json.dumps({"seq": head.seq, "hash": head.hash, "at": utcnow().isoformat()}).encode()
    try:
        await store.put(key, _one(body), retain_until=utcnow() + RETENTION)  # type: ignore[attr-defined]
    except RetentionError:
        existing = json.loads(b"".join([c async for c in store.get(key)]))  # type: ignore[attr-defined]
        if (existing.get("seq"), existing.get("hash")) == (head.seq, head.hash):
            return None  # written by another instance in the meantime: the same anchor
        raise
    return int(head.seq)


@dataclass(frozen=True, slots=True)
class AnchorReport:
    """The result of checking the anchors against the database."""

    anchors: int
    """How many anchors were checked."""
    first_bad_seq: int | None
    """The first anchored entry whose hash differs or that is missing."""

    @property
    def ok(self) -> bool:
        """True when every anchor matches."""
        return self.first_bad_seq is None


async def verify_anchors(db: AsyncSession, store: object) -> AnchorReport:
    """Every anchored (seq, hash) must still be in the chain."""
    checked = 0
    keys = [k async for k in store.list_keys(PREFIX)]  # type: ignore[attr-defined]
    for key in sorted(keys):
        body = json.loads(b"".join([c async for c in store.get(key)]))  # type: ignore[attr-defined]
        checked += 1
        stored = await db.scalar(select(AuditEntry.hash).where(AuditEntry.seq == body["seq"]))
        if stored != body["hash"]:
            return AnchorReport(checked, int(body["seq"]))
    return AnchorReport(checked, None)
