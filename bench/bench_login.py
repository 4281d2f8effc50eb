"""Login round trip and authenticated-page throughput, against the demo portal.

Prints, in one run:
- login round trip (GET /auth/login → dev IdP form → POST → /auth/callback → start page)
  p50/p95 over N logins one after the other, and p50/p95 with 20 logins at once (20 client
  threads, each logging in again and again; same number of logins);
- the portal process's CPU time per login (user + system, from /proc: it moves much less with
  the machine's load than the milliseconds do; the dev IdP runs in the same process, so its
  share is included), also for the login alone without the start page it lands on;
- requests/s (measured with wrk) of the authenticated start page and of a bare Litestar "hello"
  route served by the same process, and their ratio.

The portal runs in its own process (uvicorn, one worker, the demo's data) so the client does
not share its interpreter: on SQLite (default) or, with `--db postgres`, in a fresh database on
the PostgreSQL server at 127.0.0.1:5432 (dropped afterwards).

`--throughput-only` skips the logins and measures, `--pairs` times, the jour worker's start page
(the night dashboard), the handler's start page and the hello route, and prints the SQL
statements each start page executes. With `--baseline DIR` (a checkout of another commit, e.g.
`git archive main | tar -x -C DIR`) a second portal runs that code on its own copy of the demo
data, and the runs alternate between the two (A B, B A, ...) so both see the same machine load.

Usage:
.venv/bin/python bench/bench_login.py [--logins 200] [--seconds 8] [--concurrent-logins 20]
    [--db sqlite|postgres] [--throughput-only [--pairs 3] [--baseline DIR]]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.portal.login import login
from tests.servers.net import free_port

JONNA = "197803129829"  # jour staff, Socialjouren Gävleborg: the night dashboard
HANNA = "196901159803"  # handler, Hudiksvall: the start page without a dashboard


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("portal exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("portal did not start")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wrk(url: str, cookie: str, seconds: float, conc: int) -> float:
    """Requests/s measured by wrk (a C load generator: the client is not the bottleneck)."""
    return _wrk_counted(url, cookie, seconds, conc)[0]


def _wrk_counted(url: str, cookie: str, seconds: float, conc: int) -> tuple[float, int]:
    """Requests/s measured by wrk, and how many requests it completed."""
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{seconds:.0f}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30)
    if "Non-2xx" in out.stdout:
        raise SystemExit(f"{url}: non-2xx answers under load:\n{out.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    count = re.search(r"(\d+) requests in", out.stdout)
    if match is None or count is None:
        raise SystemExit(f"cannot read wrk output:\n{out.stdout}")
    return float(match.group(1)), int(count.group(1))


def _round_trip(url: str) -> float:
    """One login and the start page it lands on, in milliseconds."""
    t0 = time.perf_counter()
    client, callback = login(url, JONNA)
    try:
        start_page = client.get(callback.headers["location"])
        elapsed = (time.perf_counter() - t0) * 1000
    finally:
        client.close()
    assert start_page.status_code == 200 and "Välkommen" in start_page.text
    return elapsed


def _concurrent(url: str, logins: int, workers: int) -> list[float]:
    """`logins` round trips by `workers` clients at once."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: _round_trip(url), range(logins)))


PG = "postgresql://postgres@127.0.0.1:5432"


def _login_only(url: str) -> None:
    """One login without loading the start page it redirects to (the login path alone)."""
    client, callback = login(url, JONNA)
    client.close()
    assert callback.status_code in (302, 303) and "jp_session" in callback.cookies


@contextlib.contextmanager
def _portal(db: str, code: Path | None = None) -> Iterator[Portal]:
    """A demo portal process (with the hello route) on `db`, running the code in `code` (default:
    this checkout)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        argv = [
            sys.executable,
            str(Path(__file__).with_name("_portal_with_hello.py")),
            tmp,
            str(port),
        ]
        name = ""
        if db == "postgres":
            name = f"jourpost_bench_login_{secrets.token_hex(4)}"
            subprocess.run(
                ["psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True
            )
            stack.callback(
                subprocess.run,
                ["psql", f"{PG}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                check=False,
            )
            argv.append(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        env = dict(os.environ)
        if code is not None:  # its packages first on the path (before the editable install)
            env["PYTHONPATH"] = str(code.resolve())
        # The portal's log (an access line per request) goes to a file, not the terminal.
        log = stack.enter_context(open(Path(tmp) / "portal.log", "wb"))
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(proc.wait, 10)
        stack.callback(proc.terminate)
        try:
            _wait(url, proc)
        except SystemExit:
            print((Path(tmp) / "portal.log").read_text()[-3000:], file=sys.stderr)
            raise
        yield Portal(url, proc.pid, name)


@dataclasses.dataclass(frozen=True)
class Portal:
    """A running bench portal."""

    url: str
    pid: int
    database: str
    """The PostgreSQL database's name ("" on SQLite)."""


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _backends(portal: Portal) -> list[int]:
    """The PostgreSQL server processes serving the portal's connections."""
    if not portal.database:
        return []
    out = subprocess.run(
        ["psql", f"{PG}/postgres", "-At", "-v", f"db={portal.database}"],
        input="SELECT pid FROM pg_stat_activity WHERE datname = :'db';",
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [int(line) for line in out.split()]


def _measure(portal: Portal, path: str, cookie: str, args: argparse.Namespace) -> Measure:
    """wrk on `path`, with the CPU the portal process and its database backends used."""
    backends = _backends(portal)
    before = _cpu_seconds([portal.pid]), _cpu_seconds(backends)
    rps, requests = _wrk_counted(f"{portal.url}{path}", cookie, args.seconds, args.concurrency)
    after = _cpu_seconds([portal.pid]), _cpu_seconds(backends)
    return Measure(
        rps,
        (after[0] - before[0]) * 1000 / requests,
        (after[1] - before[1]) * 1000 / requests,
    )


@dataclasses.dataclass(frozen=True)
class Measure:
    """One wrk run."""

    rps: float
    portal_cpu_ms: float
    """CPU milliseconds per request in the portal process."""
    db_cpu_ms: float
    """CPU milliseconds per request in the PostgreSQL backends (0 on SQLite: in process)."""


def _cookie(url: str, personnummer: str) -> str:
    client, _ = login(url, personnummer)
    try:
        return f"jp_session={client.cookies['jp_session']}"
    finally:
        client.close()


def _statements(url: str, cookie: str) -> int:
    """The SQL statements one GET of the start page executes (the portal process counts them)."""
    httpx.get(f"{url}/bench/sql")
    page = httpx.get(f"{url}/", headers={"Cookie": cookie})
    assert page.status_code == 200 and "Välkommen" in page.text, page.status_code
    count: int = httpx.get(f"{url}/bench/sql").json()["count"]
    return count


def _throughput(args: argparse.Namespace) -> None:
    """Start pages and hello, alternating between this code and `--baseline` (if given)."""
    codes: list[tuple[str, Path | None]] = [("this checkout", None)]
    if args.baseline:
        codes.insert(0, ("baseline", Path(args.baseline)))
    with contextlib.ExitStack() as stack:
        portals = []
        for label, code in codes:
            portal = stack.enter_context(_portal(args.db, code))
            jour, handler = _cookie(portal.url, JONNA), _cookie(portal.url, HANNA)
            httpx.get(f"{portal.url}/", headers={"Cookie": jour})  # warm up: templates
            counts = (_statements(portal.url, jour), _statements(portal.url, handler))
            # Open the pool's connections before the CPU of their backends is counted.
            _wrk_counted(f"{portal.url}/", jour, 2, args.concurrency)
            portals.append((label, portal, jour, handler, counts))
        print(
            f"database: {args.db}; wrk, {args.concurrency} connections, {args.seconds:.0f} s each;"
            " CPU ms per request: portal process + database backends"
        )
        for label, _, _, _, (jour_n, handler_n) in portals:
            print(f"  {label}: SQL statements per start page: jour {jour_n}, handler {handler_n}")
        rows: list[tuple[str, Measure, Measure, Measure]] = []
        for pair in range(args.pairs):
            order = portals if pair % 2 == 0 else portals[::-1]
            for label, portal, jour, handler, _ in order:
                load = os.getloadavg()[0]
                page = _measure(portal, "/", jour, args)
                other = _measure(portal, "/", handler, args)
                hello = _measure(portal, "/bench/hello", "", args)
                rows.append((label, page, other, hello))
                print(
                    f"  pair {pair + 1} {label:14} load {load:4.1f}  req/s jour {page.rps:5.0f}"
                    f"  handler {other.rps:5.0f}  hello {hello.rps:5.0f}"
                    f"  ratios {page.rps / hello.rps:.3f} {other.rps / hello.rps:.3f}"
                    f"  CPU ms jour {page.portal_cpu_ms:.2f}+{page.db_cpu_ms:.2f}"
                    f" handler {other.portal_cpu_ms:.2f}+{other.db_cpu_ms:.2f}"
                    f" hello {hello.portal_cpu_ms:.2f}",
                    flush=True,
                )
        for label, *_ in portals:
            mine = [r for r in rows if r[0] == label]

            def med(values: Iterator[float]) -> float:
                return statistics.median(list(values))

            print(
                f"  median {label:14} jour / hello {med(r[1].rps / r[3].rps for r in mine):.3f}"
                f"  handler / hello {med(r[2].rps / r[3].rps for r in mine):.3f};"
                f"  CPU ms per request jour {med(r[1].portal_cpu_ms for r in mine):.2f}"
                f" + db {med(r[1].db_cpu_ms for r in mine):.2f},"
                f" handler {med(r[2].portal_cpu_ms for r in mine):.2f}"
                f" + db {med(r[2].db_cpu_ms for r in mine):.2f},"
                f" hello {med(r[3].portal_cpu_ms for r in mine):.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--concurrent-logins", type=int, default=20)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--baseline", help="a source tree to compare with (--throughput-only)")
    args = parser.parse_args()
    if args.throughput_only:
        _throughput(args)
        return

    with _portal(args.db) as portal:
        url, pid = portal.url, portal.pid
        login(url, JONNA)  # warm up: discovery, JWKS, templates
        load = os.getloadavg()[0]
        cpu_login = _cpu_seconds([pid])
        for _ in range(args.logins):
            _login_only(url)
        cpu0 = _cpu_seconds([pid])
        times = [_round_trip(url) for _ in range(args.logins)]
        cpu1 = _cpu_seconds([pid])
        t0 = time.perf_counter()
        together = _concurrent(url, args.logins, args.concurrent_logins)
        together_s = time.perf_counter() - t0
        cpu2 = _cpu_seconds([pid])
        cookie = _cookie(url, JONNA)
        page_rps = _wrk(f"{url}/", cookie, args.seconds, args.concurrency)
        hello_rps = _wrk(f"{url}/bench/hello", "", args.seconds, args.concurrency)

    print(f"load average at the start: {load:.2f}; after: {os.getloadavg()[0]:.2f}")
    print(f"login round trip over {args.logins} logins (start → dev IdP → callback → start page):")
    print(
        f"  p50 {statistics.median(times):7.1f} ms   p95 {_percentile(times, 0.95):7.1f} ms"
        f"   portal CPU {1000 * (cpu1 - cpu0) / args.logins:.1f} ms per login"
    )
    print(
        f"  the login alone (start → dev IdP → callback, no start page, {args.logins} more):"
        f" portal CPU {1000 * (cpu0 - cpu_login) / args.logins:.1f} ms per login"
    )
    print(
        f"the same {args.logins} logins, {args.concurrent_logins} at once "
        f"({args.logins / together_s:.1f} logins/s):"
    )
    p95_together = _percentile(together, 0.95)
    print(
        f"  p50 {statistics.median(together):7.1f} ms   p95 {p95_together:7.1f} ms"
        f"   ratio p95 / one-at-a-time p50 {p95_together / statistics.median(times):.1f}"
        f"   portal CPU {1000 * (cpu2 - cpu1) / args.logins:.1f} ms per login"
    )
    print(
        f"throughput (wrk, {args.concurrency} connections, {args.seconds:.0f} s each, one process,"
        f" {args.db}):"
    )
    print(f"  authenticated start page  {page_rps:8.0f} req/s")
    print(f"  bare Litestar hello route {hello_rps:8.0f} req/s")
    print(f"  ratio start page / hello  {page_rps / hello_rps:8.2f}")


if __name__ == "__main__":
    main()
