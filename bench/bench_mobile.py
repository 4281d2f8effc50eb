"""The chair's signing page on a phone under Lighthouse's Slow 4G: LCP and bytes, beside the budget.

Starts `jourpost demo` (fresh data directory), has Jonna draft a 6 § LVU decision for Olof and send
it for signature (through the pages, in Chromium), then opens Olof's signing page in a 360×740
phone viewport with Chromium's network and CPU throttled as Lighthouse's mobile preset does:
150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up (Network.emulateNetworkConditions) and a 4×
CPU slowdown (Emulation.setCPUThrottlingRate). Cache disabled: every run is a first visit.

Reported per run and as medians: Largest Contentful Paint (PerformanceObserver, buffered), bytes
transferred (CDP encodedDataLength: compressed, headers included), number of requests and
whether any went to another origin; beside the budgets (100 KB, LCP 2.5 s "good") as ratios, and
beside the same page unthrottled in the same run.

Usage: .venv/bin/python bench/bench_mobile.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUDGET_BYTES = 100 * 1024
BUDGET_LCP_MS = 2500
SLOW_4G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1.6 * 1024 * 1024 / 8,
    "uploadThroughput": 750 * 1024 / 8,
}
JONNA, OLOF, BOY = "197803129829", "197104309831", "201103059893"


def _start_demo(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.servers.net import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jourpost"),
            "demo",
            "--data",
            str(data),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the demo did not start")


def _decision(browser: Any, url: str) -> str:
    from portal.timefmt import STOCKHOLM
    from tests.e2e.pages import login, new_page

    page = new_page(browser)
    login(page, url, JONNA)
    page.goto(f"{url}/decisions/new")
    page.get_by_label("Typ av beslut").select_option("lvu6")
    page.get_by_label("Kommun").select_option(label="Hudiksvall")
    when = (datetime.now(STOCKHOLM) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Tidpunkt för det muntliga beslutet").fill(when)
    maker = page.get_by_label("Beslutsfattare")
    maker.select_option(
        label=next(o for o in maker.locator("option").all_inner_texts() if "Olof" in o)
    )
    page.get_by_label("Personnummer (lämna tomt om identiteten är okänd)").fill(BOY)
    page.fill("[name=subject_name]", "Kalle Klient")
    page.get_by_label("Omständigheter").fill("Pojken har rymt från HVB tre gånger i veckan. " * 4)
    page.get_by_label("Skäl", exact=True).fill("Allvarlig risk för hälsa och utveckling. " * 3)
    page.get_by_label("Placering (om beslutad)").fill("Jourhem i Hudiksvall.")
    with page.expect_navigation():
        page.get_by_role("button", name="Spara utkast").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Skicka till beslutsfattaren för underskrift").click()
    decision = page.url.rstrip("/").split("/decisions/")[1].split("?")[0].split("/")[0]
    page.context.close()
    return decision


LCP_JS = """() => new Promise(resolve => {
  let last = 0;
  new PerformanceObserver(list => { for (const e of list.getEntries()) last = e.startTime; })
    .observe({type: 'largest-contentful-paint', buffered: true});
  setTimeout(() => resolve(last), 300);
})"""


def _measure(browser: Any, url: str, decision: str, throttled: bool) -> dict[str, Any]:
    from tests.e2e.pages import login, new_page

    page = new_page(browser, phone=True)
    login(page, url, OLOF)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if throttled:
        cdp.send("Network.emulateNetworkConditions", SLOW_4G)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    sizes: dict[str, int] = {}
    urls: dict[str, str] = {}
    cdp.on(
        "Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"])
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    began = time.perf_counter()
    page.goto(f"{url}/decisions/{decision}/sign", wait_until="load")
    load_ms = (time.perf_counter() - began) * 1000
    lcp = float(page.evaluate(LCP_JS))
    page.wait_for_timeout(200)
    third_party = [u for u in urls.values() if not u.startswith(url) and not u.startswith("data:")]
    result = {
        "lcp_ms": lcp,
        "load_ms": load_ms,
        "bytes": sum(sizes.values()),
        "requests": len(urls),
        "third_party": third_party,
        "pdf_fetched": any(u.endswith(".pdf") for u in urls.values()),
    }
    page.context.close()
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_demo(Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                decision = _decision(browser, url)
                fast = [_measure(browser, url, decision, throttled=False) for _ in range(args.runs)]
                slow = [_measure(browser, url, decision, throttled=True) for _ in range(args.runs)]
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    for name, runs in (("unthrottled", fast), ("Slow 4G + 4x CPU", slow)):
        lcp = statistics.median(r["lcp_ms"] for r in runs)
        size = statistics.median(r["bytes"] for r in runs)
        print(
            f"{name:>17}: LCP median {lcp:7.0f} ms (budget {BUDGET_LCP_MS} ms, ratio "
            f"{lcp / BUDGET_LCP_MS:.2f}) | transferred {size / 1024:5.1f} KB (budget 100 KB, ratio "
            f"{size / BUDGET_BYTES:.2f}) | requests {runs[0]['requests']} | third-party "
            f"{sum(len(r['third_party']) for r in runs)} | PDF fetched "
            f"{any(r['pdf_fetched'] for r in runs)} | runs: "
            + ", ".join(f"{r['lcp_ms']:.0f}" for r in runs)
        )


if __name__ == "__main__":
    main()
