"""Outputs of the code list API (typed: they appear in OpenAPI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class CodeOut:
    """One code of a code list."""

    code: str
    """Stable identifier."""
    label: str
    """Swedish name as people read it."""
    definition: str | None
    """Optional definition."""
    valid_from: date
    """First day the code applies."""
    valid_to: date | None
    """Last day, or None while current."""
    involves_child: bool
    """Category about a child or young person."""
    short_label: str
    """The label as published in the statistics' code list (e.g. "Handr Återk")."""


@dataclass(frozen=True, slots=True)
class CodeListVersionOut:
    """One version of the four lists."""

    version: str
    """Version name."""
    valid_from: date
    """First day."""
    valid_to: date | None
    """Last day, or None while current."""
    description: str
    """What changed."""
    lists: dict[str, list[CodeOut]]
    """category, action, character, initiator."""


@dataclass(frozen=True, slots=True)
class CodeMappingOut:
    """A code of an older version corresponds to a code of a newer one."""

    list_name: str
    """The list."""
    from_version: str
    """Older version."""
    from_code: str
    """Older code."""
    to_version: str
    """Newer version."""
    to_code: str
    """Newer code."""


@dataclass(frozen=True, slots=True)
class CodeListsOut:
    """Every version and the mappings between them."""

    current_version: str
    """The version new reports are written under."""
    versions: list[CodeListVersionOut]
    """All versions, oldest first."""
    mappings: list[CodeMappingOut]
    """Mappings between versions."""
