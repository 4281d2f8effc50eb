"""The object store against the database: orphaned objects out, missing objects as an alarm.

An object is stored before the row that names it commits (files are encrypted and uploaded
first, then a short transaction records them). If that transaction never commits — the instance
is killed, the database goes away, the rollback hook can't reach S3 — the object stays with no
row: an orphan, holding ciphertext nobody can list, find or cull. `sweep` finds them:

- an orphan older than the grace period (so an upload whose row is about to commit is left
  alone) is deleted — unless it is under retention or legal hold, which the store enforces for
  years (a signed decision's PDF is locked the moment it is stored); those are reported with
  their lock;
- the reverse: a row whose object is missing is an alarm (a file a user will fail to open).

Objects that no row names by design are skipped: audit anchors. Run it daily from cron or a
systemd timer (`jourpost storage sweep`, docs/operations.md); `--dry-run` only reports.

`sweep_uploads` is the same for uploads that never became objects: a portal killed mid-`put`
leaves an incomplete S3 multipart upload (its parts hold space, no key names it) or a temporary
file on the filesystem. Those started more than `upload_max_age_hours` (24) ago are aborted —
no upload of the portal runs that long, so a younger one may still be in progress and is kept.
Run by the periodic jobs (`abort_uploads`) and `jourpost storage sweep-uploads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.models import Attachment
from portal.decisions.models import Decision
from portal.police.models import PoliceRequest
from storage.errors import ObjectNotFound, RetentionError
from storage.protocol import IncompleteUpload, ObjectStore

GRACE = timedelta(hours=24)
"""How old an object with no row must be before it counts as an orphan."""

NO_ROW_BY_DESIGN = ("audit/anchors/",)
"""Key prefixes whose objects no row names (the audit chain's anchors)."""


@dataclass(frozen=True, slots=True)
class LockedOrphan:
    """An orphan the store will not delete yet."""

    key: str
    """Its key."""
    retain_until: datetime | None
    """End of its retention, if any."""
    legal_hold: bool
    """Whether a legal hold is on."""


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep found and did."""

    objects: int
    """Objects looked at."""
    rows: int
    """Object references in the database looked at."""
    removed: tuple[str, ...]
    """Orphans deleted (with dry_run: that would be)."""
    locked: tuple[LockedOrphan, ...]
    """Orphans kept by retention or legal hold."""
    young: int
    """Objects with no row yet, inside the grace period."""
    missing: tuple[str, ...]
    """Keys named by a row but absent from the store: the alarm."""

    @property
    def alarm(self) -> bool:
        """True when a row points at an object that is not there."""
        return bool(self.missing)


async def referenced_keys(db: AsyncSession) -> set[str]:
    """Every object key a database row names."""
    keys = set((await db.scalars(select(Attachment.object_id))).all())
    for column in (Decision.signed_object_id, PoliceRequest.signed_object_id):
        keys |= {
            k for k in (await db.scalars(select(column).where(column.is_not(None)))).all() if k
        }
    return keys


async def sweep(
    db: AsyncSession,
    store: ObjectStore,
    *,
    now: datetime,
    grace: timedelta = GRACE,
    dry_run: bool = False,
) -> SweepReport:
    """Compare the store with the database (see the module docstring)."""
    named = await referenced_keys(db)
    seen: set[str] = set()
    removed: list[str] = []
    locked: list[LockedOrphan] = []
    young = 0
    async for key in store.list_keys(""):
        seen.add(key)
        if key in named or key.startswith(NO_ROW_BY_DESIGN):
            continue
        try:
            if await store.modified(key) > now - grace:
                young += 1
                continue
            retain_until, hold = await store.lock_state(key)
            if hold or (retain_until is not None and retain_until > now):
                locked.append(LockedOrphan(key, retain_until, hold))
                continue
            if not dry_run:
                await store.delete(key)
        except ObjectNotFound:
            continue  # deleted meanwhile
        except RetentionError:
            retain_until, hold = await store.lock_state(key)
            locked.append(LockedOrphan(key, retain_until, hold))
            continue
        removed.append(key)
    missing = sorted(k for k in named if k not in seen)
    return SweepReport(len(seen), len(named), tuple(removed), tuple(locked), young, tuple(missing))


UPLOAD_MAX_AGE = timedelta(hours=24)
"""How old an incomplete upload must be before `sweep_uploads` aborts it (the default of the
`upload_max_age_hours` setting)."""


@dataclass(frozen=True, slots=True)
class UploadSweepReport:
    """What `sweep_uploads` found and did."""

    aborted: tuple[IncompleteUpload, ...]
    """Incomplete uploads older than the limit, aborted (with dry_run: that would be)."""
    kept: int
    """Younger ones, possibly still in progress, left alone."""


async def sweep_uploads(
    store: ObjectStore,
    *,
    now: datetime,
    max_age: timedelta = UPLOAD_MAX_AGE,
    dry_run: bool = False,
) -> UploadSweepReport:
    """Abort the store's incomplete uploads started before `now - max_age`."""
    found = [upload async for upload in store.incomplete_uploads()]
    stale = [upload for upload in found if upload.initiated <= now - max_age]
    kept = len(found) - len(stale)
    if not dry_run:
        for upload in stale:
            await store.abort_upload(upload)
    return UploadSweepReport(tuple(stale), kept)
