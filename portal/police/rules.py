"""The legal-basis check of a police-assistance request, and the request's life (pure rules).

Handräckning is lawful only to carry out care under LVU (43 §) or LVM (45 §). Nordväst's
deviation no. 1 was a request for a child placed under SoL — voluntary care, where the police
can't be asked to help. So, against the municipality's placement register first (it is the
municipality's own word), then the advisories:

- a current placement under SoL (and none under LVU/LVM): BLOCKED, with why;
- a current placement under the other act than the one asked for: BLOCKED (ask under the right
  paragraph);
- a current placement under the act asked for: allowed;
- nothing in the register: a WARNING that must be confirmed — unless an advisory says SoL, which
  blocks too (the municipality told the jour so in writing);
- nothing at all: a warning (e.g. tonight's 6 § LVU decision is not in the register yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ACTS = {"lvu": "43 § LVU", "lvm": "45 § LVM"}
"""Act -> the paragraph the request is made under."""
PURPOSES = {
    "return": "Återförande till placeringen (personen har avvikit)",
    "transport": "Inställelse till placering, läkarundersökning eller vårdinrättning",
}
"""Why the police's help is needed."""
STAT_CODES = {"lvu": "handr_43_lvu", "lvm": "handr_45_lvm"}
RETURN_CODE = "handr_aterk"
"""The statistics' "Handr" codes (portal/stats/service.py: DECISION_ACTIONS)."""

STATUSES = {
    "awaiting_chair": "Väntar på ordförandens beslut",
    "signed": "Underskriven – skicka till polisen",
    "sent": "Skickad till polisen",
    "granted": "Beviljad av polisen",
    "refused": "Avslagen av polisen",
    "executed": "Verkställd",
    "not_found": "Personen påträffades inte",
    "revoked": "Återkallad",
}
"""Status -> Swedish label."""
TRANSITIONS: dict[str, frozenset[str]] = {
    "awaiting_chair": frozenset({"revoked"}),  # signed through the chair's approval
    "signed": frozenset({"sent", "revoked"}),
    "sent": frozenset({"granted", "refused", "revoked"}),
    "granted": frozenset({"executed", "not_found", "revoked"}),
    "not_found": frozenset({"executed", "revoked"}),
    "refused": frozenset(),
    "executed": frozenset(),
    "revoked": frozenset(),
}
"""Which status may follow which (the jour records each; every step is audited with its time)."""


def stat_code(act: str, purpose: str) -> str:
    """The statistics code a request is counted under."""
    return RETURN_CODE if purpose == "return" else STAT_CODES[act]


@dataclass(frozen=True, slots=True)
class Basis:
    """One thing known about the person's legal basis."""

    source: str
    """placement | advisory."""
    legal_basis: str
    """sol | lvu | lvm | none."""
    label: str
    """What it is, in Swedish ("3 § LVU – eget beteende, Hudiksvall")."""


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of the legal-basis check."""

    outcome: str
    """allowed | warning | blocked."""
    message: str
    """Why, in Swedish (shown to the jour)."""
    found: tuple[Basis, ...]
    """What the check was made against."""


def check(act: str, placements: Sequence[Basis], advisories: Sequence[Basis]) -> Check:
    """Check a request under `act` (lvu | lvm) against the person's current placements and
    active advisories."""
    wanted = ACTS[act]
    found = (*placements, *advisories)
    bases = {b.legal_basis for b in placements}
    if act in bases:
        return Check("allowed", f"Placeringsregistret visar placering enligt {act.upper()}: "
                     f"handräckning kan begäras enligt {wanted}.", found)  # fmt: skip
    other = ({"lvu", "lvm"} - {act}) & bases
    if other:
        right = other.pop()
        return Check(
            "blocked",
            f"Personen är placerad enligt {right.upper()}, inte {act.upper()}. En begäran enligt "
            f"{wanted} saknar stöd – begär handräckning enligt {ACTS[right]} i stället.",
            found,
        )
    if "sol" in bases:
        return Check(
            "blocked",
            "Personen är placerad frivilligt enligt SoL. Handräckning får inte begäras för en "
            "frivillig placering – polisen kan bara bistå vid vård enligt LVU (43 §) eller "
            "LVM (45 §). Kontakta kommunens socialtjänst eller ordförande om ett omedelbart "
            "omhändertagande behövs.",
            found,
        )
    advised = {b.legal_basis for b in advisories}
    if "sol" in advised and not advised & {"lvu", "lvm"}:
        return Check(
            "blocked",
            "Kommunens avisering anger att placeringen är frivillig enligt SoL. Handräckning "
            "får inte begäras för en frivillig placering. Kontrollera med kommunen innan något "
            "annat görs.",
            found,
        )
    if act in advised:
        return Check(
            "warning",
            f"Placeringsregistret saknar uppgift; bara en avisering anger {act.upper()}. "
            "Kontrollera lagrummet (t.ex. med placeringen eller ordföranden) och bekräfta innan "
            "begäran skapas.",
            found,
        )
    return Check(
        "warning",
        "Ingen placering är registrerad för personen och ingen avisering anger LVU eller LVM. "
        f"Handräckning enligt {wanted} förutsätter ett beslut om vård eller omhändertagande "
        "enligt " + act.upper() + ". Bekräfta att ett sådant beslut finns innan begäran skapas.",
        found,
    )
