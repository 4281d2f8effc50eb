"""Request and response bodies of the lookup API and page."""

from __future__ import annotations

from dataclasses import dataclass

from portal.advisories.schemas import AdvisorySummaryOut, summary_out
from portal.decisions.schemas import DecisionBrief
from portal.lookup.service import LookupResult
from portal.reports.schemas import ReportSummary


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
    reports: list[ReportSummary]
    """Incident reports about the person that the caller may read (no personal data)."""
    decisions: list[DecisionBrief]
    """Custody decisions about the person that the caller may see (no personal data)."""


def lookup_out(result: LookupResult) -> LookupOut:
    """API shape of a lookup."""
    return LookupOut(
        personal_identity_number=result.personal_identity_number,
        advisories=[summary_out(a) for a in result.advisories],
        reports=list(result.reports),
        decisions=list(result.decisions),
    )
