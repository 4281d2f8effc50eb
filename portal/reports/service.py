"""Report workflow: write and send, acknowledge, add addenda, attach files.

A report goes from the jour that writes it to one unit of a member municipality (or, for
"Annan kommun", stays with the jour and is sent as PDF by other means). The report row's
content never changes after it is sent: addenda and files are appended, the receiving unit
acknowledges once. Every change is audited in the request's transaction — except files:
`add_attachments` checks in the request's transaction, releases it, stores the files with no
connection held, then re-checks and records in a short transaction of its own
(`portal.attachments.service`), so an S3 outage holds no pooled connection or row lock.
Reads are in `portal.reports.queries`, who-may-what in `portal.reports.access`, validation
and encryption in `portal.reports.content`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.attachments import service as attachments
from portal.attachments.service import Upload
from portal.audit import service as audit
from portal.db.models import Membership, Unit
from portal.errors import Conflict, InvalidInput
from portal.lookup import names
from portal.notify.service import queue_mail
from portal.pii import Vault
from portal.principal import Principal
from portal.reports import access, content
from portal.reports.models import Report, ReportAction, ReportRead
from portal.reports.queries import OWNER_TYPE, mark_read
from portal.reports.schemas import ReportInput
from storage import EncryptedObjectStore


def page_path(report_id: uuid.UUID) -> str:
    """The report's page, as linked from e-mail."""
    return f"/reports/{report_id}"


async def create_report(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    data: ReportInput,
    *,
    now: datetime,
    pre_errors: dict[str, str] | None = None,
) -> uuid.UUID:
    """Validate everything, then store the report encrypted, audit it and queue the unit's mail.

    `pre_errors` are problems found while parsing a form (e.g. an unreadable date); they are
    reported together with the rest. Nothing is written unless every check passes.
    """
    jours = access.require_writer(user)
    checked = await content.validate(db, data, jours, now=now, pre_errors=pre_errors)
    rid = uuid.uuid4()
    report = content.encrypt_report(
        vault,
        rid,
        checked,
        user.user_id,
        now=now,
        child_involved=data.child_involved,
        on_call=data.on_call,
        follow_up_requested=data.follow_up_requested,
    )
    db.add(report)
    await db.flush()
    for s in checked.subjects:
        db.add(content.encrypt_subject(vault, rid, s))
    await names.index_names(db, vault, "report", rid, [s.name for s in checked.subjects if s.name])
    for code in checked.actions:
        db.add(ReportAction(report_id=rid, action_code=code))
    db.add(ReportRead(report_id=rid, user_id=user.user_id, read_at=now))
    await db.flush()
    other = checked.other_municipality
    await audit.record(
        db,
        "report.create",
        actor=user.actor(checked.jour_id),
        owner_org_id=access.owner_org(report),
        object_type="report",
        object_id=rid,
        details={
            "code_list_version": checked.code_list_version,
            "other_municipality": other is not None,
        },
    )
    unit = checked.unit
    if unit is not None and unit.mailbox:
        await queue_mail(db, to=unit.mailbox, template="new_report", link_path=page_path(rid))
    return rid


async def acknowledge(
    db: AsyncSession,
    user: Principal,
    report_id: uuid.UUID,
    follow_up_owner_id: uuid.UUID | None,
    *,
    now: datetime,
) -> None:
    """Acknowledge receipt and record who takes over the follow-up (default: the caller)."""
    action = "report.acknowledge"
    report = await access.get_for_receiver(db, user, report_id, action)
    owner = follow_up_owner_id or user.user_id
    is_handler = await db.scalar(
        select(Membership.id).where(
            Membership.user_id == owner,
            Membership.organisation_id == report.municipality_id,
            Membership.role.in_(access.READER_ROLES),
            Membership.revoked_at.is_(None),
        )
    )
    if is_handler is None:
        raise InvalidInput(
            errors={"follow_up_owner_id": "Välj en handläggare i kommunen som tar över."}
        )
    # Conditional update: of two handlers acknowledging at once, exactly one wins.
    done = await db.execute(
        update(Report)
        .where(Report.id == report.id, Report.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=user.user_id, follow_up_owner_id=owner)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict("Rapporten är redan kvitterad.")
    await db.refresh(report)
    await mark_read(db, report.id, user.user_id, now=now)
    await audit.record(
        db,
        action,
        actor=user.actor(report.municipality_id),
        owner_org_id=access.owner_org(report),
        object_type="report",
        object_id=report.id,
        details={"follow_up_owner_id": str(owner)},
    )


async def add_addendum(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    report_id: uuid.UUID,
    text: str,
    *,
    now: datetime,
) -> uuid.UUID:
    """Append an addendum (the jour only); the report itself never changes."""
    action = "report.addendum"
    report = await access.get_for_writer(
        db,
        user,
        report_id,
        action,
        "Bara socialjouren som skrev rapporten kan lägga till tillägg.",
    )
    errors: dict[str, str] = {}
    value = content.check_text(errors, "text", text, "Skriv tillägget.")
    if errors:
        raise InvalidInput(errors=errors)
    row = content.encrypt_addendum(vault, report.id, user.user_id, value, now=now)
    db.add(row)
    report.changed_at = now
    await db.flush()
    await mark_read(db, report.id, user.user_id, now=now)
    await audit.record(
        db,
        action,
        actor=user.actor(report.jour_id),
        owner_org_id=access.owner_org(report),
        object_type="report",
        object_id=report.id,
        details={"addendum_id": str(row.id)},
    )
    if report.unit_id is not None:
        unit = await db.get(Unit, report.unit_id)
        if unit is not None and unit.mailbox:
            await queue_mail(
                db, to=unit.mailbox, template="report_addendum", link_path=page_path(report.id)
            )
    return row.id


ATTACH_REFUSED = "Bara socialjouren som skrev rapporten kan bifoga filer."


async def add_attachments(
    db: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    files: EncryptedObjectStore,
    vault: Vault,
    user: Principal,
    report_id: uuid.UUID,
    uploads: list[Upload],
    *,
    now: datetime,
) -> list[uuid.UUID]:
    """Attach files to a sent report (the writing jour only); every file is checked first.

    Checked in the request's transaction (which is then released), stored with no connection
    held, recorded in a short transaction that re-checks and locks the report
    (`portal.attachments.service`).
    """
    action = "report.attach"
    await access.get_for_writer(db, user, report_id, action, ATTACH_REFUSED)
    if not uploads:
        raise InvalidInput(errors={"attachments": "Välj minst en fil."})
    checked = await attachments.check_uploads(uploads)  # all, before storing any
    await attachments.release(db)
    staged = await attachments.store_files(files, uploads, checked)
    async with attachments.recording(sessions, files, staged) as tx:
        report = await access.get_for_writer(tx, user, report_id, action, ATTACH_REFUSED, lock=True)
        rows = await attachments.record_files(
            tx,
            vault,
            staged,
            owner_type=OWNER_TYPE,
            owner_id=report.id,
            org_id=access.owner_org(report),
            actor=user.actor(report.jour_id),
        )
        report.changed_at = now
    return [row.id for row in rows]
