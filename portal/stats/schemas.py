"""The cost key's API models (the statistics themselves answer plain dictionaries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class CostKeyIn:
    """A jour's cost-allocation key (FR-G6), as the unit head sets it."""

    population_percent: int
    """Percent of the cost shared by population, 0–100 (100: population only, as in
    Gävleborg); the rest is shared by the time the jour spent on each municipality."""
    annual_sek: int
    """The jour's annual cost in whole kronor (0: shares only, no amounts)."""
    invoicing_period: str
    """tertial, quarter or year."""


@dataclass
class CostKeyOut:
    """The jour's key in use."""

    jour_id: str
    """The jour."""
    population_percent: int
    """Percent of the cost shared by population."""
    annual_sek: int
    """Annual cost in whole kronor (0: none)."""
    invoicing_period: str
    """tertial, quarter or year."""
    own: bool
    """True: the jour's own key; false: the instance's default (settings)."""
    updated_at: datetime | None
    """When the jour's own key was last changed."""
