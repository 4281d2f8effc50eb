"""What every journey step checks: axe-core (WCAG 2.1 A/AA), lang, width, focus; a screenshot."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import ARTIFACTS, AXE, WCAG_TAGS

WIDTH = 360
PHONE = {"viewport": {"width": WIDTH, "height": 740}, "is_mobile": True, "has_touch": True}
NARROW = {"viewport": {"width": WIDTH, "height": 800}}


def new_page(browser: Any, *, phone: bool = False, javascript: bool = True) -> Any:
    """A fresh context (own cookies) with axe-core injected into every document.

    axe is added as an init script (CDP Page.addScriptToEvaluateOnNewDocument), which the page's
    Content-Security-Policy does not apply to, so the portal's CSP stays on during the tests.
    """
    ctx = browser.new_context(
        locale="sv-SE",
        timezone_id="Europe/Stockholm",
        java_script_enabled=javascript,
        accept_downloads=True,
        **(PHONE if phone else NARROW),
    )
    if javascript:
        ctx.add_init_script(path=str(AXE))
    return ctx.new_page()


def login(page: Any, base: str, pnr: str) -> None:
    """Through the dev identity provider's page, as a person would."""
    page.goto(f"{base}/auth/login")
    page.get_by_label("Personnummer (12 siffror, ÅÅÅÅMMDDNNNN)").fill(pnr)
    page.get_by_role("button", name="Logga in", exact=True).click()
    page.wait_for_url(f"{base}/**")
    assert "Logga ut" in page.content()


def check(page: Any, name: str, *, width: int | None = WIDTH) -> None:
    """Screenshot, then: no axe violations, lang="sv", no horizontal scrolling at 360 px.

    Every journey runs at 360 px (a phone, or a narrow window in a police building): what works
    there works wider; tables scroll inside their own box, never the page."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.lang") == "sv", name
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_TAGS,
    )
    violations = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]
    assert not violations, f"{name}: {json.dumps(violations, ensure_ascii=False, indent=1)}"
    if width is not None:
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:  # name the widest offenders, so the fix is not a guess
            wide = page.evaluate(
                """w => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > w)
                    .filter(e => !e.parentElement.closest('.table-wrap'))
                    .slice(0, 5)
                    .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' '
                         + Math.round(e.getBoundingClientRect().right))""",
                width,
            )
            raise AssertionError(f"{name}: page is {scroll} px wide at {width} px: {wide}")


def focus_is_visible(page: Any) -> bool:
    """The focused element draws an outline or a box shadow."""
    style = page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                  return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"""
    )
    outline_style, outline_width, shadow = style
    return (outline_style != "none" and outline_width not in ("0px", "")) or shadow != "none"


def tab_to(page: Any, predicate_js: str, *, limit: int = 60) -> None:
    """Press Tab until `predicate_js(document.activeElement)` holds (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(({predicate_js}))(document.activeElement)"):
            assert focus_is_visible(page), "focused element has no visible focus indicator"
            return
    raise AssertionError(f"never reached an element matching {predicate_js}")
