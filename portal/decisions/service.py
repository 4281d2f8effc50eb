"""Decision rules: drafting, the roster check, the document, visibility, lifting.

Threat and rule notes:
- The decision-maker must have been on the municipality's on-call roster *at the time of the
  oral decision* (rosters.service.was_on_roster); a chair who is on the roster when signing but
  was not when deciding is refused, and so is anyone who was never on it.
- Drafts are the jour's working material: the municipality sees a decision once it is sent for
  signature. The chair sees the decisions in which they are the decision-maker.
- Content (subject, facts, grounds, placement) and the rendered document are encrypted at rest;
  only kind, times, status and ids are in clear, for lists and statistics.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Permission
from portal import paging
from portal.audit import service as audit
from portal.db.base import utcnow
from portal.db.engine import core_execute
from portal.db.models import Organisation, Unit, User
from portal.db.reads import Read, Rows
from portal.decisions.models import Decision
from portal.decisions.rules import ENDED, KINDS, deadlines, decision_sentence
from portal.decisions.schemas import DeadlineOut, DecisionBrief, DecisionIn, DecisionOut
from portal.errors import AuditNote, Conflict, Forbidden, InvalidInput, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import (
    InvalidPersonnummer,
    Vault,
    field_context,
    invalid_personnummer,
    normalise_personnummer,
)
from portal.principal import Principal
from portal.records import in_period
from portal.rosters import service as rosters
from portal.timefmt import format_local

STATUS_LABELS = {
    "draft": "Utkast",
    "awaiting_signature": "Väntar på underskrift",
    "signed": "Signerat",
    "delivered": "Signerat och levererat",
    "lifted": "Hävt",
    "cancelled": "Makulerat",
}
FUNCTION_LABELS = {
    "chair": "ordförande",
    "substitute": "ersättare",
    "appointed": "förordnad ledamot",
}
MAX_TEXT = 20_000

_documents = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_documents.filters["sthlm"] = format_local


@dataclass(frozen=True, slots=True)
class Access:
    """Which decisions the principal may see and do what with."""

    jours: set[uuid.UUID]
    municipalities: set[uuid.UUID]
    user_id: uuid.UUID


def access_of(user: Principal) -> Access:
    """The organisations through which the principal reaches decisions."""
    municipal = (
        user.orgs_with(Permission.READ_REPORTS)
        | user.orgs_with(Permission.SIGN_DECISIONS)
        | user.orgs_with(Permission.READ_ARCHIVE)
    )
    return Access(user.orgs_with(Permission.DRAFT_DECISIONS), municipal, user.user_id)


def _visible(decision: Decision, access: Access) -> bool:
    if decision.jour_id in access.jours:
        return True
    if decision.municipality_id in access.municipalities:
        return decision.status != "draft" or decision.decision_maker_id == access.user_id
    return False


def _visible_clause(access: Access) -> ColumnElement[bool]:
    """SQL condition: the decisions `access` reaches (the same rule as `_visible`)."""
    return _visibility(access.jours, access.municipalities, access.user_id)


def _visibility(jours: Any, municipalities: Any, user_id: Any) -> ColumnElement[bool]:
    """`_visible_clause` of the values or bound parameters given (statements built once pass
    `bindparam`s)."""
    return or_(
        Decision.jour_id.in_(jours),
        Decision.municipality_id.in_(municipalities)
        & ((Decision.status != "draft") | (Decision.decision_maker_id == user_id)),
    )


def archive_holders(d: Decision) -> set[uuid.UUID]:
    """The organisations whose archive holds the decision — the one rule every reader uses.

    The jour drafted it and holds it from the start; the municipality holds it only once it was
    sent for signature (a draft is the jour's working material and may name a child wrongly).
    """
    return {d.jour_id} | ({d.municipality_id} if d.status != "draft" else set())


def archive_filter(org_id: uuid.UUID, is_jour: bool) -> ColumnElement[bool]:
    """SQL condition: decisions in `org_id`'s archive (the same rule as `archive_holders`)."""
    if is_jour:
        return Decision.jour_id == org_id
    return (Decision.municipality_id == org_id) & (Decision.status != "draft")


async def _validate(
    db: AsyncSession, user: Principal, data: DecisionIn
) -> tuple[uuid.UUID, str | None, str]:
    """Check the input; return (jour id, normalised personnummer or None, roster function)."""
    errors: dict[str, str] = {}
    if data.kind not in KINDS:
        errors["kind"] = "Välj typ av beslut."
    municipality = await db.get(Organisation, data.municipality_id)
    jours = user.orgs_with(Permission.DRAFT_DECISIONS)
    if (
        municipality is None
        or municipality.kind != "municipality"
        or municipality.jour_id not in jours
    ):
        errors["municipality_id"] = "Välj en av jourens medlemskommuner."
    pnr: str | None = None
    if data.subject_personal_identity_number.strip():
        try:
            pnr = normalise_personnummer(data.subject_personal_identity_number)
        except InvalidPersonnummer:
            errors["subject_personal_identity_number"] = invalid_personnummer()
    for name, value, label in (
        ("subject_name", data.subject_name, "namn"),
        ("facts", data.facts, "omständigheter"),
        ("grounds", data.grounds, "skäl"),
    ):
        if not value.strip():
            errors[name] = f"Ange {label}."
    for name in ("subject_name", "facts", "grounds", "placement"):
        if len(getattr(data, name)) > MAX_TEXT:
            errors[name] = "Texten är för lång."
    if data.oral_decision_at.tzinfo is None:
        errors["oral_decision_at"] = "Ange tidpunkt för det muntliga beslutet."
    elif data.oral_decision_at > utcnow() + timedelta(minutes=5):
        errors["oral_decision_at"] = "Det muntliga beslutet kan inte ligga i framtiden."
    function = ""
    if not errors and municipality is not None:
        on_roster = await rosters.was_on_roster(
            db, municipality.id, data.decision_maker_id, data.oral_decision_at
        )
        if not on_roster:
            errors["decision_maker_id"] = (
                "Personen fanns inte på kommunens ordförandejourlista vid tidpunkten för det "
                "muntliga beslutet. Kontrollera beslutsfattare och tidpunkt."
            )
        else:
            function = await rosters.function_at(
                db, municipality.id, data.decision_maker_id, data.oral_decision_at
            )
    if errors:
        raise InvalidInput(errors=errors)
    assert municipality is not None and municipality.jour_id is not None
    return municipality.jour_id, pnr, function


def _seal(vault: Vault, d: Decision, data: DecisionIn, pnr: str | None) -> None:
    d.subject_pnr_index = vault.index(pnr) if pnr else None
    d.subject_enc = vault.encrypt(
        json.dumps({"name": data.subject_name.strip(), "pnr": pnr}),
        field_context(Decision.subject_enc, d.id),
    )
    d.content_enc = vault.encrypt(
        json.dumps(
            {
                "facts": data.facts.strip(),
                "grounds": data.grounds.strip(),
                "placement": data.placement.strip(),
            }
        ),
        field_context(Decision.content_enc, d.id),
    )


def require_drafter(user: Principal) -> None:
    """Only the jour drafts decisions."""
    if not user.orgs_with(Permission.DRAFT_DECISIONS):
        raise Forbidden(audit=AuditNote("decision.draft", "denied"))


async def create_draft(
    db: AsyncSession, vault: Vault, user: Principal, data: DecisionIn
) -> uuid.UUID:
    """The jour writes down a decision the chair took orally."""
    require_drafter(user)
    jour_id, pnr, function = await _validate(db, user, data)
    d = Decision(
        id=uuid.uuid4(),
        kind=data.kind,
        municipality_id=data.municipality_id,
        jour_id=jour_id,
        status="draft",
        oral_decision_at=data.oral_decision_at,
        decision_maker_id=data.decision_maker_id,
        decision_maker_function=function,
        drafted_by=user.user_id,
    )
    _seal(vault, d, data, pnr)
    db.add(d)
    await db.flush()
    await audit.record(
        db,
        "decision.create",
        actor=user.actor(jour_id),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
        details={"kind": d.kind},
    )
    return d.id


async def load_visible(
    db: AsyncSession, user: Principal, decision_id: uuid.UUID, action: str
) -> Decision:
    d = await db.get(Decision, decision_id)
    if d is None or not _visible(d, access_of(user)):
        raise NotFound(
            audit=AuditNote(
                action,
                "not_found",
                owner_org_id=d.municipality_id if d else None,
                object_type="decision",
                object_id=str(decision_id),
            )
        )
    return d


async def update_draft(
    db: AsyncSession, vault: Vault, user: Principal, decision_id: uuid.UUID, data: DecisionIn
) -> None:
    """Change a draft; refused once sent for signature or when someone else changed it first."""
    d = await load_visible(db, user, decision_id, "decision.update")
    if d.jour_id not in user.orgs_with(Permission.DRAFT_DECISIONS):
        raise Forbidden()
    if d.status != "draft":
        raise Conflict("Beslutet är redan skickat för underskrift och kan inte ändras.")
    _, pnr, function = await _validate(db, user, data)
    updated = await db.execute(
        update(Decision)
        .where(
            Decision.id == d.id,
            Decision.revision == (data.revision or d.revision),
            Decision.status == "draft",
        )
        .values(revision=Decision.revision + 1, updated_at=utcnow())
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Utkastet har ändrats av någon annan. Ladda om sidan.")
    await db.refresh(d)
    d.kind = data.kind
    d.municipality_id = data.municipality_id
    d.oral_decision_at = data.oral_decision_at
    d.decision_maker_id = data.decision_maker_id
    d.decision_maker_function = function
    _seal(vault, d, data, pnr)
    await audit.record(
        db,
        "decision.update",
        actor=user.actor(d.jour_id),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
    )


async def to_out(
    db: AsyncSession, vault: Vault, d: Decision, *, now: datetime | None = None
) -> DecisionOut:
    """Decrypt and describe a decision for someone allowed to see it."""
    now = now or utcnow()
    subject = json.loads(vault.decrypt(d.subject_enc, field_context(Decision.subject_enc, d.id)))
    content = json.loads(vault.decrypt(d.content_enc, field_context(Decision.content_enc, d.id)))
    municipality = await db.get(Organisation, d.municipality_id)
    assert municipality is not None
    names = await user_names(db, vault, {d.decision_maker_id})
    kind = KINDS[d.kind]
    return DecisionOut(
        id=d.id,
        kind=d.kind,
        title=kind.title,
        act=kind.act,
        status=d.status,
        status_label=STATUS_LABELS[d.status],
        municipality_id=d.municipality_id,
        municipality=municipality.name,
        committee=f"{municipality.committee_name or 'Socialnämnden'} i {municipality.name}",
        oral_decision_at=d.oral_decision_at,
        decision_maker_id=d.decision_maker_id,
        decision_maker=names.get(d.decision_maker_id, ""),
        decision_maker_function=FUNCTION_LABELS.get(
            d.decision_maker_function, d.decision_maker_function
        ),
        subject_name=subject["name"],
        subject_personal_identity_number=subject["pnr"],
        facts=content["facts"],
        grounds=content["grounds"],
        placement=content["placement"],
        revision=d.revision,
        document_sha256=d.document_sha256,
        signed_at=d.signed_at,
        delivered_at=d.delivered_at,
        deadlines=[
            DeadlineOut(
                x.rule.key,
                x.rule.label,
                x.rule.basis,
                x.due,
                x.overdue(now) and d.status not in ENDED,
                x.rule.immediately,
            )
            for x in deadlines(d.kind, d.oral_decision_at)
        ],
    )


async def get(
    db: AsyncSession, vault: Vault, user: Principal, decision_id: uuid.UUID
) -> DecisionOut:
    """One decision, audited as a read."""
    d = await load_visible(db, user, decision_id, "decision.read")
    await audit.record(
        db,
        "decision.read",
        actor=user.actor(),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
    )
    return await to_out(db, vault, d)


async def list_visible(
    db: AsyncSession, vault: Vault, user: Principal, *, statuses: tuple[str, ...] | None = None
) -> list[DecisionOut]:
    """Decisions the principal may see, newest oral decision first."""
    query = (
        select(Decision)
        .where(_visible_clause(access_of(user)))
        .order_by(Decision.oral_decision_at.desc())
    )
    if statuses:
        query = query.where(Decision.status.in_(statuses))
    rows = (await db.scalars(query.limit(500))).all()
    return [await to_out(db, vault, d) for d in rows]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A decision awaiting its signature, as the jour's night dashboard shows it (nothing of
    its content decrypted)."""

    id: uuid.UUID
    """The decision."""
    act: str
    """The act and section, e.g. "6 § LVU"."""
    municipality: str
    """The municipality whose committee decides."""
    decision_maker: str
    """Who took the oral decision and is to sign."""
    oral_decision_at: datetime
    """When the oral decision was taken."""


# Built once: `list_visible(statuses=("awaiting_signature",))` (the same visibility rule as
# `_visible_clause`, order and limit) with the municipality's name and the decision maker's
# encrypted name, in one statement of plain columns.
_AWAITING = (
    select(
        Decision.id,
        Decision.kind,
        Organisation.name,
        Decision.decision_maker_id,
        User.name_enc,
        Decision.oral_decision_at,
    )
    .join(Organisation, Organisation.id == Decision.municipality_id)
    .outerjoin(User, User.id == Decision.decision_maker_id)
    .where(
        Decision.status == "awaiting_signature",
        _visibility(
            bindparam("jours", expanding=True),
            bindparam("municipalities", expanding=True),
            bindparam("user_id"),
        ),
    )
    .order_by(Decision.oral_decision_at.desc())
    .limit(500)
)


def awaiting_read(user: Principal) -> Read:
    """The decisions the principal may see that await their signature, newest oral decision
    first, as a read (`portal.db.reads`, one statement); `awaiting_from_rows` parses its rows.
    Not audited, like `list_visible`."""
    access = access_of(user)
    return Read(
        _AWAITING,
        {
            "jours": list(access.jours),
            "municipalities": list(access.municipalities),
            "user_id": access.user_id,
        },
    )


def awaiting_from_rows(rows: Rows, vault: Vault) -> list[Waiting]:
    """The rows of `awaiting_read`; only the decision makers' names are decrypted."""
    return [
        Waiting(
            id=decision_id,
            act=KINDS[kind].act,
            municipality=municipality,
            decision_maker=(
                vault.decrypt(name_enc, field_context(User.name_enc, maker_id)) if name_enc else ""
            ),
            oral_decision_at=oral_decision_at,
        )
        for decision_id, kind, municipality, maker_id, name_enc, oral_decision_at in rows
    ]


async def awaiting_signature(db: AsyncSession, vault: Vault, user: Principal) -> list[Waiting]:
    """`awaiting_read` executed alone, parsed by `awaiting_from_rows`."""
    read = awaiting_read(user)
    return awaiting_from_rows((await core_execute(db, read.statement, read.params)).all(), vault)


LIST_FILTERS = {
    "all": "Alla",
    **STATUS_LABELS,
    "to_report": "Att anmäla vid nämndens nästa sammanträde",
}
"""Status filters of the decision list (a status, or every decision the committee is told of)."""


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """What the decision list is narrowed to."""

    status: str = "all"
    """A key of LIST_FILTERS."""
    kind: str | None = None
    """lvu6 | lvm13 | lvu11 (rules.KINDS)."""
    municipality_id: uuid.UUID | None = None
    """For this municipality only."""
    since: datetime | None = None
    """Oral decision at or after."""
    until: datetime | None = None
    """Oral decision before."""


def _filter_clause(f: DecisionFilter) -> ColumnElement[bool]:
    if f.status == "to_report":
        status: ColumnElement[bool] = Decision.status.not_in(("draft", "cancelled"))
    elif f.status in STATUS_LABELS:
        status = Decision.status == f.status
    else:
        status = true()
    return and_(
        status,
        Decision.kind == f.kind if f.kind else true(),
        Decision.municipality_id == f.municipality_id if f.municipality_id else true(),
        *in_period(Decision.oral_decision_at, f.since, f.until),
    )


async def list_page(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    filters: DecisionFilter = DecisionFilter(),
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[DecisionOut]:
    """A page of the decisions the principal may see, newest oral decision first (keyset by
    (oral decision, id)), filtered, after the cursor `before`; with the filtered list's count.
    Audited with the ids shown."""
    cursor = paging.decode(before)
    where = _visible_clause(access_of(user)) & _filter_clause(filters)
    rows = (
        await db.scalars(
            select(Decision)
            .where(where, paging.after(Decision.oral_decision_at, Decision.id, cursor))
            .order_by(Decision.oral_decision_at.desc(), Decision.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(Decision).where(where))
    now = utcnow()
    shown = [await to_out(db, vault, d, now=now) for d in rows[:size]]
    # Each decision is decrypted whole (the API's list returns whom it is about): audited with
    # the ids shown, like the other lists that show persons.
    await audit.record(
        db, "decision.list", actor=user.actor(), object_type="decision",
        details={"decisions": [str(d.id) for d in shown]},
    )  # fmt: skip
    return paging.page_of(
        shown,
        more=len(rows) > size,
        cursor=cursor,
        key=lambda d: (d.oral_decision_at, d.id),
        total=int(total or 0),
    )


async def list_municipalities(db: AsyncSession, user: Principal) -> list[tuple[uuid.UUID, str]]:
    """The municipalities whose decisions the principal may see (the list filters by them)."""
    access = access_of(user)
    rows = await db.execute(
        select(Organisation.id, Organisation.name)
        .where(
            or_(
                Organisation.id.in_(access.municipalities),
                (Organisation.kind == "municipality") & Organisation.jour_id.in_(access.jours),
            )
        )
        .order_by(Organisation.name)
    )
    return [(oid, name) for oid, name in rows]


async def find_by_person(db: AsyncSession, user: Principal, pnr_index: str) -> list[DecisionBrief]:
    """Decisions about the person with this blind index that the principal may see, newest
    first (at most 50). Uses the indexed subject_pnr_index; the caller (the lookup) audits."""
    rows = (
        await db.execute(
            select(Decision, Organisation.name)
            .join(Organisation, Organisation.id == Decision.municipality_id)
            .where(Decision.subject_pnr_index == pnr_index, _visible_clause(access_of(user)))
            .order_by(Decision.oral_decision_at.desc())
            .limit(50)
        )
    ).all()
    return [
        DecisionBrief(
            id=d.id,
            title=KINDS[d.kind].title,
            act=KINDS[d.kind].act,
            status=d.status,
            status_label=STATUS_LABELS[d.status],
            municipality=municipality,
            oral_decision_at=d.oral_decision_at,
            signed_at=d.signed_at,
        )
        for d, municipality in rows
    ]


def document_html(out: DecisionOut, *, drafted_at: datetime) -> str:
    """The decision document's HTML (the PDF/A is rendered from this)."""
    sentence = decision_sentence(
        out.kind, out.decision_maker_function, out.committee, out.subject_name
    )
    return _documents.get_template("decisions/document.html").render(
        d=out, drafted_at=drafted_at, sentence=sentence
    )


def short_reference(decision_id: uuid.UUID) -> str:
    """The decision's short reference (no personal data): tells two decisions of one night
    apart on the signing page and in the message shown at the identity provider."""
    return str(decision_id)[:8].upper()


async def jour_phone(db: AsyncSession, decision_id: uuid.UUID) -> str:
    """The phone number of the jour that drafted the decision (its organisation's own number,
    the one the night dashboard shows); "" when none is registered."""
    phone = await db.scalar(
        select(Organisation.phone)
        .join(Decision, Decision.jour_id == Organisation.id)
        .where(Decision.id == decision_id)
    )
    return phone or ""


async def submit_for_signature(
    db: AsyncSession, vault: Vault, user: Principal, decision_id: uuid.UUID
) -> str:
    """Render the PDF/A the chair will sign and freeze it; return its SHA-256."""
    from signing.render import render_pdfa

    d = await load_visible(db, user, decision_id, "decision.submit")
    if d.jour_id not in user.orgs_with(Permission.DRAFT_DECISIONS):
        raise Forbidden()
    if d.status != "draft":
        raise Conflict("Beslutet är redan skickat för underskrift.")
    out = await to_out(db, vault, d)
    html = document_html(out, drafted_at=utcnow())
    pdf = await asyncio.to_thread(render_pdfa, html)
    digest = hashlib.sha256(pdf).hexdigest()
    moved = await db.execute(
        update(Decision)
        .where(Decision.id == d.id, Decision.status == "draft", Decision.revision == d.revision)
        .values(
            status="awaiting_signature",
            submitted_at=utcnow(),
            document_sha256=digest,
            document_enc=vault.encrypt(
                base64.b64encode(pdf).decode(), field_context(Decision.document_enc, d.id)
            ),
            revision=Decision.revision + 1,
        )
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Utkastet ändrades samtidigt. Ladda om sidan.")
    maker = await db.get(User, d.decision_maker_id)
    if maker is not None and maker.email_enc:
        from portal.notify.service import queue_mail

        # Day or night: the chair is told at once that something awaits (no content in the mail).
        await queue_mail(
            db,
            to=vault.decrypt(maker.email_enc, field_context(User.email_enc, maker.id)),
            template="sign_request",
            link_path=f"/decisions/{d.id}/sign",
        )
    await audit.record(
        db,
        "decision.submit",
        actor=user.actor(d.jour_id),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
        details={"sha256": digest},
    )
    return digest


CHAIR_REMINDER_AFTER = timedelta(minutes=30)
JOUR_NOTICE_AFTER = timedelta(minutes=60)


async def remind_unsigned(
    db: AsyncSession,
    vault: Vault,
    *,
    now: datetime,
    chair_after: timedelta = CHAIR_REMINDER_AFTER,
    jour_after: timedelta = JOUR_NOTICE_AFTER,
) -> int:
    """Decisions still awaiting signature: `chair_after` submission, one reminder to the chair;
    `jour_after`, one notice to the jour's functional mailboxes. Link only, no content. Each is
    claimed with a conditional UPDATE, so parallel runs never mail twice. Returns how many
    reminders and notices were sent."""
    from portal.notify.service import queue_mail

    waiting = (Decision.status == "awaiting_signature", Decision.submitted_at.is_not(None))
    sent = 0
    chair_due = (
        await db.scalars(
            select(Decision.id).where(
                *waiting,
                Decision.submitted_at <= now - chair_after,
                Decision.chair_reminded_at.is_(None),
            )
        )
    ).all()
    for decision_id in chair_due:
        claimed = await db.execute(
            update(Decision)
            .where(
                Decision.id == decision_id,
                Decision.status == "awaiting_signature",
                Decision.chair_reminded_at.is_(None),
            )
            .values(chair_reminded_at=now)
            .returning(Decision.decision_maker_id)
            .execution_options(synchronize_session=False)
        )
        maker_id = claimed.scalar_one_or_none()
        if maker_id is None:
            continue
        maker = await db.get(User, maker_id)
        if maker is not None and maker.email_enc:
            await queue_mail(
                db,
                to=vault.decrypt(maker.email_enc, field_context(User.email_enc, maker.id)),
                template="sign_reminder",
                link_path=f"/decisions/{decision_id}/sign",
            )
        sent += 1
    jour_due = (
        await db.scalars(
            select(Decision.id).where(
                *waiting,
                Decision.submitted_at <= now - jour_after,
                Decision.jour_notified_at.is_(None),
            )
        )
    ).all()
    for decision_id in jour_due:
        claimed = await db.execute(
            update(Decision)
            .where(
                Decision.id == decision_id,
                Decision.status == "awaiting_signature",
                Decision.jour_notified_at.is_(None),
            )
            .values(jour_notified_at=now)
            .returning(Decision.jour_id)
            .execution_options(synchronize_session=False)
        )
        jour_id = claimed.scalar_one_or_none()
        if jour_id is None:
            continue
        mailboxes = await db.scalars(
            select(Unit.mailbox).where(Unit.organisation_id == jour_id, Unit.mailbox.is_not(None))
        )
        for mailbox in sorted({m for m in mailboxes if m}):
            await queue_mail(
                db, to=mailbox, template="sign_overdue", link_path=f"/decisions/{decision_id}"
            )
        sent += 1
    return sent


async def document_pdf(
    db: AsyncSession, vault: Vault, user: Principal, decision_id: uuid.UUID
) -> bytes:
    """The frozen, unsigned PDF the chair is asked to sign; audited as a download."""
    d = await load_visible(db, user, decision_id, "decision.download")
    if d.document_enc is None:
        raise NotFound("Beslutet har inget dokument ännu.")
    await audit.record(
        db,
        "decision.download",
        actor=user.actor(),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
        details={"document": "unsigned"},
    )
    return base64.b64decode(
        vault.decrypt(d.document_enc, field_context(Decision.document_enc, d.id))
    )


async def close(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    decision_id: uuid.UUID,
    *,
    to: str,
    reason: str,
) -> None:
    """Lift (hävt) or cancel (makulerat) a decision, with a reason; never deletes anything."""
    d = await load_visible(db, user, decision_id, f"decision.{to}")
    allowed = d.jour_id in user.orgs_with(Permission.DRAFT_DECISIONS) or (
        d.municipality_id in user.orgs_with(Permission.READ_REPORTS)
    )
    if not allowed or to not in ("lifted", "cancelled"):
        raise Forbidden()
    if d.status in ("lifted", "cancelled"):
        raise Conflict("Beslutet är redan avslutat.")
    if to == "cancelled" and d.status not in ("draft", "awaiting_signature"):
        raise Conflict("Ett signerat beslut kan inte makuleras; det kan hävas.")
    if not reason.strip():
        raise InvalidInput(errors={"reason": "Ange skäl."})
    d.status = to
    d.closed_at = utcnow()
    d.closed_reason_enc = vault.encrypt(
        reason.strip()[:MAX_TEXT], field_context(Decision.closed_reason_enc, d.id)
    )
    d.revision += 1
    await audit.record(
        db,
        f"decision.{to}",
        actor=user.actor(),
        owner_org_id=d.municipality_id,
        object_type="decision",
        object_id=d.id,
    )
