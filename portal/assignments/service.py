"""Assignment workflow and handover notes: send, accept, record the outcome, withdraw; write
and acknowledge a handover note.

States: sent → accepted (by someone at the jour) → done | not_done (by whoever carried it out,
with a note: what was done, or why not); the municipality can withdraw it while it is open.
Each transition locks the row, checks the state and is audited in the request's transaction; a
transition from the wrong state is a 409 with a Swedish explanation. The sending unit's
functional mailbox is told (no content, a link only) when the jour accepts or reports; the
jour's mailboxes when a new assignment arrives.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.assignments import access
from portal.assignments.content import (
    OPEN,
    STATUS,
    AssignmentDraft,
    note_text,
    to_blob,
    validate,
)
from portal.assignments.models import Assignment, HandoverNote, HandoverRead
from portal.assignments.queries import shift_start
from portal.audit import service as audit
from portal.audit.service import ANONYMOUS
from portal.db.models import Organisation, Unit
from portal.errors import Conflict, InvalidInput
from portal.notify.service import queue_mail
from portal.pii import Vault, field_context
from portal.principal import Principal


async def _jour_of(db: AsyncSession, org_id: uuid.UUID) -> uuid.UUID:
    org = await db.get(Organisation, org_id)
    if org is None or org.jour_id is None:
        raise InvalidInput(
            errors={"organisation_id": "Kommunen är inte ansluten till en socialjour."}
        )
    return org.jour_id


async def create(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    draft: AssignmentDraft,
    *,
    now: datetime,
    organisation_id: uuid.UUID | None = None,
    errors: dict[str, str] | None = None,
) -> uuid.UUID:
    """Send a new assignment to the municipality's jour; returns its id."""
    org_id, unit_id = access.sender(user, organisation_id)
    content = validate(draft, now=now, errors=errors)
    jour_id = await _jour_of(db, org_id)
    assignment_id = uuid.uuid4()
    pnr = content.personnummer
    db.add(
        Assignment(
            id=assignment_id,
            organisation_id=org_id,
            jour_id=jour_id,
            unit_id=unit_id,
            created_by=user.user_id,
            created_at=now,
            kind=content.kind,
            due_at=content.due_at,
            status="sent",
            content_enc=vault.encrypt(
                to_blob(content), field_context(Assignment.content_enc, assignment_id)
            ),
            pnr_index=vault.index(pnr) if pnr else None,
            pnr_enc=vault.encrypt(pnr, field_context(Assignment.pnr_enc, assignment_id))
            if pnr
            else None,
        )
    )
    await db.flush()
    await audit.record(
        db, "assignment.create", actor=user.actor(org_id), owner_org_id=org_id,
        object_type="assignment", object_id=assignment_id, details={"kind": content.kind},
    )  # fmt: skip
    mailboxes = await db.scalars(
        select(Unit.mailbox).where(Unit.organisation_id == jour_id, Unit.mailbox.is_not(None))
    )
    for mailbox in mailboxes:
        assert mailbox is not None
        await queue_mail(
            db, to=mailbox, template="new_assignment", link_path=f"/assignments/{assignment_id}"
        )
    return assignment_id


def _wrong_state(a: Assignment, doing: str) -> Conflict:
    return Conflict(f"Uppdraget kan inte {doing}: det är {STATUS[a.status].lower()}.")


async def _tell_sender(db: AsyncSession, a: Assignment) -> None:
    """The sending unit's mailbox learns that the jour has moved the assignment on."""
    if a.unit_id is None:
        return
    unit = await db.get(Unit, a.unit_id)
    if unit is not None and unit.mailbox:
        await queue_mail(
            db, to=unit.mailbox, template="assignment_update", link_path=f"/assignments/{a.id}"
        )


async def accept(
    db: AsyncSession, user: Principal, assignment_id: uuid.UUID, *, now: datetime
) -> None:
    """The jour takes the assignment on (who and when are kept)."""
    action = "assignment.accept"
    a = await access.get_for_jour(db, user, assignment_id, action)
    if a.status != "sent":
        raise _wrong_state(a, "tas emot")
    a.status, a.accepted_by, a.accepted_at = "accepted", user.user_id, now
    await audit.record(
        db, action, actor=user.actor(a.jour_id), owner_org_id=a.organisation_id,
        object_type="assignment", object_id=a.id,
    )  # fmt: skip
    await _tell_sender(db, a)


async def report(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    assignment_id: uuid.UUID,
    *,
    done: bool,
    note: str,
    now: datetime,
) -> None:
    """Whoever carried it out records the outcome: done (what was done) or not done (why)."""
    action = "assignment.report"
    a = await access.get_for_jour(db, user, assignment_id, action)
    if a.status != "accepted":
        raise _wrong_state(a, "avrapporteras")
    text = note_text(
        note, "note",
        "Beskriv vad som gjordes." if done else "Beskriv varför uppdraget inte blev utfört.",
    )  # fmt: skip
    a.status = "done" if done else "not_done"
    a.outcome_by, a.outcome_at = user.user_id, now
    a.outcome_enc = vault.encrypt(text, field_context(Assignment.outcome_enc, a.id))
    await audit.record(
        db, action, actor=user.actor(a.jour_id), owner_org_id=a.organisation_id,
        object_type="assignment", object_id=a.id, details={"outcome": a.status},
    )  # fmt: skip
    await _tell_sender(db, a)


async def withdraw(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    assignment_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
) -> None:
    """The municipality withdraws an open assignment (it leaves the dashboard); reason kept."""
    action = "assignment.withdraw"
    a = await access.get_for_sender(db, user, assignment_id, action)
    if a.status not in OPEN:
        raise _wrong_state(a, "återkallas")
    text = note_text(reason, "reason", "Ange varför uppdraget återkallas.")
    a.status, a.withdrawn_by, a.withdrawn_at = "withdrawn", user.user_id, now
    a.withdraw_reason_enc = vault.encrypt(text, field_context(Assignment.withdraw_reason_enc, a.id))
    await audit.record(
        db, action, actor=user.actor(a.organisation_id), owner_org_id=a.organisation_id,
        object_type="assignment", object_id=a.id,
    )  # fmt: skip


async def escalate_overdue(db: AsyncSession, *, now: datetime) -> int:
    """Escalate each open assignment past its deadline, once: an e-mail (link only) to the
    jour's functional mailboxes and the sending unit's. Claimed with a conditional UPDATE, so
    parallel runs never mail twice. Returns how many were escalated."""
    due = (
        await db.scalars(
            select(Assignment.id).where(
                Assignment.status.in_(OPEN),
                Assignment.due_at < now,
                Assignment.escalated_at.is_(None),
            )
        )
    ).all()
    escalated = 0
    for assignment_id in due:
        claimed = await db.execute(
            update(Assignment)
            .where(
                Assignment.id == assignment_id,
                Assignment.escalated_at.is_(None),
                Assignment.status.in_(OPEN),
            )
            .values(escalated_at=now)
            .returning(Assignment.jour_id, Assignment.unit_id)
            .execution_options(synchronize_session=False)
        )
        row = claimed.first()
        if row is None:
            continue
        jour_id, unit_id = row
        mailboxes = set(
            await db.scalars(
                select(Unit.mailbox).where(
                    (Unit.organisation_id == jour_id) | (Unit.id == unit_id),
                    Unit.mailbox.is_not(None),
                )
            )
        )
        for mailbox in sorted(m for m in mailboxes if m):
            await queue_mail(
                db, to=mailbox, template="assignment_overdue",
                link_path=f"/assignments/{assignment_id}",
            )  # fmt: skip
        escalated += 1
    return escalated


# -- handover notes ------------------------------------------------------------------------


async def write_note(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    body: str,
    *,
    now: datetime,
    jour_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """The outgoing shift's note to the next one; returns its id."""
    jour = access.writing_jour(user, jour_id)
    text = note_text(body, "body", "Skriv vad nästa pass behöver veta.")
    note_id = uuid.uuid4()
    db.add(
        HandoverNote(
            id=note_id, jour_id=jour, created_by=user.user_id, created_at=now,
            shift_start=shift_start(now),
            body_enc=vault.encrypt(text, field_context(HandoverNote.body_enc, note_id)),
        )
    )  # fmt: skip
    await db.flush()
    await audit.record(
        db, "handover.create", actor=user.actor(jour), owner_org_id=jour,
        object_type="handover_note", object_id=note_id,
    )  # fmt: skip
    return note_id


async def acknowledge_note(
    db: AsyncSession, user: Principal, note_id: uuid.UUID, *, now: datetime
) -> None:
    """The incoming staff member has read the note (idempotent)."""
    action = "handover.acknowledge"
    n = await access.get_note(db, user, note_id, action)
    done = await db.scalar(
        select(HandoverRead.id).where(
            HandoverRead.note_id == n.id, HandoverRead.user_id == user.user_id
        )
    )
    if done is not None:
        return
    db.add(HandoverRead(note_id=n.id, user_id=user.user_id, at=now))
    await db.flush()
    await audit.record(
        db, action, actor=user.actor(n.jour_id), owner_org_id=n.jour_id,
        object_type="handover_note", object_id=n.id,
    )  # fmt: skip


HANDOVER_KEEP = timedelta(days=30)
"""A handover note is deleted this long after it was written (docs/assignments.md, "Retention
of handover notes"): a working note between shifts, not a record of a case. The handover page
shows a week; the rest is the margin for a deviation investigation (lex Sarah) to read it."""


async def purge_handover(db: AsyncSession, *, now: datetime) -> int:
    """Delete the handover notes written more than `HANDOVER_KEEP` before `now` with their
    read receipts, in the caller's transaction; one `handover.cull` audit entry per jour with
    the number of notes (who wrote what when stays in the log's `handover.create` entries).
    Returns how many notes went."""
    cutoff = now - HANDOVER_KEEP
    per_jour = (
        await db.execute(
            select(HandoverNote.jour_id, func.count())
            .where(HandoverNote.created_at < cutoff)
            .group_by(HandoverNote.jour_id)
        )
    ).all()
    if not per_jour:
        return 0
    old = select(HandoverNote.id).where(HandoverNote.created_at < cutoff)
    await db.execute(
        delete(HandoverRead)
        .where(HandoverRead.note_id.in_(old))
        .execution_options(synchronize_session=False)
    )
    await db.execute(
        delete(HandoverNote)
        .where(HandoverNote.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    for jour_id, count in sorted(per_jour, key=lambda r: str(r[0])):
        await audit.record(
            db, "handover.cull", actor=ANONYMOUS, owner_org_id=jour_id,
            object_type="handover_note",
            details={"notes": int(count), "before": cutoff.isoformat()},
        )  # fmt: skip
    return sum(int(c) for _, c in per_jour)
