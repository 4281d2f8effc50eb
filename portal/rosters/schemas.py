"""Inputs and outputs of the roster API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

FUNCTIONS = {"chair": "Ordförande", "substitute": "Ersättare", "appointed": "Förordnad ledamot"}


@dataclass
class EntryIn:
    """One line of a new roster version."""

    user_id: uuid.UUID
    """The chair, substitute or appointed member (a user with that role in the municipality)."""
    function: str
    """chair | substitute | appointed."""
    valid_from: datetime
    """Start of the on-call period (timezone-aware)."""
    valid_to: datetime
    """End of the on-call period (exclusive)."""
    phone: str
    """Number the jour calls."""
    position: int = 1
    """Fallback order within the period: 1 is called first."""


@dataclass
class RosterIn:
    """A new version of a municipality's roster: the complete list, replacing the previous."""

    municipality_id: uuid.UUID
    """The municipality the roster belongs to."""
    entries: list[EntryIn] = field(default_factory=list)
    """Every period and person on call."""


@dataclass
class EntryOut:
    """One line of a roster version."""

    user_id: uuid.UUID
    name: str
    function: str
    position: int
    valid_from: datetime
    valid_to: datetime
    phone: str


@dataclass
class AckOut:
    """A receipt by the jour."""

    jour_id: uuid.UUID
    user_name: str
    at: datetime


@dataclass
class RosterVersionOut:
    """A roster version with its lines and receipts."""

    id: uuid.UUID
    municipality_id: uuid.UUID
    municipality: str
    number: int
    created_at: datetime
    entries: list[EntryOut]
    acknowledgements: list[AckOut]


@dataclass
class OnCallOut:
    """Whom the jour calls now for one municipality, in order."""

    municipality_id: uuid.UUID
    municipality: str
    version_id: uuid.UUID | None
    version_number: int | None
    acknowledged: bool
    on_call: list[EntryOut]


@dataclass
class FirstOnCall:
    """Whom the jour calls first now for one municipality (the night dashboard's line)."""

    municipality_id: uuid.UUID
    municipality: str
    version_id: uuid.UUID | None
    """The version in force (None: the municipality has no roster)."""
    acknowledged: bool
    """The caller's jour acknowledged that version."""
    first: EntryOut | None
    """The first in the fallback order of those on call now (None: nobody)."""
