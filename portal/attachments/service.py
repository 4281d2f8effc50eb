"""Attach files to records, list them, and open them for download.

Generic: a file belongs to an owner (`owner_type`, `owner_id`) in an organisation. Access
control is the owner's service's job (it checks the caller may see the owner, then calls here);
this module stores, lists, audits downloads and keeps database and object store consistent.

Nothing half-stored: the object is uploaded first (`put` is atomic: a failing source or backend
leaves nothing), then the row is inserted in the request's transaction. If that transaction
rolls back — a later step fails, or the commit itself — a rollback hook deletes the object.

    add_attachment(db, files, vault, *, owner_type, owner_id, org_id, actor, upload) -> Attachment
    list_attachments(db, vault, *, owner_type, owner_id) -> list[AttachmentView]
    open_attachment(db, files, vault, *, owner_type, owner_id, attachment_id, actor)
        -> OpenedFile (view + verified plaintext chunks)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from portal.attachments.files import CheckedFile, check_file
from portal.attachments.models import Attachment
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.errors import DomainError, InvalidInput, NotFound
from portal.pii import Vault
from storage import EncryptedObjectStore, StorageError, StoredObject

log = logging.getLogger("jourpost.attachments")

_CHUNK = 1 << 20
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
class OpenedFile:
    """A file ready to stream: the first chunk is already read, so a missing object fails early."""

    view: AttachmentView
    """What it is."""
    chunks: AsyncIterator[bytes]
    """Verified plaintext; the stream fails (never ends cleanly) if anything doesn't verify."""


def _view(vault: Vault, row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id,
        name=vault.decrypt(row.name_enc, f"attachments.name:{row.id}"),
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


async def _read_chunks(file: IO[bytes]) -> AsyncGenerator[bytes, None]:
    file.seek(0)
    while chunk := await asyncio.to_thread(file.read, _CHUNK):
        yield chunk


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _delete_quietly(files: EncryptedObjectStore, object_id: str) -> None:
    try:
        await files.store.delete(object_id)
    except StorageError as exc:  # left for an orphan sweep; never leaks into the response
        log.warning("could not delete orphaned object %s: %s", object_id, type(exc).__name__)


def _delete_on_rollback(db: AsyncSession, files: EncryptedObjectStore, object_id: str) -> None:
    """Delete the object if the request's transaction rolls back instead of committing."""
    committed = False

    def on_commit(_session: Session) -> None:
        nonlocal committed
        committed = True

    def on_rollback(_session: Session) -> None:
        if not committed:
            _spawn(_delete_quietly(files, object_id))

    event.listen(db.sync_session, "after_commit", on_commit, once=True)
    event.listen(db.sync_session, "after_rollback", on_rollback, once=True)


async def add_attachment(
    db: AsyncSession,
    files: EncryptedObjectStore,
    vault: Vault,
    *,
    owner_type: str,
    owner_id: uuid.UUID,
    org_id: uuid.UUID,
    actor: Actor,
    upload: Upload,
    checked: CheckedFile | None = None,
) -> Attachment:
    """Check (unless `checked` is given), encrypt and store the file; insert and audit its row."""
    if checked is None:
        checked = await check_upload(upload)
    attachment_id = uuid.uuid4()
    object_id = f"attachments/{attachment_id.hex}"
    try:
        stored = await files.put(object_id, _read_chunks(upload.file))
    except StorageError as exc:
        log.warning("object store refused %s: %s", object_id, type(exc).__name__)
        raise StorageUnavailable() from exc
    _delete_on_rollback(db, files, object_id)
    row = Attachment(
        id=attachment_id,
        owner_type=owner_type,
        owner_id=owner_id,
        organisation_id=org_id,
        object_id=stored.object_id,
        name_enc=vault.encrypt(checked.name, f"attachments.name:{attachment_id}"),
        content_type=checked.content_type,
        size=stored.size,
        sha256=stored.sha256,
        kek_id=stored.kek_id,
        wrapped_key=stored.wrapped_key,
        created_by=actor.user_id,
    )
    db.add(row)
    await db.flush()
    await audit.record(
        db,
        "attachment.add",
        actor=actor,
        owner_org_id=org_id,
        object_type="attachment",
        object_id=attachment_id,
        details={"owner_type": owner_type, "owner_id": str(owner_id), "size": stored.size},
    )
    return row


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


async def open_attachment(
    db: AsyncSession,
    files: EncryptedObjectStore,
    vault: Vault,
    *,
    owner_type: str,
    owner_id: uuid.UUID,
    attachment_id: uuid.UUID,
    actor: Actor,
) -> OpenedFile:
    """Open the owner's attachment for download and audit it (NotFound if not the owner's)."""
    row = await db.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id,
            Attachment.owner_type == owner_type,
            Attachment.owner_id == owner_id,
        )
    )
    if row is None:
        raise NotFound()
    stored = StoredObject(row.object_id, row.size, row.sha256, row.kek_id, row.wrapped_key)
    plaintext = files.get(stored)
    try:
        first = await anext(plaintext)
    except StorageError as exc:
        await plaintext.aclose()
        log.error("attachment %s unreadable: %s", row.id, type(exc).__name__)
        raise StorageUnavailable(
            "Filen kunde inte hämtas just nu. Försök igen om en stund."
        ) from exc
    await audit.record(
        db,
        "attachment.download",
        actor=actor,
        owner_org_id=row.organisation_id,
        object_type="attachment",
        object_id=row.id,
        details={"owner_type": owner_type, "owner_id": str(owner_id)},
    )

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            yield first
            async for chunk in plaintext:
                yield chunk
        finally:
            await plaintext.aclose()

    return OpenedFile(_view(vault, row), chunks())
