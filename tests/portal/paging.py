"""Walking keyset-paged lists (portal/paging.py) in tests: the API's Link headers and the pages'
"Nästa sida" links."""

from __future__ import annotations

import re
from typing import Any

import httpx


def walk(
    client: httpx.Client, path: str, params: dict[str, Any], key: str = "id"
) -> tuple[list[str], list[int], str | None]:
    """Follow the API's `Link: rel="next"` from the first page: every row's `key` in order, the
    size of each page and the `X-Total-Count` of the last one."""
    ids: list[str] = []
    sizes: list[int] = []
    url: str | None = path
    query: dict[str, Any] | None = params
    total: str | None = None
    while url:
        r = client.get(url, params=query)
        assert r.status_code == 200, r.text
        total = r.headers.get("x-total-count")
        ids += [str(row[key]) for row in r.json()]
        sizes.append(len(r.json()))
        link = r.headers.get("link")
        found = re.match(r'<([^>]+)>; rel="next"', link) if link else None
        url, query = (found.group(1), None) if found else (None, None)
    return ids, sizes, total


def next_href(html: str) -> str | None:
    """The page's "Nästa sida" link (unescaped), None on the last page."""
    found = re.search(r'<a class="button" rel="next" href="([^"]+)">Nästa sida</a>', html)
    return found.group(1).replace("&amp;", "&") if found else None


def summary(html: str) -> str:
    """The page's "Visar 1–50 av …" line."""
    found = re.search(r'<p class="paging-summary"[^>]*>([^<]*)</p>', html)
    assert found is not None, "no paging summary on the page"
    return found.group(1)


def walk_pages(client: httpx.Client, path: str, row: str) -> tuple[list[str], list[str]]:
    """Follow "Nästa sida" from `path`: the ids the regex `row` finds on each page, in order,
    and each page's summary line."""
    ids: list[str] = []
    lines: list[str] = []
    url: str | None = path
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        ids += re.findall(row, r.text)
        lines.append(summary(r.text))
        url = next_href(r.text)
    return ids, lines
