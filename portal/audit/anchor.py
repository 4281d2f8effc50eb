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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.db.base import utcnow
from portal.db.models import AuditEntry
from storage import ObjectStore
from storage.errors import RetentionError

PREFIX = "audit/anchors/"
RETENTION = timedelta(days=365 * 10 + 3)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


ANCHOR_LOCK = 0x4A50_414E_4348  # "JPANCH"
"""PostgreSQL advisory lock key: one anchoring instance at a time."""


async def anchor(db: AsyncSession, store: ObjectStore) -> int | None:
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
    if await store.exists(key):
        return None
    body = json.dumps({"seq": head.seq, "hash": head.hash, "at": utcnow().isoformat()}).encode()
    try:
        await store.put(key, _one(body), retain_until=utcnow() + RETENTION)
    except RetentionError:
        existing = json.loads(b"".join([c async for c in store.get(key)]))
        if (existing.get("seq"), existing.get("hash")) == (head.seq, head.hash):
            return None  # written by another instance in the meantime: the same anchor
        raise
    return int(head.seq)


RESTORE_PREFIX = "audit/restores/"
"""Where acknowledged restores are recorded (locked like the anchors)."""


@dataclass(frozen=True, slots=True)
class LostSegment:
    """Entries that the anchors prove existed and a recorded restore says were lost."""

    first_seq: int
    """The first entry no longer in the database."""
    last_seq: int
    """The newest entry an anchor had proven before the restore."""
    recorded_at: str
    """When the restore was acknowledged (ISO 8601)."""


@dataclass(frozen=True, slots=True)
class AnchorReport:
    """The result of checking the anchors against the database."""

    anchors: int
    """How many anchors were checked."""
    first_bad_seq: int | None
    """The first anchored entry whose hash differs: the chain was rewritten."""
    ends_at: int | None = None
    """Set when the chain ends before entries that anchors prove existed (and no restore was
    recorded for them): the database's last entry. A restore from backup, or the newest
    entries deleted — the log can't tell which; the backup log can."""
    anchored_through: int | None = None
    """With `ends_at`: the newest entry an anchor proves."""
    lost: tuple[LostSegment, ...] = ()
    """Segments lost in restores that were recorded (`jourpost audit record-restore`)."""

    @property
    def ok(self) -> bool:
        """True when every anchor matches or belongs to a recorded restore's lost segment."""
        return self.first_bad_seq is None and self.ends_at is None


async def _read(store: ObjectStore, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(b"".join([c async for c in store.get(key)]))
    return data


async def _anchors(store: ObjectStore) -> list[dict[str, Any]]:
    keys = [k async for k in store.list_keys(PREFIX)]
    return [await _read(store, k) for k in sorted(keys)]


async def _restores(store: ObjectStore) -> list[dict[str, Any]]:
    keys = [k async for k in store.list_keys(RESTORE_PREFIX)]
    return [await _read(store, k) for k in sorted(keys)]


async def verify_anchors(db: AsyncSession, store: ObjectStore) -> AnchorReport:
    """Every anchored (seq, hash) must still be in the chain — except the entries a recorded
    restore says were lost: anchors written before that restore for entries after the point
    the database was restored to belong to a timeline that no longer exists."""
    restores = await _restores(store)
    head = int((await db.execute(text("SELECT seq FROM audit_head WHERE id = 1"))).scalar_one())
    checked, beyond = 0, 0
    for body in await _anchors(store):
        seq = int(body["seq"])
        written = datetime.fromisoformat(body["at"])
        if any(
            datetime.fromisoformat(r["at"]) > written and seq > r["restored_to_seq"]
            for r in restores
        ):
            continue  # the lost timeline, acknowledged
        checked += 1
        if seq > head:
            beyond = max(beyond, seq)
            continue
        stored = await db.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))
        if stored != body["hash"]:
            return AnchorReport(checked, seq)
    lost = tuple(
        LostSegment(int(r["restored_to_seq"]) + 1, int(r["anchored_through"]), str(r["at"]))
        for r in restores
    )
    if beyond:
        return AnchorReport(checked, None, ends_at=head, anchored_through=beyond, lost=lost)
    return AnchorReport(checked, None, lost=lost)


class NothingToRecord(Exception):
    """No anchor proves an entry beyond the database's last one: there is no restore to record."""


async def record_restore(db: AsyncSession, store: ObjectStore) -> LostSegment:
    """Acknowledge that the database was restored to its current head (after the operator
    checked the backup log): record, in the object store and locked like the anchors, which
    anchored entries were lost. `verify_anchors` then treats them as a lost segment, not as
    tampering, and keeps reporting it. Audited in the caller's transaction."""
    from portal.audit import service as audit

    head = (await db.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1"))).one()
    report = await verify_anchors(db, store)
    if report.first_bad_seq is not None:
        raise NothingToRecord(f"entry {report.first_bad_seq} differs from its anchor: a rewrite")
    if report.ends_at is None or report.anchored_through is None:
        raise NothingToRecord("no anchor proves an entry beyond the database's last one")
    at = utcnow().isoformat()
    body = json.dumps(
        {
            "restored_to_seq": int(head.seq),
            "head_hash": head.hash,
            "anchored_through": report.anchored_through,
            "at": at,
        }
    ).encode()
    key = f"{RESTORE_PREFIX}{utcnow():%Y%m%dT%H%M%S%f}.json"
    await store.put(key, _one(body), retain_until=utcnow() + RETENTION)
    await audit.record(
        db,
        "audit.restore_recorded",
        details={"restored_to_seq": int(head.seq), "lost_through": report.anchored_through},
    )
    return LostSegment(int(head.seq) + 1, report.anchored_through, at)
