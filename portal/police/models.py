"""Police-assistance requests, their life events, and the delegation matrix.

At rest: the person's name, whereabouts and the grounds are one encrypted JSON blob bound to
"police_requests.content:<id>"; the personnummer is a blind index plus ciphertext bound to
"police_requests.pnr:<id>". The act, the statistics code, the check's outcome, the status and
its times stay in clear (tracking, statistics, tenancy). An event's note is encrypted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base, utcnow
from portal.db.models import new_id


class PoliceRequest(Base):
    """A request for police assistance, from the jour on behalf of a municipality's committee."""

    __tablename__ = "police_requests"
    __table_args__ = (
        Index("ix_police_requests_jour_created", "jour_id", "created_at"),
        # One request per submission of a form or API call (docs/police-requests.md,
        # "Sent twice"): a repeat of the same key, even racing on another instance, can't
        # insert a second request. NULL (no key given) never collides.
        Index("uq_police_requests_submission", "created_by", "submission_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    jour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    act: Mapped[str] = mapped_column(String(10))  # lvu | lvm
    purpose: Mapped[str] = mapped_column(String(20))  # return | transport
    stat_code: Mapped[str] = mapped_column(String(30))  # handr_43_lvu | handr_45_lvm | handr_aterk
    legal_check: Mapped[str] = mapped_column(String(20))  # ok | warning_confirmed
    placement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("placements.id"))
    decided_by: Mapped[str] = mapped_column(String(10))  # jour | chair
    status: Mapped[str] = mapped_column(String(20))
    status_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(default=1)
    pnr_index: Mapped[str] = mapped_column(String(64), index=True)
    pnr_enc: Mapped[str] = mapped_column(Text)
    content_enc: Mapped[str] = mapped_column(Text)
    signed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None] = mapped_column(default=None)
    signed_object_id: Mapped[str | None] = mapped_column(String(100))
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_size: Mapped[int | None] = mapped_column()
    signed_kek_id: Mapped[str | None] = mapped_column(String(40))
    signed_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    submission_key: Mapped[str | None] = mapped_column(String(64), default=None)
    """The one-time key of the form or API call that made the request (the form's hidden
    field, the API's Idempotency-Key header), unique per creating user; None when none was
    given. Not personal data (random, chosen by the form or the client)."""


class PoliceRequestEvent(Base):
    """One step of a request's life (created, signed, sent, granted, ...). Never changed."""

    __tablename__ = "police_request_events"
    __table_args__ = (Index("ix_police_request_events_request", "request_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("police_requests.id"))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    note_enc: Mapped[str | None] = mapped_column(Text)


class DelegationRule(Base):
    """One cell of a municipality's delegation matrix (FR-A5): who decides a matter."""

    __tablename__ = "delegation_rules"
    __table_args__ = (UniqueConstraint("organisation_id", "matter"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    matter: Mapped[str] = mapped_column(String(30))  # e.g. handrackning_lvu
    decided_by: Mapped[str] = mapped_column(String(10))  # jour | chair
    changed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
