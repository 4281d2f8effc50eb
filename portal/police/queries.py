"""Reading police-assistance requests: the jour's list, one request with its life, the signed
PDF. Every read is audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from portal import paging
from portal.attachments.store import stored_object
from portal.audit import service as audit
from portal.db.models import Organisation
from portal.errors import AuditNote, Forbidden, NotFound
from portal.paging import PAGE_SIZE, Page
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.police import access, rules
from portal.police.content import Stored, from_blob
from portal.police.models import PoliceRequest, PoliceRequestEvent
from portal.principal import Principal
from portal.records import in_period
from storage import EncryptedObjectStore

LIST_LIMIT = 200
"""Most rows in a list."""


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a request's life."""

    status: str
    """created, signed, sent, granted, ..."""
    label: str
    """In Swedish."""
    at: datetime
    """When."""
    by: str
    """Who recorded it."""
    note: str
    """What they noted (e.g. the commander's name, where the person was found)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """A request in a list."""

    id: uuid.UUID
    """The request."""
    municipality: str
    """On whose behalf."""
    act: str
    """lvu | lvm."""
    act_label: str
    """43 § LVU | 45 § LVM."""
    status: str
    """Current status."""
    status_label: str
    """In Swedish."""
    status_at: datetime
    """Since when."""
    created_at: datetime
    """Made."""
    name: str
    """The person's name."""
    decided_by: str
    """jour | chair."""
    legal_check: str
    """ok | warning_confirmed."""
    revision: int
    """For optimistic updates."""


@dataclass(frozen=True, slots=True)
class Detail:
    """A request with its content and life."""

    summary: Summary
    """The request."""
    stored: Stored
    """What it says and what the check said."""
    events: tuple[Event, ...]
    """Its life, oldest first."""
    signed: bool
    """A signed PDF exists."""
    next_steps: tuple[tuple[str, str], ...]
    """(status, label) the jour may record next."""
    can_track: bool
    """The caller works at the jour."""
    can_approve: bool
    """The caller is the municipality's chair and the request awaits them."""


EVENT_LABELS = {"created": "Begäran upprättad", **rules.STATUSES}


def _summary(r: PoliceRequest, municipality: str, stored: Stored) -> Summary:
    return Summary(
        id=r.id, municipality=municipality, act=r.act, act_label=rules.ACTS[r.act],
        status=r.status, status_label=rules.STATUSES[r.status], status_at=r.status_at,
        created_at=r.created_at, name=stored.content.name, decided_by=r.decided_by,
        legal_check=r.legal_check, revision=r.revision,
    )  # fmt: skip


def _stored(vault: Vault, r: PoliceRequest) -> Stored:
    return from_blob(
        vault.decrypt(r.content_enc, field_context(PoliceRequest.content_enc, r.id)),
        vault.decrypt(r.pnr_enc, field_context(PoliceRequest.pnr_enc, r.id)),
        act=r.act, purpose=r.purpose,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What the list of requests is narrowed to."""

    status: str | None = None
    """A key of rules.STATUSES."""
    act: str | None = None
    """lvu | lvm."""
    municipality_id: uuid.UUID | None = None
    """Made for this municipality."""
    since: datetime | None = None
    """Made at or after."""
    until: datetime | None = None
    """Made before."""


def _visible(user: Principal) -> ColumnElement[bool]:
    jours, towns = access.jour_orgs(user), access.municipality_orgs(user)
    return or_(PoliceRequest.jour_id.in_(jours), PoliceRequest.organisation_id.in_(towns))


def _filtered(f: ListFilter) -> ColumnElement[bool]:
    return and_(
        PoliceRequest.status == f.status if f.status else true(),
        PoliceRequest.act == f.act if f.act else true(),
        PoliceRequest.organisation_id == f.municipality_id if f.municipality_id else true(),
        *in_period(PoliceRequest.created_at, f.since, f.until),
    )


async def list_visible(
    db: AsyncSession,
    vault: Vault,
    user: Principal,
    *,
    filters: ListFilter = ListFilter(),
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> Page[Summary]:
    """A page of the caller's jour's requests, or their municipality's, newest first (keyset by
    (made, id)), filtered; audited with the ids shown, each page."""
    if not access.jour_orgs(user) and not access.municipality_orgs(user):
        raise Forbidden(audit=AuditNote("police_request.list", "denied"))
    cursor = paging.decode(before)
    where = _visible(user) & _filtered(filters)
    rows = (
        await db.execute(
            select(PoliceRequest, Organisation.name)
            .join(Organisation, Organisation.id == PoliceRequest.organisation_id)
            .where(where, paging.after(PoliceRequest.created_at, PoliceRequest.id, cursor))
            .order_by(PoliceRequest.created_at.desc(), PoliceRequest.id.desc())
            .limit(size + 1)
        )
    ).all()
    total = await db.scalar(select(func.count()).select_from(PoliceRequest).where(where))
    out = [_summary(r, name, _stored(vault, r)) for r, name in rows[:size]]
    await audit.record(
        db, "police_request.list", actor=user.actor(), object_type=access.OBJECT_TYPE,
        details={"requests": [str(s.id) for s in out]},
    )  # fmt: skip
    return paging.page_of(
        out, more=len(rows) > size, cursor=cursor, key=lambda x: (x.created_at, x.id),
        total=int(total or 0),
    )  # fmt: skip


async def list_municipalities(db: AsyncSession, user: Principal) -> list[tuple[uuid.UUID, str]]:
    """The municipalities whose requests the caller sees (the list filters by them)."""
    jours, towns = access.jour_orgs(user), access.municipality_orgs(user)
    rows = await db.execute(
        select(Organisation.id, Organisation.name)
        .where(
            or_(
                Organisation.id.in_(towns),
                (Organisation.kind == "municipality") & Organisation.jour_id.in_(jours),
            )
        )
        .order_by(Organisation.name)
    )
    return [(oid, name) for oid, name in rows]


async def get(db: AsyncSession, vault: Vault, user: Principal, request_id: uuid.UUID) -> Detail:
    """One request with its life; audited."""
    r = await access.get_visible(db, user, request_id, "police_request.read")
    org = await db.get(Organisation, r.organisation_id)
    stored = _stored(vault, r)
    rows = (
        await db.scalars(
            select(PoliceRequestEvent)
            .where(PoliceRequestEvent.request_id == r.id)
            .order_by(PoliceRequestEvent.at, PoliceRequestEvent.id)
        )
    ).all()
    names = await user_names(db, vault, [e.by for e in rows])
    events = tuple(
        Event(e.status, EVENT_LABELS.get(e.status, e.status), e.at, names.get(e.by, ""),
              vault.decrypt(e.note_enc, field_context(PoliceRequestEvent.note_enc, e.id))
              if e.note_enc else "")
        for e in rows
    )  # fmt: skip
    can_track = r.jour_id in access.jour_orgs(user)
    await audit.record(
        db, "police_request.read", actor=access.actor_for(user, r), owner_org_id=r.organisation_id,
        object_type=access.OBJECT_TYPE, object_id=r.id,
    )  # fmt: skip
    return Detail(
        summary=_summary(r, org.name if org else "", stored),
        stored=stored,
        events=events,
        signed=r.signed_object_id is not None,
        next_steps=tuple(
            (s, rules.STATUSES[s]) for s in rules.STATUSES if s in rules.TRANSITIONS[r.status]
        ) if can_track else (),
        can_track=can_track,
        can_approve=r.status == "awaiting_chair" and r.organisation_id in access.chair_orgs(user),
    )  # fmt: skip


async def signed_pdf(
    db: AsyncSession, files: EncryptedObjectStore, user: Principal, request_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """Stream the signed PDF (integrity checked while reading); audited as a download."""
    r = await access.get_visible(db, user, request_id, "police_request.download")
    if r.signed_object_id is None:
        raise NotFound("Begäran är inte underskriven ännu.")
    await audit.record(
        db, "police_request.download", actor=access.actor_for(user, r),
        owner_org_id=r.organisation_id, object_type=access.OBJECT_TYPE, object_id=r.id,
    )  # fmt: skip
    return files.get(stored_object(r, "signed_"))
