"""The real `jourpost demo` in a subprocess (optionally with its clock moved by libfaketime)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


@contextmanager
def running_demo(
    data: Path,
    port: int,
    *,
    faketime: str | None = None,
    jourpost: str | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`jourpost demo --data DATA --port PORT` until the block ends; yields its base URL.

    With `faketime` (a libfaketime offset such as "+1d") the whole process lives at that time.
    The demo gets its own process group (faketime runs it as a child: both must stop), and the
    port is checked to be free again before returning, so a next demo can't be answered by
    this one. Its output goes to data/../demo-<faketime or now>.log. `jourpost` is the command
    to run (default: the one beside this interpreter); `command` replaces `jourpost demo` (e.g.
    `bash infra/demo.sh`, which passes its arguments on), `env` adds to the environment.
    """
    jourpost = jourpost or str(Path(sys.executable).parent / "jourpost")
    argv = [*(command or [jourpost, "demo"]), "--data", str(data), "--port", str(port)]
    if faketime:
        argv = ["faketime", "-f", faketime, *argv]
    data.parent.mkdir(parents=True, exist_ok=True)
    log_path = data.parent / f"demo-{faketime or 'now'}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"jourpost demo exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("jourpost demo did not become ready in 90 s")
                time.sleep(0.3)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
            _wait_until_closed(url)


def _wait_until_closed(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
        except httpx.HTTPError:
            return
        time.sleep(0.2)
    pytest.fail(f"something still answers at {url} after the demo stopped")
