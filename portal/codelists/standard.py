"""The standard code lists of the Gävleborg jour statistics, versions 2016 and 2017.

Source: the jour's annual report tables 3, 4, 6 and 7 (shared/domain/stats). The only change
between the versions is the category list: "13–20 år" was abolished in 2017 and split into
"13–17 år" and "18–20 år" (LVU still applies up to 20).

This module is append-only: the migration that created the tables inserted exactly these rows.
A new version is added here together with a new data migration; published entries never change,
so a report written under "2016" means the same thing forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

LISTS = ("category", "action", "character", "initiator")
LIST_LABELS = {
    "category": "Kategori",
    "action": "Åtgärd",
    "character": "Karaktär",
    "initiator": "Initiativtagare",
}


@dataclass(frozen=True, slots=True)
class StandardVersion:
    """One published version of the four lists."""

    version: str
    """Version name, e.g. "2017"."""
    valid_from: date
    """First day the version applies."""
    valid_to: date | None
    """Last day, or None while current."""
    description: str
    """What changed (Swedish)."""


@dataclass(frozen=True, slots=True)
class StandardEntry:
    """One code of one list in one version."""

    list_name: str
    """category | action | character | initiator."""
    version: str
    """The version it belongs to."""
    code: str
    """Stable identifier (ASCII slug of the label)."""
    label: str
    """Swedish label."""
    position: int
    """Display order."""
    definition: str | None = None
    """Optional Swedish definition."""
    involves_child: bool = False
    """Category codes that concern a child or young person (protection assessment required)."""


# The published labels are the statistics' abbreviations ("Handr Återk"); people at night read
# these names instead. Display only: stored codes and labels never change (see the docstring).
DISPLAY_NAMES: dict[str, str] = {
    "Ek bistånd": "Ekonomiskt bistånd",
    "Handr 43§ LVU": "Handräckning enligt 43 § LVU",
    "Handr 45§ LVM": "Handräckning enligt 45 § LVM",
    "Handr Återk": "Handräckning för återförande",
    "Medv vid förhör": "Medverkan vid polisförhör",
    "Omplac 11 § LVU": "Omplacering enligt 11 § LVU",
    "Ordf besl 13 § LVM": "Ordförandebeslut enligt 13 § LVM",
    "Ordf besl 6 § LVU": "Ordförandebeslut enligt 6 § LVU",
    "Plac 4 kap 1 § SoL": "Placering enligt 4 kap. 1 § SoL",
    "Tillsyn individ": "Tillsyn av person (besök)",
    "Transport egen": "Transport, personalens egen resa",
    "Transport klient": "Transport med klient",
    "Upplys/Hänvis": "Upplysning eller hänvisning",
    "B/U missbruk eget": "Barn/ungdom, eget missbruk",
    "B/U missbruk föräldrar": "Barn/ungdom, föräldrars missbruk",
    "B/U misshandel": "Barn/ungdom, misshandel",
}


def display_name(label: str) -> str:
    """The name shown to people for a published label (the label itself when it reads well)."""
    return DISPLAY_NAMES.get(label, label)


def slug(label: str) -> str:
    """An ASCII code for a Swedish label: "Handr 43§ LVU" -> "handr_43_lvu"."""
    lowered = label.lower().translate(str.maketrans("åäöé", "aaoe"))
    return re.sub(r"[^a-z0-9]+", "_", lowered).strip("_")


VERSIONS = (
    StandardVersion("2016", date(2016, 1, 1), date(2016, 12, 31), "Kodlista för 2016."),
    StandardVersion(
        "2017",
        date(2017, 1, 1),
        None,
        "Från 2017: kategorin 13–20 år delas i 13–17 år och 18–20 år.",
    ),
)

_CHILD = "involves_child"
# (label, definition, flags) per list; categories differ by version.
_CATEGORIES_2016: tuple[tuple[str, str | None, bool], ...] = (
    ("0–12 år", "Barn 0–12 år.", True),
    ("13–20 år", "Ungdom 13–20 år. Avskaffad 2017 (delad i 13–17 år och 18–20 år).", True),
    ("Familj", None, False),
    ("Kvinna", None, False),
    ("Kvinna med barn", None, True),
    ("Man", None, False),
    ("Man med barn", None, True),
)
_CATEGORIES_2017: tuple[tuple[str, str | None, bool], ...] = (
    ("0–12 år", "Barn 0–12 år.", True),
    ("13–17 år", "Ungdom 13–17 år.", True),
    ("18–20 år", "Ung vuxen 18–20 år. LVU kan tillämpas till 20 års ålder.", True),
    ("Familj", None, False),
    ("Kvinna", None, False),
    ("Kvinna med barn", None, True),
    ("Man", None, False),
    ("Man med barn", None, True),
)
_ACTIONS: tuple[tuple[str, str | None], ...] = (
    ("Anmälan", "Anmälan eller orosanmälan har tagits emot."),
    ("Ansökan", "Ansökan om bistånd har tagits emot."),
    ("Avisering", "Avisering har registrerats."),
    ("Avslag", "Ansökan har avslagits."),
    ("Ek bistånd", "Ekonomiskt bistånd har beviljats (4 kap. 1 § SoL)."),
    ("Handr 43§ LVU", "Begäran om polishandräckning enligt 43 § LVU."),
    ("Handr 45§ LVM", "Begäran om polishandräckning enligt 45 § LVM."),
    ("Handr Återk", "Handräckning, återförande (förkortningen förklaras inte i källan)."),
    ("Information", "Information har lämnats."),
    ("Logi", "Akut logi har beviljats (4 kap. 1 § SoL)."),
    ("LVM-bedömning", "Bedömning enligt LVM."),
    ("Medv vid förhör", "Medverkan vid polisförhör med underårig."),
    ("Omplac 11 § LVU", "Omplacering enligt 11 § LVU (ordförandebeslut)."),
    ("Ordf besl 13 § LVM", "Ordförandebeslut om omedelbart omhändertagande enligt 13 § LVM."),
    ("Ordf besl 6 § LVU", "Ordförandebeslut om omedelbart omhändertagande enligt 6 § LVU."),
    ("Plac 4 kap 1 § SoL", "Placering med stöd av 4 kap. 1 § SoL."),
    ("Relationsproblem", None),
    ("Skyddsbedömning", "Skyddsbedömning enligt 11 kap. 1 a § SoL och SOSFS 2014:5."),
    ("Stöd", "Stöd- eller krissamtal."),
    ("Tillsyn individ", "Personalen lämnade polisstationen för att träffa en person."),
    ("Transport egen", "Personalens egen resa."),
    ("Transport klient", "Personalen följde med en klient, t.ex. vid placering."),
    ("Uppföljning", None),
    ("Upplys/Hänvis", "Upplysning eller hänvisning."),
)
_CHARACTERS: tuple[str, ...] = (
    "Asylsökande",
    "Barn/Ungdom",
    "B/U missbruk eget",
    "B/U missbruk föräldrar",
    "B/U misshandel",
    "Boende",
    "Brand/Katastrof/dödsfall",
    "Ekonomi",
    "Våld i nära relationer",
    "Psykiska problem",
    "Vuxna missbruk",
    "Vårdnad/Umgänge",
    "Äldre/Funktionsnedsättning",
    "Relationsproblem",
)
_INITIATORS: tuple[str, ...] = (
    "Anhörig/privatperson",
    "Polisen",
    "Social enhet/myndighet",
    "Sökanden",
    "Vårdgivare",
)


def _entries(version: str) -> list[StandardEntry]:
    categories = _CATEGORIES_2016 if version == "2016" else _CATEGORIES_2017
    rows = [
        StandardEntry("category", version, slug(label), label, i, definition, child)
        for i, (label, definition, child) in enumerate(categories)
    ]
    rows += [
        StandardEntry("action", version, slug(label), label, i, definition)
        for i, (label, definition) in enumerate(_ACTIONS)
    ]
    rows += [
        StandardEntry("character", version, slug(label), label, i)
        for i, label in enumerate(_CHARACTERS)
    ]
    rows += [
        StandardEntry("initiator", version, slug(label), label, i)
        for i, label in enumerate(_INITIATORS)
    ]
    return rows


ENTRIES: tuple[StandardEntry, ...] = tuple(e for v in VERSIONS for e in _entries(v.version))

# Explicit mappings where a code changed; every other code maps to the same code.
_SPLITS: dict[tuple[str, str], tuple[str, ...]] = {
    ("category", "13_20_ar"): ("13_17_ar", "18_20_ar")
}


def _mappings() -> list[tuple[str, str, str, str, str]]:
    """(list, from_version, from_code, to_version, to_code) from 2016 to 2017."""
    later = {(e.list_name, e.code) for e in ENTRIES if e.version == "2017"}
    rows: list[tuple[str, str, str, str, str]] = []
    for e in ENTRIES:
        if e.version != "2016":
            continue
        targets = _SPLITS.get((e.list_name, e.code))
        if targets is None:
            assert (e.list_name, e.code) in later, e
            targets = (e.code,)
        rows += [(e.list_name, "2016", e.code, "2017", t) for t in targets]
    return rows


MAPPINGS: tuple[tuple[str, str, str, str, str], ...] = tuple(_mappings())
