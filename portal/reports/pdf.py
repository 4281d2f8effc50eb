"""The report as a PDF/A-2b file, for "Annan kommun" reports sent by other means."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import jinja2

from portal.reports.content import local_time
from portal.reports.schemas import ReportOut
from signing.render import render_pdfa

_TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True, auto_reload=False
    )


def file_name(report: ReportOut) -> str:
    """A file name without personal data: the report's opaque id only."""
    return f"handelserapport-{report.id.hex[:12]}.pdf"


def render_html(report: ReportOut) -> str:
    """The printable HTML of the report (Swedish, times in Swedish local time)."""
    return _env().get_template("reports/pdf.html").render(r=report, fmt=local_time)


async def render(report: ReportOut) -> bytes:
    """PDF/A-2b bytes; WeasyPrint is CPU-bound, so it runs in a worker thread."""
    html = render_html(report)
    return await asyncio.to_thread(render_pdfa, html)
