"""Counts on list pages are printed the Swedish way, a space between thousands ("1 055"): the
`num` filter (portal.paging.count_text) in the shared paging summary (_paging.html) and in the
retention plan's own summary and counts, rendered by the portal's own template engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.plugins.jinja import JinjaTemplateEngine

from portal import paging
from portal.app import _configure_jinja, _template_dirs
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (7, "7"),
        (999, "999"),
        (1000, "1 000"),
        (1055, "1 055"),
        (100000, "100 000"),
        (12345678, "12 345 678"),
    ],
)
def test_a_count_has_a_space_between_thousands(n: int, text: str) -> None:
    assert paging.count_text(n) == text


@pytest.fixture
def engine(tmp_path: Path) -> JinjaTemplateEngine:
    """The portal's template engine, configured as the app configures it."""
    engine = JinjaTemplateEngine(directory=_template_dirs())
    _configure_jinja(engine, make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x'}"))
    return engine


def _summary(engine: JinjaTemplateEngine, page: paging.Page[int], noun: str) -> str:
    template = engine.engine.from_string(
        '{% import "_paging.html" as paging %}{{ paging.summary(page, noun, id="holds-summary") }}'
    )
    return template.render(page=page, noun=noun)


def test_the_shared_summary_prints_thousands_with_a_space(engine: JinjaTemplateEngine) -> None:
    page = paging.Page(rows=list(range(50)), next_cursor="c", first=1001, total=1055)
    assert _summary(engine, page, "aktiva spärrar") == (
        '<p class="paging-summary" id="holds-summary">Visar 1 001–1 050 av 1 055 aktiva spärrar,'
        " nyaste först. Listan fortsätter på nästa sida.</p>"
    )
    first = paging.Page(rows=list(range(50)), next_cursor="c", first=1, total=999)
    assert "Visar 1–50 av 999 aktiva spärrar" in _summary(engine, first, "aktiva spärrar")
    uncounted = paging.Page(rows=list(range(3)), next_cursor=None, first=1201)
    assert "Visar 1 201–1 203 händelser, nyaste först." in _summary(engine, uncounted, "händelser")


def test_every_page_template_compiles_with_the_filters_it_uses(
    engine: JinjaTemplateEngine,
) -> None:
    """A filter the engine lacks fails a template's compilation: every template of the portal
    (those importing _paging.html among them) compiles with the app's configuration."""
    names = engine.engine.list_templates(extensions=["html"])
    users = [
        n for n in names if '"_paging.html"' in engine.engine.loader.get_source(engine.engine, n)[0]
    ]  # type: ignore[union-attr]
    assert len(users) >= 9, users
    for name in names:
        engine.engine.get_template(name)
