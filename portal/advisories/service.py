"""Advisory rules for changes: post, amend, re-confirm, withdraw, acknowledge; reminders.

Versions: each create, amend and re-confirmation adds an immutable version. An amend or
re-confirmation names the version it was based on; a stale one is refused (409), checked by a
conditional UPDATE on `current_version`, so two concurrent amends can't both win. Reads are in
`portal.advisories.queries`, who-may-what in `portal.advisories.access`. Every change is
audited in the request's transaction — except where files are stored: `create` with files and
`add_attachments` check in the request's transaction, release it, store the files with no
connection held, then re-check and record in a short transaction of their own (see
`portal.attachments.service`), so an S3 outage holds neither a pooled connection nor the
advisory's row lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.advisories import access, queries
from portal.advisories.content import (
    DEFAULT_VALIDITY,
    MAX_VALIDITY,
    AdvisoryContent,
    AdvisoryDraft,
    to_blob,
    validate,
)
from portal.advisories.models import (
    Advisory,
    AdvisoryAcknowledgement,
    AdvisorySubject,
    AdvisoryVersion,
)
from portal.advisories.queries import OWNER_TYPE
from portal.attachments import service as attachments
from portal.attachments.files import CheckedFile
from portal.attachments.service import Upload
from portal.audit import service as audit
from portal.db.models import Organisation, Unit
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.lookup import names
from portal.pii import Vault, field_context
from portal.principal import Principal
from storage import EncryptedObjectStore

REMIND_BEFORE = queries.EXPIRES_SOON
"""The sending unit is reminded this long before an advisory expires."""
STALE = (
    "Aviseringen har ändrats av någon annan sedan du öppnade den (nu version {n}). "
    "Öppna den igen och gör om din ändring."
)


async def _add_version(
    db: AsyncSession,
    vault: Vault,
    adv: Advisory,
    number: int,
    kind: str,
    content: AdvisoryContent,
    user_id: uuid.UUID,
    now: datetime,
) -> None:
    version_id = uuid.uuid4()
    db.add(
        AdvisoryVersion(
            id=version_id,
            advisory_id=adv.id,
            version=number,
            kind=kind,
            created_by=user_id,
            created_at=now,
            valid_until=content.valid_until,
            legal_basis=content.legal_basis,
            content_enc=vault.encrypt(
                to_blob(content), field_context(AdvisoryVersion.content_enc, version_id)
            ),
        )
    )
    for position, subject in enumerate(content.subjects):
        if subject.personnummer is None:
            continue
        subject_id = uuid.uuid4()
        db.add(
            AdvisorySubject(
                id=subject_id,
                advisory_id=adv.id,
                version=number,
                position=position,
                pnr_index=vault.index(subject.personnummer),
                pnr_enc=vault.encrypt(
                    subject.personnummer, field_context(AdvisorySubject.pnr_enc, subject_id)
                ),
            )
        )
    await db.flush()
    # Findable by name and alias too (the current version's names; portal.lookup.names).
    await names.index_names(db, vault, "advisory", adv.id, [s.name for s in content.subjects])


async def _bump(db: AsyncSession, adv: Advisory, base_version: int | None) -> int:
    """Claim the next version number, or 409 if someone else got there first."""
    if base_version != adv.current_version:
        raise Conflict(STALE.format(n=adv.current_version))
    claimed = await db.execute(
        update(Advisory)
        .where(Advisory.id == adv.id, Advisory.current_version == base_version)
        .values(current_version=base_version + 1)
        .returning(Advisory.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.first() is None:
        raise Conflict(STALE.format(n=base_version + 1))
    adv.current_version = base_version + 1
    return adv.current_version


async def create(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    draft: AdvisoryDraft,
    *,
    now: datetime,
    organisation_id: uuid.UUID | None = None,
    uploads: Sequence[Upload] = (),
    files: EncryptedObjectStore | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    errors: dict[str, str] | None = None,
) -> uuid.UUID:
    """Post a new advisory (with optional attachments) to the municipality's jour.

    With files, everything is checked first; then the request's transaction is released, the
    files stored, and the advisory and its files recorded in one short transaction.
    """
    org_id, unit_id = access.sender(user, organisation_id)
    errors = dict(errors or {})
    checked: list[CheckedFile] = []
    for upload in uploads:
        try:
            checked.append(await attachments.check_upload(upload))
        except InvalidInput as exc:
            errors.update(exc.errors)
    content = validate(draft, now=now, errors=errors)
    await _jour_of(db, org_id)
    if not uploads:
        adv = await _insert(db, vault, user, content, org_id, unit_id, now)
        return adv.id
    assert files is not None and sessions is not None, "uploads need a file store and sessions"
    await attachments.release(db)
    staged = await attachments.store_files(files, uploads, checked)
    async with attachments.recording(sessions, files, staged) as tx:
        adv = await _insert(tx, vault, user, content, org_id, unit_id, now)
        await attachments.record_files(
            tx, vault, staged, owner_type=OWNER_TYPE, owner_id=adv.id, org_id=org_id,
            actor=user.actor(org_id),
        )  # fmt: skip
    return adv.id


async def _jour_of(db: AsyncSession, org_id: uuid.UUID) -> uuid.UUID:
    """The jour the municipality belongs to; InvalidInput if it has none."""
    org = await db.get(Organisation, org_id)
    if org is None or org.jour_id is None:
        raise InvalidInput(
            errors={"organisation_id": "Kommunen är inte ansluten till en socialjour."}
        )
    return org.jour_id


async def _insert(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    content: AdvisoryContent,
    org_id: uuid.UUID,
    unit_id: uuid.UUID | None,
    now: datetime,
) -> Advisory:
    """Insert the advisory and its first version, audit it and tell the jour."""
    jour_id = await _jour_of(db, org_id)
    adv = Advisory(
        organisation_id=org_id,
        jour_id=jour_id,
        unit_id=unit_id,
        created_by=user.user_id,
        created_at=now,
        status="active",
        current_version=1,
        content_version=1,
        changed_at=now,
        confirmed_at=now,
        valid_until=content.valid_until,
        legal_basis=content.legal_basis,
    )
    db.add(adv)
    await db.flush()
    await _add_version(db, vault, adv, 1, "created", content, user.user_id, now)
    await audit.record(
        db, "advisory.create", actor=user.actor(org_id), owner_org_id=org_id,
        object_type="advisory", object_id=adv.id, details={"version": 1},
    )  # fmt: skip
    await _notify_jour(db, jour_id, adv.id)
    return adv


async def add_attachments(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    uploads: Sequence[Upload],
) -> list[uuid.UUID]:
    """Attach files to an active advisory of the caller's municipality.

    Checked in the request's transaction (which is then released), stored with no connection
    or lock held, recorded in a short transaction that re-checks and locks the advisory.
    """
    action = "attachment.add"
    await access.get_for_sender(db, user, advisory_id, action, lock=False)
    if not uploads:
        raise InvalidInput(errors={"attachments": "Välj en fil att bifoga."})
    checked = await attachments.check_uploads(uploads)  # all, before storing any
    await attachments.release(db)
    staged = await attachments.store_files(files, uploads, checked)
    async with attachments.recording(sessions, files, staged) as tx:
        adv = await access.get_for_sender(tx, user, advisory_id, action)
        rows = await attachments.record_files(
            tx, vault, staged, owner_type=OWNER_TYPE, owner_id=adv.id,
            org_id=adv.organisation_id, actor=access.actor_for(user, adv),
        )  # fmt: skip
    return [row.id for row in rows]


async def amend(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    draft: AdvisoryDraft,
    *,
    base_version: int | None,
    now: datetime,
) -> int:
    """Save a new version with changed content; returns its number."""
    adv = await access.get_for_sender(db, user, advisory_id, "advisory.amend")
    if base_version != adv.current_version:
        raise Conflict(STALE.format(n=adv.current_version))
    content = validate(draft, now=now)
    number = await _bump(db, adv, base_version)
    await _add_version(db, vault, adv, number, "amended", content, user.user_id, now)
    adv.content_version, adv.changed_at, adv.confirmed_at = number, now, now
    adv.valid_until, adv.legal_basis, adv.reminded_at = (
        content.valid_until,
        content.legal_basis,
        None,
    )
    await audit.record(
        db, "advisory.amend", actor=access.actor_for(user, adv), owner_org_id=adv.organisation_id,
        object_type="advisory", object_id=adv.id, details={"version": number},
    )  # fmt: skip
    await _notify_jour(db, adv.jour_id, adv.id)
    return number


async def _notify_jour(db: AsyncSession, jour_id: uuid.UUID, advisory_id: uuid.UUID) -> None:
    """Tell the jour's functional mailboxes that a new or changed advisory waits (no content)."""
    from portal.notify.service import queue_mail

    mailboxes = await db.scalars(
        select(Unit.mailbox).where(Unit.organisation_id == jour_id, Unit.mailbox.is_not(None))
    )
    for mailbox in mailboxes:
        assert mailbox is not None
        await queue_mail(
            db, to=mailbox, template="new_advisory", link_path=f"/advisories/{advisory_id}"
        )


async def reconfirm(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    *,
    base_version: int | None,
    now: datetime,
    valid_until: datetime | None = None,
) -> int:
    """Confirm the plan still holds: a new version with the same content and a new expiry."""
    adv = await access.get_for_sender(db, user, advisory_id, "advisory.reconfirm")
    until = valid_until or now + DEFAULT_VALIDITY
    if until <= now or until > now + MAX_VALIDITY:
        raise InvalidInput(
            errors={"valid_until": "Giltig till måste ligga i framtiden och högst 180 dagar fram."}
        )
    current = await queries.version_row(db, adv.id, adv.current_version)
    content = replace(await queries.content_of(db, vault, current), valid_until=until)
    number = await _bump(db, adv, base_version)
    await _add_version(db, vault, adv, number, "reconfirmed", content, user.user_id, now)
    adv.confirmed_at, adv.valid_until, adv.reminded_at = now, until, None
    await audit.record(
        db, "advisory.reconfirm", actor=access.actor_for(user, adv),
        owner_org_id=adv.organisation_id, object_type="advisory", object_id=adv.id,
        details={"version": number},
    )  # fmt: skip
    return number


async def withdraw(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    advisory_id: uuid.UUID,
    *,
    reason: str,
    base_version: int | None,
    now: datetime,
) -> None:
    """Withdraw the advisory (it leaves the jour's view); the reason is kept, encrypted."""
    adv = await access.get_for_sender(db, user, advisory_id, "advisory.withdraw")
    if base_version is not None and base_version != adv.current_version:
        raise Conflict(STALE.format(n=adv.current_version))
    text = reason.strip()
    if not text or len(text) > 1000:
        raise InvalidInput(
            errors={"reason": "Ange varför aviseringen återkallas (högst 1000 tecken)."}
        )
    adv.status, adv.withdrawn_at, adv.withdrawn_by = "withdrawn", now, user.user_id
    adv.withdraw_reason_enc = vault.encrypt(
        text, field_context(Advisory.withdraw_reason_enc, adv.id)
    )
    await audit.record(
        db, "advisory.withdraw", actor=access.actor_for(user, adv),
        owner_org_id=adv.organisation_id, object_type="advisory", object_id=adv.id,
        details={"version": adv.current_version},
    )  # fmt: skip


async def acknowledge(
    db: AsyncSession, user: Principal, advisory_id: uuid.UUID, *, version: int | None, now: datetime
) -> int:
    """The jour acknowledges the current version (idempotent); returns the version number."""
    action = "advisory.acknowledge"
    adv = await access.get_visible(db, user, advisory_id, action, lock=True)
    if adv.jour_id not in access.jour_orgs(user):
        raise Forbidden(
            "Bara socialjouren kvitterar aviseringar.",
            audit=access.note(action, "denied", adv.id, adv.organisation_id),
        )
    if adv.status != "active":
        raise Conflict("Aviseringen är återkallad.")
    number = version or adv.current_version
    if number != adv.current_version:
        raise Conflict("Det finns en nyare version av aviseringen. Läs den innan du kvitterar.")
    done = await db.scalar(
        select(AdvisoryAcknowledgement.id).where(
            AdvisoryAcknowledgement.advisory_id == adv.id,
            AdvisoryAcknowledgement.version == number,
            AdvisoryAcknowledgement.user_id == user.user_id,
        )
    )
    if done is None:
        db.add(
            AdvisoryAcknowledgement(
                advisory_id=adv.id, version=number, organisation_id=adv.jour_id,
                user_id=user.user_id, at=now,
            )
        )  # fmt: skip
        await audit.record(
            db, action, actor=user.actor(adv.jour_id), owner_org_id=adv.organisation_id,
            object_type="advisory", object_id=adv.id, details={"version": number},
        )  # fmt: skip
    return number


# -- reminders -----------------------------------------------------------------------------


async def send_expiry_reminders(db: AsyncSession, *, now: datetime) -> int:
    """Queue one e-mail per active advisory expiring within 2 days to the sending unit's mailbox.

    The mail says only that an advisory is about to expire, with a link (no personal data). Each
    advisory is claimed with a conditional UPDATE, so parallel runs never remind twice; amending
    or re-confirming clears the mark so the next expiry is reminded again. Returns the count.
    """
    from portal.notify.service import queue_mail

    due = (
        await db.execute(
            select(Advisory.id, Unit.mailbox)
            .join(Unit, Unit.id == Advisory.unit_id)
            .where(
                Advisory.status == "active",
                Advisory.reminded_at.is_(None),
                Advisory.valid_until > now,
                Advisory.valid_until <= now + REMIND_BEFORE,
                Unit.mailbox.is_not(None),
            )
        )
    ).all()
    sent = 0
    for advisory_id, mailbox in due:
        claimed = await db.execute(
            update(Advisory)
            .where(Advisory.id == advisory_id, Advisory.reminded_at.is_(None))
            .values(reminded_at=now)
            .returning(Advisory.id)
            .execution_options(synchronize_session=False)
        )
        if claimed.first() is None or mailbox is None:
            continue
        await queue_mail(
            db, to=mailbox, template="advisory_expiring", link_path=f"/advisories/{advisory_id}"
        )
        sent += 1
    return sent
