"""Statistics as shown: suppression applied, then rendered as page tables, SVG, CSV or XLSX.

Everything a viewer gets — page, chart, CSV, XLSX — is built from the same `View`, so a count
hidden on the page is hidden in the download and in the chart too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

from portal.stats.service import SUPPRESSED, Statistics, shown, suppress


@dataclass(frozen=True, slots=True)
class Cell:
    """One row of a shown table."""

    label: str
    """Swedish label."""
    text: str
    """The count as shown ("<5" when suppressed)."""
    value: int | None
    """The count for the chart (None when suppressed)."""


@dataclass(frozen=True, slots=True)
class ShownTable:
    """A table as shown."""

    name: str
    """Stable name."""
    caption: str
    """Swedish caption."""
    unit: str
    """What is counted."""
    cells: tuple[Cell, ...]
    """Rows."""
    total: str
    """The total as shown."""


@dataclass(frozen=True, slots=True)
class View:
    """Everything on the statistics page for one scope and period."""

    title: str
    """e.g. "Hudiksvall, Tertial 1 2017"."""
    suppressed: bool
    """True when small counts are hidden."""
    key_figures: tuple[tuple[str, str, str], ...]
    """(label, value, unit)."""
    municipalities: tuple[tuple[str, str, str, str, str], ...]
    """(name, cases, on call, hours, per 10,000)."""
    tables: tuple[ShownTable, ...]
    """Category, character, initiator, actions, decisions, Jourpost decisions."""
    quality: tuple[str, ...]
    """Data-quality warnings."""
    code_version: str
    """Code-list version of the tables."""


def _cells(labels: list[str], counts: list[int], threshold: int | None) -> tuple[Cell, ...]:
    texts = suppress(counts, threshold) if threshold else [str(n) for n in counts]
    return tuple(
        Cell(label, text, None if text == SUPPRESSED else n)
        for label, text, n in zip(labels, texts, counts, strict=True)
    )


def _number(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") if value % 1 else f"{int(value)}"


def view(stats: Statistics, threshold: int | None) -> View:
    """Apply suppression (when `threshold` is set) and format for Swedish readers."""
    figures = []
    for f in stats.key_figures:
        if f.value is None:
            text = "registreras inte"
        elif f.is_count:
            text = shown(int(f.value), threshold)
        else:
            text = _number(f.value)
        figures.append((f.label, text, "" if f.value is None else f.unit))

    munis = list(stats.municipalities)
    cases = suppress([m.cases for m in munis], threshold) if threshold else None
    on_call = suppress([m.on_call for m in munis], threshold) if threshold else None
    rows_m = []
    for i, m in enumerate(munis):
        c = cases[i] if cases else str(m.cases)
        rate = m.per_10000
        rows_m.append(
            (
                m.name,
                c,
                on_call[i] if on_call else str(m.on_call),
                _number(round(m.minutes / 60, 1)),
                "–" if rate is None or c == SUPPRESSED else _number(rate),
            )
        )

    tables = [
        ShownTable(
            t.name,
            t.caption,
            t.unit,
            _cells([r.label for r in t.rows], [r.count for r in t.rows], threshold),
            shown(t.total, threshold),
        )
        for t in stats.tables
    ]
    jp = stats.jourpost_decisions
    tables.append(
        ShownTable(
            "jourpost_decisions",
            "Ordförandebeslut upprättade i Jourpost",
            "beslut",
            _cells([r.label for r in jp], [r.count for r in jp], threshold),
            shown(sum(r.count for r in jp), threshold),
        )
    )
    police = stats.jourpost_police
    tables.append(
        ShownTable(
            "jourpost_police",
            "Handräckningar begärda i Jourpost",
            "begäranden",
            _cells([r.label for r in police], [r.count for r in police], threshold),
            shown(sum(r.count for r in police), threshold),
        )
    )
    return View(
        title=f"{stats.scope_name}, {stats.period.label}",
        suppressed=threshold is not None,
        key_figures=tuple(figures),
        municipalities=tuple(rows_m),
        tables=tuple(tables),
        quality=stats.quality,
        code_version=stats.code_version,
    )


def bar_chart(table: ShownTable, width: int = 320) -> str:
    """A horizontal bar chart as inline SVG (no script, no external resources).

    The same numbers are in the table beside it; the SVG has a title and a description for
    screen readers. Suppressed rows get no bar, only their "<5".
    """
    rows = [c for c in table.cells if c.value or c.text == SUPPRESSED]
    bar_h, gap, label_w, text_w = 18, 6, 130, 42
    height = max(1, len(rows)) * (bar_h + gap) + gap
    top = max((c.value or 0) for c in rows) if rows else 0
    scale = (width - label_w - text_w) / top if top else 0
    title = escape(table.caption)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="chart-{table.name}-t chart-{table.name}-d">',
        f'<title id="chart-{table.name}-t">{title}</title>',
        f'<desc id="chart-{table.name}-d">Stapeldiagram; samma siffror finns i tabellen.</desc>',
    ]
    for i, c in enumerate(rows):
        y = gap + i * (bar_h + gap)
        label = c.label if len(c.label) <= 20 else c.label[:19] + "…"
        w = round((c.value or 0) * scale)
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="11" fill="#1b1b1b">{escape(label)}</text>'
        )
        if c.value:
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{max(w, 1)}" height="{bar_h}" fill="#1f5c99"/>'
            )
        parts.append(
            f'<text x="{label_w + w + 4}" y="{y + 13}" font-size="11" fill="#1b1b1b">'
            f"{escape(c.text)}</text>"
        )
    if not rows:
        parts.append('<text x="0" y="14" font-size="11" fill="#1b1b1b">Inga ärenden</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_csv(v: View) -> str:
    """Semicolon-separated (Swedish Excel's default), one section per table."""
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow([v.title])
    if v.suppressed:
        w.writerow(["Antal under 5 visas som <5."])
    w.writerow([])
    w.writerow(["Nyckeltal", "Värde", "Enhet"])
    w.writerows(v.key_figures)
    w.writerow([])
    w.writerow(["Kommun", "Ärenden", "Under beredskap", "Timmar", "Per 10 000 invånare"])
    w.writerows(v.municipalities)
    for t in v.tables:
        w.writerow([])
        w.writerow([t.caption, f"Antal {t.unit}"])
        w.writerows((c.label, c.text) for c in t.cells)
        w.writerow(["Summa", t.total])
    if v.quality:
        w.writerow([])
        w.writerow(["Datakvalitet"])
        w.writerows([q] for q in v.quality)
    return out.getvalue()


def _cell_value(text: str) -> int | float | str:
    """Numbers as numbers in the spreadsheet, "<5" and labels as text."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return text


def to_xlsx(v: View) -> bytes:
    """One workbook, one sheet per table (openpyxl)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Nyckeltal"
    ws.append([v.title])
    if v.suppressed:
        ws.append(["Antal under 5 visas som <5."])
    ws.append(["Nyckeltal", "Värde", "Enhet"])
    for label, value, unit in v.key_figures:
        ws.append([label, _cell_value(value), unit])
    wm = wb.create_sheet("Kommuner")
    wm.append(["Kommun", "Ärenden", "Under beredskap", "Timmar", "Per 10 000 invånare"])
    for row in v.municipalities:
        wm.append([row[0], *(_cell_value(x) for x in row[1:])])
    for t in v.tables:
        sheet = wb.create_sheet(t.caption[:31].replace("/", "-"))
        sheet.append([t.caption, f"Antal {t.unit}"])
        for c in t.cells:
            sheet.append([c.label, _cell_value(c.text)])
        sheet.append(["Summa", _cell_value(t.total)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
