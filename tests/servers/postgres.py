"""A private PostgreSQL server for fault tests: stop it, start it again, freeze it (SIGSTOP).

    with private_postgres() as pg:
        url = pg.url("postgres")   # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()      # a real outage and recovery, same port and data
        with pg.frozen(): ...      # every server process stopped by SIGSTOP, then SIGCONT

The shared server on 5432 is never touched. `initdb` and `postgres` come from
/usr/lib/postgresql/15/bin (Debian `postgresql-15`). PostgreSQL refuses to run as root, so under
root the server runs as the `postgres` system user (`Popen(user=...)`) in a data directory it
owns. Freezing stops the postmaster and then every process it forked (PostgreSQL puts each
backend in a session of its own, so a process group would not reach them): a frozen machine,
not a frozen listener. Every signal goes to a PID this helper started or its server forked.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.net import free_port

BIN = Path(os.environ.get("JOURPOST_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
"""Directory of the PostgreSQL server binaries."""
START_TIMEOUT = 30.0
"""Seconds to wait for the server to accept connections."""
STOP_TIMEOUT = 30.0
"""Seconds to wait for a fast shutdown before killing the server."""


def missing_reason() -> str | None:
    """Why a private server can't run here, or None."""
    for tool in ("initdb", "postgres"):
        if not (BIN / tool).is_file():
            return f"{BIN / tool} not found (Debian package postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


class PrivatePostgres:
    """One PostgreSQL server on 127.0.0.1:`port` with its data in `root` (trust auth)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        """Temporary directory: data/, sockets/ and server.log."""
        self.port = port
        """TCP port on 127.0.0.1 (kept across restarts)."""
        self.proc: subprocess.Popen[bytes] | None = None
        """The running postmaster, or None while stopped."""
        self._frozen = False
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of `database` on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (trust auth for the `postgres` role, UTF-8)."""
        sockets = self.root / "sockets"
        sockets.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self._user,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert self.proc is None, "already running"
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.root / 'sockets'}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=60",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=self._user,
            start_new_session=True,  # a Ctrl-C in pytest must not reach it before cleanup
        )
        log.close()
        self._wait_accepting()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are disconnected); kill if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self.thaw()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for pid in [proc.pid, *_children(proc.pid)]:
                    _signal(pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers."""
        assert self.proc is not None, "not running"
        # The postmaster first, so it forks nothing new while its children are being stopped.
        _signal(self.proc.pid, signal.SIGSTOP)
        for pid in _children(self.proc.pid):
            _signal(pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        if self._frozen and self.proc is not None:
            for pid in [*_children(self.proc.pid), self.proc.pid]:
                _signal(pid, signal.SIGCONT)
        self._frozen = False

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Frozen inside the block, running again after it (also on failure)."""
        self.freeze()
        try:
            yield
        finally:
            self.thaw()

    def _wait_accepting(self) -> None:
        # "Accepting" means a startup packet gets an answer, not merely an open port: the
        # postmaster listens before recovery ends. Ask over the socket as pg_isready would.
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        result = subprocess.run(
            [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def log(self) -> str:
        """The tail of the server log."""
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _children(parent: int) -> list[int]:
    """PIDs whose parent is `parent` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile
        os.kill(pid, sig)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh private server, running; stopped (thawed first) and removed afterwards."""
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="jourpost-pg-"))
    server = PrivatePostgres(root, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # manual check: python -m tests.servers.postgres
    started = time.monotonic()
    with private_postgres() as pg:
        print(pg.url(), f"ready in {time.monotonic() - started:.1f} s")
        pg.stop()
        pg.start()
        print("restarted")
