"""Run the independent OpenID Provider (npm `oidc-provider`) on a free loopback port.

Its dependencies must already be installed (`npm ci --prefix tests/servers/oidc_provider`, which
CI does); this helper never installs anything and fails with that instruction when they are
missing. The provider is started with node, polled until discovery answers, and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers.net import free_port

PROJECT = Path(__file__).parent / "oidc_provider"
SCRIPT = PROJECT / "provider.mjs"


@dataclass(frozen=True)
class OidcProvider:
    """A running provider."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    pid: int


def missing_reason() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (PROJECT / "node_modules" / "oidc-provider").is_dir():
        return f"node_modules missing: run `npm ci --prefix {PROJECT.relative_to(Path.cwd())}`"
    return None


@contextmanager
def running_oidc_provider(
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    user_pnr: str = "197803129829",
    acr: str | None = None,
    claims_in_id_token: bool = False,
    post_logout_redirect_uri: str | None = None,
    login_form: bool = False,
    timeout: float = 30.0,
) -> Iterator[OidcProvider]:
    """Start the provider; `acr` overrides the level it claims (to misbehave on purpose).

    `post_logout_redirect_uri` registers it for the client (RP-initiated logout); with
    `login_form` a login shows a form (field `personal_identity_number`) instead of logging the
    test user in at once, so a test sees whether the provider asked for an authentication.
    """
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(f"cannot start oidc-provider: {reason}")
    node = shutil.which("node")
    assert node is not None
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OP_PORT": str(port),
        "OP_ISSUER": issuer,
        "OP_CLIENT_ID": client_id,
        "OP_CLIENT_SECRET": client_secret,
        "OP_REDIRECT_URI": redirect_uri,
        "OP_USER_PNR": user_pnr,
        "OP_CLAIMS_IN_ID_TOKEN": "1" if claims_in_id_token else "0",
        "NODE_ENV": "test",
    }
    if acr is not None:
        env["OP_ACR"] = acr
    if post_logout_redirect_uri is not None:
        env["OP_POST_LOGOUT_REDIRECT_URI"] = post_logout_redirect_uri
    if login_form:
        env["OP_LOGIN_FORM"] = "1"
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe blocks node
        proc = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"oidc-provider exited with {proc.returncode}:\n{output}")
                try:
                    if httpx.get(
                        f"{issuer}/.well-known/openid-configuration", timeout=1
                    ).is_success:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"oidc-provider did not answer on {issuer}")
                time.sleep(0.1)
            yield OidcProvider(issuer, client_id, client_secret, redirect_uri, proc.pid)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
