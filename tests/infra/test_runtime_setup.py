"""README command 1 needs only the runtime: `infra/setup.sh --runtime` (what `infra/demo.sh`
runs) makes a virtualenv without the test tools, and `jourpost demo` runs from it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.servers.demo import running_demo
from tests.servers.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_from_a_runtime_only_setup(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    setup = subprocess.run(
        ["bash", "infra/setup.sh", "--runtime"],
        cwd=ROOT,
        env={**os.environ, "JOURPOST_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert setup.returncode == 0, setup.stderr[-2000:]
    assert setup.stdout.strip().endswith("setup: ready (runtime)")
    # No test tooling: no pytest, no browser driver, no E-ARK validator, no node packages run.
    for module in ("pytest", "playwright", "hypothesis", "schemathesis"):
        probe = subprocess.run([venv / "bin" / "python", "-c", f"import {module}"], check=False)
        assert probe.returncode != 0, module
    assert not (venv / "eark-validator").exists()

    # README command 1 itself, `bash infra/demo.sh`, on that virtualenv: its setup finds
    # nothing to install (a full setup would add the test tools), and the demo starts.
    data = tmp_path / "data"
    with running_demo(
        data,
        free_port(),
        command=["bash", str(ROOT / "infra" / "demo.sh")],
        env={"JOURPOST_VENV": str(venv)},
    ) as url:
        start = httpx.get(f"{url}/", timeout=10)
        assert start.status_code == 200 and "Logga in med e-legitimation" in start.text
        assert httpx.get(f"{url}/readyz", timeout=10).json()["status"] == "ok"
        assert httpx.get(f"{url}/dev-mail", timeout=10).status_code == 200
    log = (data.parent / "demo-now.log").read_text()
    assert "setup: ready (runtime)" in log, log[-2000:]
    for module in ("pytest", "playwright"):
        probe = subprocess.run([venv / "bin" / "python", "-c", f"import {module}"], check=False)
        assert probe.returncode != 0, module
