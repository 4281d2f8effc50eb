"""Several real portal instances, each its own OS process (`jourpost serve`), sharing one
database, one object store and one set of keys: the scaled-out shape of a county-wide service.

    settings = shared_settings(tmp, database_url, s3_endpoint=..., ...)
    prepare(settings)                                    # migrate and seed the demo people
    with portal_processes(settings, tmp, count=2) as urls:
        ...

Every instance gets the same environment (keys, database, bucket) except its port, public URL
and data directory; only the first runs the periodic jobs. Each is started with
`--insecure-development` (plain http on loopback, the development identity provider), its output
goes to `<tmp>/portal<N>.log`, readiness is a 200 from `/readyz` (database and object store
answer), and it is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from portal.settings import Settings, load_settings
from tests.servers.net import free_port

READY_TIMEOUT = 60.0
"""Seconds an instance gets to answer /readyz with 200."""
STOP_TIMEOUT = 15.0
"""Seconds an instance gets after SIGTERM before it is killed."""


def _b64(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def shared_environment(data_dir: Path, database_url: str, **values: str) -> dict[str, str]:
    """The JOURPOST_* variables all instances share: fresh keys, the database, `values`
    (lower-case setting names, e.g. storage_backend="s3")."""
    env = {
        "JOURPOST_MODE": "development",
        "JOURPOST_DATABASE_URL": database_url,
        "JOURPOST_DATA_DIR": str(data_dir),
        "JOURPOST_DEV_IDP_ENABLED": "true",
        "JOURPOST_OIDC_CLIENT_SECRET": secrets.token_urlsafe(16),
        "JOURPOST_KEKS": f"k1:{_b64()}",
        "JOURPOST_CURRENT_KEK": "k1",
        "JOURPOST_BLIND_INDEX_KEY": _b64(),
        "JOURPOST_SECRET_KEY": _b64(),
    }
    env.update({f"JOURPOST_{name.upper()}": value for name, value in values.items()})
    return env


def settings_of(env: Mapping[str, str]) -> Settings:
    """The settings an instance started with `env` runs with (for sessions and checks)."""
    return load_settings(environ=env)


async def _prepare(settings: Settings) -> None:
    from portal.db import migrate
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.demo import seed
    from portal.pii import Vault

    engine = make_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
        async with make_sessionmaker(engine)() as db, db.begin():
            await seed(db, Vault(settings.keks, settings.current_kek, settings.blind_index_key))
    finally:
        await engine.dispose()


def prepare(env: Mapping[str, str]) -> None:
    """Migrate the shared database to head and seed the demo organisations and people."""
    asyncio.run(_prepare(settings_of(env)))


def _start(env: Mapping[str, str], index: int, logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = Path(env["JOURPOST_DATA_DIR"]) / f"instance{index}"
    data.mkdir(parents=True, exist_ok=True)
    own = {
        "JOURPOST_HOST": "127.0.0.1",
        "JOURPOST_PORT": str(port),
        "JOURPOST_PUBLIC_URL": url,
        "JOURPOST_DATA_DIR": str(data),
        "JOURPOST_RUN_PERIODIC_JOBS": "true" if index == 0 else "false",
        "PYTHONUNBUFFERED": "1",
    }
    jourpost = str(Path(sys.executable).parent / "jourpost")
    with (logs / f"portal{index}.log").open("wb") as log:
        proc = subprocess.Popen(
            [jourpost, "serve", "--insecure-development"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env, **own},
            start_new_session=True,
        )
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"portal at {url} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"portal at {url} not ready after {READY_TIMEOUT} s")
        time.sleep(0.2)


@contextmanager
def portal_processes(env: Mapping[str, str], logs: Path, count: int = 2) -> Iterator[list[str]]:
    """Start `count` instances at once (they race to create the bucket, as in production);
    yield their base URLs once all are ready; stop them by PID afterwards."""
    with ExitStack() as stack:
        started = []
        for index in range(count):
            proc, url = _start(env, index, logs)
            stack.callback(_stop, proc)
            started.append((proc, url, logs / f"portal{index}.log"))
        for proc, url, log in started:
            _wait_ready(proc, url, log)
        yield [url for _, url, _ in started]
