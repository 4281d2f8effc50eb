"""Attach files to records, list them, and open them for download.

Generic: a file belongs to an owner (`owner_type`, `owner_id`) in an organisation. Access
control is the owner's service's job (it checks the caller may see the owner, then calls here);
this module stores, lists, audits downloads and keeps database and object store consistent.

Object-store I/O never runs while a database connection, transaction or row lock is held (an
S3 outage must not take the pool, the audit chain's head row or the owner's row with it). This
is the one exception to the one-transaction-per-request rule (`portal.web.deps.provide_db`):

1. upload: the owner's service checks access and the files in the request's transaction, then
   `release`s it (commit: the pooled connection goes back, nothing is locked);
2. `store_files` encrypts and stores every file with no connection held (`put` is atomic: a
   failing source or backend leaves nothing; a failure deletes the files already stored);
3. `recording` opens a short transaction of its own in which the service re-checks the owner
   (still there, still open for files, same tenant), locks it, and `record_files` inserts and
   audits the rows. If that transaction does not commit, the objects are deleted (best effort,
   in the background; whatever is left — S3 down too, or the process killed — is an orphan
   that `jourpost storage sweep` removes after its grace period).

Downloads: `open_attachment` finds the row in the request's transaction, releases it, reads
the first chunk (so a missing or unreachable object fails before any byte is sent) and audits
the download in a short transaction of its own; the rest streams after the handler returned.

    release(db)
    store_files(files, uploads, checked) -> list[StagedFile]
    recording(sessions, files, staged) -> async context: AsyncSession
    record_files(db, vault, staged, *, owner_type, owner_id, org_id, actor) -> list[Attachment]
    list_attachments(db, vault, *, owner_type, owner_id) -> list[AttachmentView]
    stored_attachments(db, vault, *, owner_type, owner_id) -> list[StoredAttachment]
    open_attachment(db, sessions, files, vault, *, owner_type, owner_id, attachment_id, actor)
        -> OpenedFile (view + verified plaintext chunks)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.attachments.files import CheckedFile, check_file
from portal.attachments.models import Attachment
from portal.attachments.store import stored_columns, stored_object
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.errors import DomainError, InvalidInput, NotFound
from portal.pii import Vault, field_context
from storage import EncryptedObjectStore, StorageError, StoredObject

log = logging.getLogger("jourpost.attachments")

MAX_FILES_PER_UPLOAD = 10
"""Most files accepted in one upload (each is checked, encrypted and stored in the request)."""
_background: set[asyncio.Task[None]] = set()


class StorageUnavailable(DomainError):
    """The object store failed: on upload nothing was saved; on download nothing was sent."""

    status = 503
    title = "Fillagringen svarar inte"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Filen kunde inte sparas just nu, och inget av det du skickade sparades. "
            "Försök igen om en stund."
        )


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as received: a seekable binary file and the name the client gave."""

    file: IO[bytes]
    """The spooled upload (Litestar's UploadFile.file)."""
    filename: str | None
    """The client's file name (checked, never trusted for the type)."""


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """An attachment as pages and the API show it."""

    id: uuid.UUID
    """The attachment."""
    name: str
    """Decrypted display name."""
    content_type: str
    """Type decided from the content."""
    size: int
    """Bytes."""
    created_at: datetime
    """When it was attached."""


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """An attachment with what reading it back needs (the archive checks and exports these)."""

    view: AttachmentView
    """What it is."""
    stored: StoredObject
    """How to read it back (key, size, SHA-256, wrapped data key)."""


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """A file ready to stream: the first chunk is already read, so a missing object fails early."""

    view: AttachmentView
    """What it is."""
    chunks: AsyncIterator[bytes]
    """Verified plaintext; the stream fails (never ends cleanly) if anything doesn't verify."""


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file already in the object store whose row is not recorded yet."""

    attachment_id: uuid.UUID
    """The id its row will get (the object key is derived from it)."""
    checked: CheckedFile
    """What the checks found (display name, type)."""
    stored: StoredObject
    """How to read it back (key, size, SHA-256, wrapped data key)."""


def _view(vault: Vault, row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id,
        name=vault.decrypt(row.name_enc, field_context(Attachment.name_enc, row.id)),
        content_type=row.content_type,
        size=row.size,
        created_at=row.created_at,
    )


async def check_upload(upload: Upload, field: str = "attachments") -> CheckedFile:
    """Name, size and content checks (InvalidInput with a Swedish message for `field`)."""
    return await asyncio.to_thread(check_file, upload.file, upload.filename, field)


async def check_uploads(uploads: Sequence[Upload], field: str = "attachments") -> list[CheckedFile]:
    """Check every file of one upload before any is stored; at most MAX_FILES_PER_UPLOAD."""
    if len(uploads) > MAX_FILES_PER_UPLOAD:
        raise InvalidInput(
            errors={field: f"Du kan bifoga högst {MAX_FILES_PER_UPLOAD} filer åt gången."}
        )
    return [await check_upload(u, field) for u in uploads]


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _delete_quietly(files: EncryptedObjectStore, object_id: str) -> None:
    try:
        await files.store.delete(object_id)
    except StorageError as exc:  # left for an orphan sweep; never leaks into the response
        log.warning("could not delete orphaned object %s: %s", object_id, type(exc).__name__)


async def release(db: AsyncSession) -> None:
    """End the request's transaction now: its pooled connection goes back, its locks are freed.

    What the request wrote so far is committed. Later writes go in a short transaction of their
    own (`recording`, or the caller's `sessions()`); a statement in the request's session
    afterwards begins a new transaction, taking a pooled connection again (as
    `portal.chair_signing.release`).
    """
    await db.commit()


async def _store(files: EncryptedObjectStore, upload: Upload, checked: CheckedFile) -> StagedFile:
    attachment_id = uuid.uuid4()
    object_id = f"attachments/{attachment_id.hex}"
    try:
        # The spooled file itself: read in the storage threads, and into the filesystem store
        # read, sealed and written in one thread call per batch of segments.
        await asyncio.to_thread(upload.file.seek, 0)
        stored = await files.put(object_id, upload.file)
    except StorageError as exc:
        log.warning("object store refused %s: %s", object_id, type(exc).__name__)
        raise StorageUnavailable() from exc
    return StagedFile(attachment_id, checked, stored)


async def store_files(
    files: EncryptedObjectStore, uploads: Sequence[Upload], checked: Sequence[CheckedFile]
) -> list[StagedFile]:
    """Encrypt and store every checked file; call it with no database connection held.

    All or nothing: if one fails (StorageUnavailable) or the request is cancelled, the files
    already stored are discarded.
    """
    staged: list[StagedFile] = []
    try:
        for upload, check in zip(uploads, checked, strict=True):
            staged.append(await _store(files, upload, check))
    except BaseException:
        discard(files, staged)
        raise
    return staged


def discard(files: EncryptedObjectStore, staged: Sequence[StagedFile]) -> None:
    """Delete the objects of files whose rows were not recorded (background, best effort)."""
    for item in staged:
        _spawn(_delete_quietly(files, item.stored.object_id))


async def discards_settled() -> None:
    """Wait until every background deletion started so far (by `discard`) has finished."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


@asynccontextmanager
async def recording(
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    staged: Sequence[StagedFile],
) -> AsyncIterator[AsyncSession]:
    """A short transaction of its own for recording `staged`; if it doesn't commit, they go.

    The caller re-checks and locks the owner in it, then calls `record_files`. Any error inside
    (a refused re-check, a database fault) or in the commit discards the stored objects.
    """
    try:
        async with sessions() as db, db.begin():
            yield db
    except BaseException:
        discard(files, staged)
        raise


async def record_files(
    db: AsyncSession,
    vault: Vault,
    staged: Sequence[StagedFile],
    *,
    owner_type: str,
    owner_id: uuid.UUID,
    org_id: uuid.UUID,
    actor: Actor,
) -> list[Attachment]:
    """Insert and audit the rows of stored files (in the `recording` transaction)."""
    rows = [_row(vault, item, owner_type, owner_id, org_id, actor) for item in staged]
    db.add_all(rows)
    await db.flush()
    for row in rows:
        await audit.record(
            db,
            "attachment.add",
            actor=actor,
            owner_org_id=org_id,
            object_type="attachment",
            object_id=row.id,
            details={"owner_type": owner_type, "owner_id": str(owner_id), "size": row.size},
        )
    return rows


def _row(
    vault: Vault,
    item: StagedFile,
    owner_type: str,
    owner_id: uuid.UUID,
    org_id: uuid.UUID,
    actor: Actor,
) -> Attachment:
    return Attachment(
        id=item.attachment_id,
        owner_type=owner_type,
        owner_id=owner_id,
        organisation_id=org_id,
        name_enc=vault.encrypt(
            item.checked.name, field_context(Attachment.name_enc, item.attachment_id)
        ),
        content_type=item.checked.content_type,
        created_by=actor.user_id,
        **stored_columns(item.stored),
    )


async def list_attachments(
    db: AsyncSession, vault: Vault, *, owner_type: str, owner_id: uuid.UUID
) -> list[AttachmentView]:
    """The owner's attachments, oldest first."""
    rows = await db.scalars(
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id == owner_id)
        .order_by(Attachment.created_at)
    )
    return [_view(vault, r) for r in rows]


async def list_attachments_of(
    db: AsyncSession, vault: Vault, *, owner_type: str, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AttachmentView]]:
    """`list_attachments` of several owners with one query (owners without any are absent)."""
    found = await stored_attachments_of(db, vault, owner_type=owner_type, owner_ids=owner_ids)
    return {owner: [a.view for a in rows] for owner, rows in found.items()}


async def stored_attachments_of(
    db: AsyncSession, vault: Vault, *, owner_type: str, owner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[StoredAttachment]]:
    """`stored_attachments` of several owners with one query (owners without any are absent)."""
    out: dict[uuid.UUID, list[StoredAttachment]] = {}
    rows = await db.scalars(
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id.in_(list(owner_ids)))
        .order_by(Attachment.created_at)
    )
    for r in rows:
        out.setdefault(r.owner_id, []).append(
            StoredAttachment(
                _view(vault, r),
                StoredObject(r.object_id, r.size, r.sha256, r.kek_id, r.wrapped_key),
            )
        )
    return out


async def stored_attachments(
    db: AsyncSession, vault: Vault, *, owner_type: str, owner_id: uuid.UUID
) -> list[StoredAttachment]:
    """The owner's attachments with their stored objects, oldest first (the caller has checked
    access; nothing is read from the object store here)."""
    rows = await db.scalars(
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id == owner_id)
        .order_by(Attachment.created_at)
    )
    return [StoredAttachment(_view(vault, r), stored_object(r)) for r in rows]


async def open_attachment(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    *,
    owner_type: str,
    owner_id: uuid.UUID,
    attachment_id: uuid.UUID,
    actor: Actor,
) -> OpenedFile:
    """Open the owner's attachment for download and audit it (NotFound if not the owner's).

    Releases the request's transaction (`release`) before the object store is asked, and
    audits the download in a short transaction of its own once the first chunk was read.
    """
    row = await db.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id,
            Attachment.owner_type == owner_type,
            Attachment.owner_id == owner_id,
        )
    )
    if row is None:
        raise NotFound()
    view = _view(vault, row)
    await release(db)
    plaintext = files.get(stored_object(row))
    try:
        first = await anext(plaintext)
    except StorageError as exc:
        await plaintext.aclose()
        log.error("attachment %s unreadable: %s", row.id, type(exc).__name__)
        raise StorageUnavailable(
            "Filen kunde inte hämtas just nu. Försök igen om en stund."
        ) from exc
    try:
        async with sessions() as audit_db, audit_db.begin():
            await audit.record(
                audit_db,
                "attachment.download",
                actor=actor,
                owner_org_id=row.organisation_id,
                object_type="attachment",
                object_id=row.id,
                details={"owner_type": owner_type, "owner_id": str(owner_id)},
            )
    except BaseException:
        await plaintext.aclose()
        raise

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            yield first
            async for chunk in plaintext:
                yield chunk
        finally:
            await plaintext.aclose()

    return OpenedFile(view, chunks())


# --- retention, log review, statistics ---


async def object_keys(
    db: AsyncSession, owner_type: str, owner_ids: Select[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The store keys of the files of every owner `owner_ids` selects, per owner."""
    rows = await db.execute(
        select(Attachment.owner_id, Attachment.object_id).where(
            Attachment.owner_type == owner_type, Attachment.owner_id.in_(owner_ids)
        )
    )
    keys: dict[uuid.UUID, list[str]] = {}
    for owner_id, key in rows:
        keys.setdefault(owner_id, []).append(key)
    return keys


async def delete_rows(db: AsyncSession, owner_type: str, owner_id: uuid.UUID) -> None:
    """Delete an owner's attachment rows (culling; the caller removes the objects after)."""
    await db.execute(
        delete(Attachment).where(
            Attachment.owner_type == owner_type, Attachment.owner_id == owner_id
        )
    )
