"""Read HTML forms the way a browser submits them (for HTTP-level journeys without a browser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin


@dataclass
class Form:
    """One <form>: where it posts and the values it would send."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    submit_names: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "button") and a.get("name"):
            kind = a.get("type", "submit" if tag == "button" else "text")
            if kind == "submit":
                self._current.submit_names.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._current.fields[a["name"]] = a.get("value", "on")
            else:
                self._current.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str, base_url: str) -> list[Form]:
    """Every form in `html`, with actions resolved against `base_url`."""
    parser = _FormParser()
    parser.feed(html)
    for f in parser.forms:
        f.action = urljoin(base_url, f.action or base_url)
    return parser.forms


def form_with_field(html: str, base_url: str, name: str) -> Form:
    """The form that has an input called `name`."""
    for f in forms(html, base_url):
        if name in f.fields:
            return f
    raise LookupError(f"no form with a field {name!r}")
