"""Request and response bodies of the lookup API and page."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec

from portal.advisories.schemas import AdvisorySummaryOut, summary_out
from portal.lookup.service import LookupResult


@dataclass
class LookupIn:
    """Look a person up (in the body: personal data never goes in a URL)."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer, 10 or 12 digits, with or without separator."""


@dataclass(frozen=True)
class LookupOut:
    """What the caller may see about the person."""

    personal_identity_number: str
    """The normalised 12-digit number."""
    advisories: list[AdvisorySummaryOut]
    """Active and recently expired (30 days) advisories; check `expired`."""
    reports: list[dict[str, Any]]
    """Incident reports about the person that the caller may read."""
    reports_searched: bool
    """False when this build has no incident reports."""


def _report(report: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return msgspec.to_builtins(dataclasses.asdict(report))  # type: ignore[no-any-return]
    if isinstance(report, msgspec.Struct):
        return msgspec.to_builtins(report)  # type: ignore[no-any-return]
    return {"id": str(getattr(report, "id", ""))}


def lookup_out(result: LookupResult) -> LookupOut:
    """API shape of a lookup."""
    return LookupOut(
        personal_identity_number=result.personal_identity_number,
        advisories=[summary_out(a) for a in result.advisories],
        reports=[_report(r) for r in result.reports],
        reports_searched=result.reports_searched,
    )
