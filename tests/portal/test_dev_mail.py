"""The demo's mailbox: what Jourpost would have e-mailed, at /dev-mail (demo mode only)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.portal.advisories.helpers import HANNA, body
from tests.portal.conftest import RunningPortal, prepare_database
from tests.portal.sessions import client_as
from tests.servers.portal import serve


@pytest.fixture
def demo_portal(tmp_path: Path) -> Iterator[RunningPortal]:
    from portal.app import create_app

    holder: dict[str, Any] = {}

    def factory(port: int) -> object:
        settings = make_settings(
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}",
            mode="demo",
            public_url=f"http://127.0.0.1:{port}",
        )
        asyncio.run(prepare_database(settings))
        holder["settings"], holder["app"] = settings, create_app(settings)
        return holder["app"]

    with serve(factory) as url:
        yield RunningPortal(url, holder["settings"], holder["app"])


def test_the_demo_shows_the_mail_it_would_have_sent(demo_portal: RunningPortal) -> None:
    empty = httpx.get(f"{demo_portal.url}/dev-mail")
    assert empty.status_code == 200 and "Inga meddelanden ännu" in empty.text

    hanna = client_as(demo_portal.url, demo_portal.settings, HANNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]
    box = httpx.get(f"{demo_portal.url}/dev-mail")
    assert box.status_code == 200
    assert "Det finns en ny eller ändrad avisering till socialjouren" in box.text
    links = re.findall(r'<a class="button secondary" href="([^"]+)">Öppna länken</a>', box.text)
    assert f"{demo_portal.url}/advisories/{aid}" in links
    # Generic notices only: the plan and the person never reach a mail.
    assert "Kalle Klient" not in box.text and "morbror" not in box.text


def test_no_mailbox_outside_the_demo(portal: RunningPortal) -> None:
    assert httpx.get(f"{portal.url}/dev-mail").status_code == 404
