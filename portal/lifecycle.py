"""What a record feature tells retention about one of its records (web-free, feature-neutral).

Each record feature's `records.py` returns these from `lifecycles` and `lifecycle`; retention
applies its rules to them without knowing the feature's tables.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One record's owner, the date its retention time runs from, and its files."""

    record_id: uuid.UUID
    """The record."""
    owner_org_id: uuid.UUID
    """The organisation whose record it is (whose archivist may hold it)."""
    anchor: datetime
    """The date the retention time runs from (the rule's `anchor`)."""
    in_progress: str | None = None
    """Why the record may not be culled yet although its time is up (Swedish), or None."""
    objects: list[str] = field(default_factory=list)
    """Keys of its objects in the store."""
