"""Inputs and outputs of the decision pages and API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class DecisionIn:
    """A draft decision as the jour writes it after the chair decided orally."""

    kind: str
    """lvu6 | lvm13 | lvu11."""
    municipality_id: uuid.UUID
    """The municipality whose committee decided."""
    oral_decision_at: datetime
    """When the chair decided orally (timezone-aware); deadlines run from here."""
    decision_maker_id: uuid.UUID
    """Who decided: must have been on the municipality's roster at that time."""
    subject_name: str
    """The young person's or adult's name."""
    facts: str
    """What happened (omständigheter)."""
    grounds: str
    """Why the legal conditions are met (skäl)."""
    subject_personal_identity_number: str = ""
    """Personnummer; empty only when the identity is unknown."""
    placement: str = ""
    """Where the person is placed (placering), if decided."""
    revision: int | None = None
    """For updates: the revision the edit was based on (optimistic locking)."""


@dataclass(frozen=True)
class DecisionBrief:
    """A decision in a search result: what it is and where it stands, no personal data."""

    id: uuid.UUID
    """The decision."""
    title: str
    """E.g. "Omedelbart omhändertagande"."""
    act: str
    """E.g. "6 § LVU"."""
    status: str
    """draft | awaiting_signature | signed | … (see status_label)."""
    status_label: str
    """The status in Swedish."""
    municipality: str
    """The municipality whose committee decided."""
    oral_decision_at: datetime
    """When the chair decided orally (UTC)."""
    signed_at: datetime | None
    """When the chair signed (UTC), if signed."""


@dataclass
class DeadlineOut:
    """A deadline of a decision."""

    key: str
    label: str
    basis: str
    due: datetime | None
    overdue: bool
    immediately: bool = False
    """"Genast": `due` is when Jourpost starts to show it as passed, not a legal time limit."""


@dataclass
class DecisionOut:
    """A decision as shown to people allowed to see it."""

    id: uuid.UUID
    kind: str
    title: str
    act: str
    status: str
    status_label: str
    municipality_id: uuid.UUID
    municipality: str
    committee: str
    oral_decision_at: datetime
    decision_maker_id: uuid.UUID
    decision_maker: str
    decision_maker_function: str
    subject_name: str
    subject_personal_identity_number: str | None
    facts: str
    grounds: str
    placement: str
    revision: int
    document_sha256: str | None
    signed_at: datetime | None
    delivered_at: datetime | None
    deadlines: list[DeadlineOut] = field(default_factory=list)
