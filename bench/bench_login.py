"""Login round trip and authenticated-page throughput, against the demo portal.

Prints, in one run:
- login round trip (GET /auth/login → dev IdP form → POST → /auth/callback → start page)
  p50/p95 over N logins one after the other, and p50/p95 with 20 logins at once (20 client
  threads, each logging in again and again; same number of logins);
- requests/s (measured with wrk) of the authenticated start page and of a bare Litestar "hello"
  route served by the same process, and their ratio.

The portal runs in its own process (uvicorn, one worker, SQLite demo data) so the client does
not share its interpreter. Usage:
.venv/bin/python bench/bench_login.py [--logins 200] [--seconds 8] [--concurrent-logins 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.portal.login import login
from tests.servers.net import free_port

JONNA = "197803129829"


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
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{seconds:.0f}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30)
    if "Non-2xx" in out.stdout:
        raise SystemExit(f"{url}: non-2xx answers under load:\n{out.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if match is None:
        raise SystemExit(f"cannot read wrk output:\n{out.stdout}")
    return float(match.group(1))


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--concurrent-logins", type=int, default=20)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_portal_with_hello.py")), tmp, str(port)]
        )
        try:
            _wait(url, proc)
            login(url, JONNA)  # warm up: discovery, JWKS, templates
            times = [_round_trip(url) for _ in range(args.logins)]
            t0 = time.perf_counter()
            together = _concurrent(url, args.logins, args.concurrent_logins)
            together_s = time.perf_counter() - t0
            client, _ = login(url, JONNA)
            cookie = f"jp_session={client.cookies['jp_session']}"
            page_rps = _wrk(f"{url}/", cookie, args.seconds, args.concurrency)
            hello_rps = _wrk(f"{url}/bench/hello", "", args.seconds, args.concurrency)
        finally:
            proc.terminate()
            proc.wait(10)

    print(f"login round trip over {args.logins} logins (start → dev IdP → callback → start page):")
    print(f"  p50 {statistics.median(times):7.1f} ms   p95 {_percentile(times, 0.95):7.1f} ms")
    print(
        f"the same {args.logins} logins, {args.concurrent_logins} at once "
        f"({args.logins / together_s:.1f} logins/s):"
    )
    p95_together = _percentile(together, 0.95)
    print(
        f"  p50 {statistics.median(together):7.1f} ms   p95 {p95_together:7.1f} ms"
        f"   ratio p95 / one-at-a-time p50 {p95_together / statistics.median(times):.1f}"
    )
    print(
        f"throughput (wrk, {args.concurrency} connections, {args.seconds:.0f} s each, one process):"
    )
    print(f"  authenticated start page  {page_rps:8.0f} req/s")
    print(f"  bare Litestar hello route {hello_rps:8.0f} req/s")
    print(f"  ratio start page / hello  {page_rps / hello_rps:8.2f}")


if __name__ == "__main__":
    main()
