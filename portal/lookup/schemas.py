"""Request and response bodies of the lookup API and page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from portal.advisories import texts
from portal.advisories.schemas import AdvisorySummaryOut, summary_out
from portal.assignments.schemas import AssignmentSummaryOut
from portal.assignments.schemas import summary_out as assignment_out
from portal.decisions.schemas import DecisionBrief
from portal.lookup.service import LookupResult
from portal.placements.schemas import PlacementSummaryOut
from portal.placements.schemas import summary_out as placement_out
from portal.reports.schemas import ReportSummary


@dataclass
class LookupIn:
    """Look a person up (in the body: personal data never goes in a URL)."""

    personal_identity_number: str = ""
    """Personnummer or samordningsnummer, 10 or 12 digits, with or without separator."""
    name: str = ""
    """Instead of a number: a name or alias ("Kalle Klient", "Sixten"); every word must match."""


@dataclass(frozen=True)
class PlanOut:
    """What an advisory asks of the jour (its current version)."""

    advisory_id: uuid.UUID
    """The advisory (one of `advisories`)."""
    plan: str
    """Planering."""
    alternative_plans: str
    """Alternativ planering."""
    instructions: str
    """Instruktioner till jouren, e.g. "Bevilja inte akutboende"."""
    legal_basis: str
    """none | sol | lvu | lvm."""
    legal_basis_label: str
    """The legal basis in Swedish."""
    contact_name: str
    """Who the jour can call."""
    contact_phone: str
    """Their number."""


@dataclass(frozen=True)
class LookupOut:
    """What the caller may see about the person."""

    personal_identity_number: str
    """The normalised 12-digit number (empty for a search by name)."""
    name: str
    """The name searched for (empty for a search by number)."""
    advisories: list[AdvisorySummaryOut]
    """Active and recently expired (30 days) advisories; check `expired`."""
    reports: list[ReportSummary]
    """Incident reports about the person that the caller may read (no personal data)."""
    decisions: list[DecisionBrief]
    """Custody decisions about the person that the caller may see (no personal data)."""
    plans: list[PlanOut]
    """The found advisories' plans, instructions, legal basis and contact."""
    placements: list[PlacementSummaryOut]
    """Placements of the person in the register (planned, current, ended within 30 days) that
    the caller may see: where, and under which legal basis (found by number or name)."""
    assignments: list[AssignmentSummaryOut]
    """Open assignments about the person, and those closed within a week, that the caller may
    see (found by number only)."""


def lookup_out(result: LookupResult) -> LookupOut:
    """API shape of a lookup."""
    return LookupOut(
        personal_identity_number=result.personal_identity_number,
        name=result.name,
        advisories=[summary_out(a) for a in result.advisories],
        reports=list(result.reports),
        decisions=list(result.decisions),
        plans=[
            PlanOut(
                aid,
                c.plan,
                c.alternative_plans,
                c.instructions,
                c.legal_basis,
                texts.legal_basis(c.legal_basis),
                c.contact_name,
                c.contact_phone,
            )
            for aid, c in result.plans.items()
        ],
        placements=[placement_out(pl) for pl in result.placements],
        assignments=[assignment_out(a) for a in result.assignments],
    )
