"""Swedish texts of the advisory pages, in one place (English can follow)."""

from __future__ import annotations

from datetime import datetime

from portal.advisories.content import LEGAL_BASES, police_assistance_lawful

KINDS = {"created": "Inlagd", "amended": "Ändrad", "reconfirmed": "Bekräftad"}
STATUS = {"active": "Aktiv", "withdrawn": "Återkallad"}


def ago(then: datetime, now: datetime) -> str:
    """ "för 3 dagar sedan", "för 2 timmar sedan", "nyss"."""
    seconds = int((now - then).total_seconds())
    if seconds < 60:
        return "nyss"
    for size, one, many in (
        (86400, "dag", "dagar"),
        (3600, "timme", "timmar"),
        (60, "minut", "minuter"),
    ):
        if seconds >= size:
            n = seconds // size
            return f"för {n} {one if n == 1 else many} sedan"
    return "nyss"


def legal_basis(code: str) -> str:
    """The label of a legal-basis code."""
    return LEGAL_BASES.get(code, code)


def police_note(code: str) -> tuple[str, str]:
    """(css class, text) on whether police assistance (handräckning) is lawful."""
    if police_assistance_lawful(code):
        return "ok", (
            f"Placering enligt {LEGAL_BASES[code]}: handräckning (polisens hjälp) kan begäras."
        )
    if code == "sol":
        return "warning", (
            "Placeringen är frivillig enligt SoL: handräckning (polisens hjälp) får inte begäras. "
            "Handräckning är bara möjlig vid LVU eller LVM."
        )
    return (
        "info",
        "Ingen placering: handräckning är bara möjlig vid placering enligt LVU eller LVM.",
    )
