"""Reporting periods: tertial, quarter and year, with boundaries at midnight Stockholm time.

A period is named by a key that is safe in a URL (no personal data): "2017" (year),
"2017-T2" (second tertial, May–August), "2017-K3" (third quarter, July–September).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from portal.errors import InvalidInput
from portal.timefmt import STOCKHOLM

KINDS = {"year": "Helår", "tertial": "Tertial", "quarter": "Kvartal"}
_MONTHS = {"year": 12, "tertial": 4, "quarter": 3}
_LETTER = {"tertial": "T", "quarter": "K"}
_KEY = re.compile(r"^(\d{4})(?:-([TK])([1-4]))?$")


@dataclass(frozen=True, slots=True)
class Period:
    """One reporting period."""

    kind: str
    """year | tertial | quarter."""
    year: int
    """Calendar year."""
    number: int = 1
    """1-based index within the year (1 for a year)."""

    @property
    def key(self) -> str:
        """ "2017", "2017-T2", "2017-K3"."""
        if self.kind == "year":
            return str(self.year)
        return f"{self.year}-{_LETTER[self.kind]}{self.number}"

    @property
    def label(self) -> str:
        """Swedish: "Helår 2017", "Tertial 2 2017", "Kvartal 3 2017"."""
        if self.kind == "year":
            return f"Helår {self.year}"
        return f"{KINDS[self.kind]} {self.number} {self.year}"

    @property
    def months(self) -> int:
        """Length in months."""
        return _MONTHS[self.kind]

    @property
    def start(self) -> datetime:
        """First instant (UTC) — midnight Stockholm time on the first day."""
        month = 1 + (self.number - 1) * self.months
        return datetime(self.year, month, 1, tzinfo=STOCKHOLM).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """First instant (UTC) after the period."""
        month = 1 + self.number * self.months
        year = self.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        return datetime(year, month, 1, tzinfo=STOCKHOLM).astimezone(UTC)

    def contains(self, when: datetime) -> bool:
        """True when `when` falls in the period."""
        return self.start <= when < self.end


def parse(key: str) -> Period:
    """The period named by `key`; InvalidInput with a Swedish message otherwise."""
    m = _KEY.match(key.strip())
    if not m:
        raise InvalidInput(errors={"period": "Ange en period som 2017, 2017-T2 eller 2017-K3."})
    year, letter, number = int(m.group(1)), m.group(2), m.group(3)
    if not 2000 <= year <= 2100:
        raise InvalidInput(errors={"period": "Året ligger utanför det som går att visa."})
    if letter is None:
        return Period("year", year)
    kind = "tertial" if letter == "T" else "quarter"
    n = int(number)
    if kind == "tertial" and n > 3:
        raise InvalidInput(errors={"period": "Ett år har tre tertial."})
    return Period(kind, year, n)


def of_kind(kind: str, when: datetime) -> Period:
    """The period of `kind` that contains `when`."""
    local = when.astimezone(STOCKHOLM)
    if kind == "year":
        return Period("year", local.year)
    return Period(kind, local.year, (local.month - 1) // _MONTHS[kind] + 1)


def recent(kind: str, now: datetime, count: int) -> list[Period]:
    """The `count` periods of `kind` ending with the one containing `now`, newest first."""
    out = [of_kind(kind, now)]
    while len(out) < count:
        p = out[-1]
        if p.kind == "year":
            out.append(Period("year", p.year - 1))
        elif p.number > 1:
            out.append(Period(p.kind, p.year, p.number - 1))
        else:
            out.append(Period(p.kind, p.year - 1, 12 // p.months))
    return out
