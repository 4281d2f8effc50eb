"""Browser journeys: the real `jourpost demo` in a subprocess, Debian's Chromium via Playwright.

No browser is downloaded: Chromium is the Debian package (infra/install-system-deps.sh) and axe-core
comes from tests/e2e/package-lock.json (`npm ci` in infra/setup.sh). A missing Chromium or axe-core
fails the tests; nothing is skipped. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.demo import running_demo
from tests.servers.net import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Demo:
    """The running demo."""

    url: str
    """Base URL."""
    data: Path
    """Its data directory (the dev CA's root is in data/pki/root.pem)."""
    jourpost: str
    """The `jourpost` command of this venv."""


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo") / "data"
    jourpost = str(Path(sys.executable).parent / "jourpost")
    _demo_secrets(data)
    with running_demo(data, free_port()) as url:
        yield Demo(url, data, jourpost)


def _demo_secrets(data: Path) -> None:
    """The demo's secrets file written beforehand (`jourpost demo` writes it only when missing),
    with one setting more: the journeys log their people in from one address (127.0.0.1), more
    than the default 30 login starts a minute (JOURPOST_LOGIN_START_LIMIT); the limit itself is
    tested in tests/portal/test_logout.py."""

    def b64() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    data.mkdir(parents=True, exist_ok=True)
    path = data / "secrets.toml"
    path.write_text(
        f'keks = {{ demo1 = "{b64()}" }}\ncurrent_kek = "demo1"\nblind_index_key = "{b64()}"\n'
        f'secret_key = "{b64()}"\noidc_client_secret = "{secrets.token_urlsafe(24)}"\n'
        "login_start_limit = 1000\n"
    )
    path.chmod(0o600)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Module scope, not session: Playwright's sync API keeps an
    event loop running in this thread while it is open, and later tests call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian chromium is missing: run infra/install-system-deps.sh")
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `npm ci` in tests/e2e (infra/setup.sh does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
