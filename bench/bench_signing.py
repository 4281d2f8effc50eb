"""Benchmark of the signing step and of verification (prints figures; not a test).

    python bench/bench_signing.py [--runs 30]

Runs the real thing on loopback: a dev PKI in a temp directory, the trust services (TSA, OCSP,
CRL) in a uvicorn thread, WeasyPrint for the document. Measures, per signature:

- the whole sign step: ephemeral key + certificate issue + `sign_pdf` at B-LTA;
- network: wall time of every trust-service HTTP round trip, seen by the client (aiohttp trace
  hooks on the session handed to `sign_pdf`), and how much of it the server spent handling;
- pyHanko: time inside the pyHanko calls our code makes (PDF reader/writer set-up,
  `PdfSigner.async_sign_pdf`, `ades_lta_validation`), minus the network time inside them;
- ours: everything else (key generation, certificate issuance, stamp set-up, the DSS check).

Verification (`verify_pdf`, offline) is split into pyHanko's AdES-LTA validation and the rest.
Baseline in the same run: B-B signing (no network at all) and the ratios to it.
The machine is small and noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import ades, pdf_embedded

from signing import pades, render, verify
from signing.pki import DevPki, create_dev_pki
from tests.servers.trust_services import free_port, start_trust_services

HTML = (
    "<html lang='sv'><head><meta charset='utf-8'><title>Beslut</title></head><body>"
    "<h1>Beslut om omedelbart omhändertagande enligt 6 § LVU</h1>"
    + "<p>Ordföranden beslutar att den unge omedelbart ska omhändertas. Skäl: ...</p>" * 20
    + "</body></html>"
)
STAMP = "Digitalt signerat av Olof Ordén, ordförande i socialnämnden Hudiksvall, tid {time}"


class Clock:
    """Accumulates time spent in instrumented places during one measured operation."""

    def __init__(self) -> None:
        self.network = 0.0
        self.requests = 0
        self.pyhanko = 0.0
        self.network_in_pyhanko = 0.0
        self.depth = 0  # > 0 while inside an instrumented pyHanko call (count outermost only)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


CLOCK = Clock()


def _trace_config() -> aiohttp.TraceConfig:
    async def start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        ctx.started = time.perf_counter()

    async def end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        elapsed = time.perf_counter() - ctx.started
        CLOCK.network += elapsed
        CLOCK.requests += 1
        if CLOCK.depth:
            CLOCK.network_in_pyhanko += elapsed

    config = aiohttp.TraceConfig()
    config.on_request_start.append(start)
    config.on_request_end.append(end)
    config.on_request_exception.append(end)
    return config


def _instrument(owner: Any, name: str) -> None:
    """Wrap a pyHanko function so that time spent inside it is added to CLOCK.pyhanko."""
    original: Callable[..., Any] = getattr(owner, name)

    def enter() -> float:
        CLOCK.depth += 1
        return time.perf_counter()

    def leave(started: float) -> None:
        CLOCK.depth -= 1
        if CLOCK.depth == 0:
            CLOCK.pyhanko += time.perf_counter() - started

    if inspect.iscoroutinefunction(original):

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = enter()
            try:
                return await original(*args, **kwargs)
            finally:
                leave(started)

        setattr(owner, name, timed_async)
    else:

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = enter()
            try:
                return original(*args, **kwargs)
            finally:
                leave(started)

        setattr(owner, name, timed)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index] * 1000


async def sign_once(
    pki: DevPki, pdf: bytes, tsa_url: str, session: aiohttp.ClientSession, level: pades.Level
) -> tuple[bytes, dict[str, float]]:
    CLOCK.reset()
    started = time.perf_counter()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issuer.issue_signer_certificate(
        public_key=key.public_key(), name="Olof Ordén", personal_identity_number="197104309831"
    )
    issued = time.perf_counter()
    signed = await pades.sign_pdf(
        pdf,
        signer_cert=cert,
        signer_key=key,
        chain=[pki.signing_ca],
        timestamp_url=tsa_url,
        trust_roots=[pki.root],
        stamp_text=STAMP,
        level=level,
        http_session=session,
    )
    total = time.perf_counter() - started
    pyhanko_only = CLOCK.pyhanko - CLOCK.network_in_pyhanko
    return signed, {
        "total": total,
        "issue": issued - started,
        "network": CLOCK.network,
        "pyhanko": pyhanko_only,
        "ours": total - pyhanko_only - CLOCK.network,
        "requests": CLOCK.requests,
    }


async def verify_once(pki: DevPki, signed: bytes) -> dict[str, float]:
    CLOCK.reset()
    started = time.perf_counter()
    report = await verify.verify_pdf(signed, trust_roots=[pki.root])
    total = time.perf_counter() - started
    assert report.valid, report.signatures
    return {"total": total, "pyhanko": CLOCK.pyhanko, "ours": total - CLOCK.pyhanko}


def line(label: str, values: list[float], base: float | None = None) -> str:
    p50, p95 = pct(values, 0.5), pct(values, 0.95)
    ratio = f"   x{p50 / base:4.1f} of B-B p50" if base else ""
    return f"  {label:<42} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{ratio}"


async def main(runs: int) -> None:
    # pyHanko entry points our code calls (parsing, signing, validation); nested calls count once.
    _instrument(signers.PdfSigner, "async_sign_pdf")
    _instrument(ades, "ades_lta_validation")
    _instrument(PdfFileReader, "__init__")
    _instrument(IncrementalPdfFileWriter, "__init__")
    _instrument(pdf_embedded, "collect_embedded_signatures")
    handled: list[tuple[str, float]]
    with tempfile.TemporaryDirectory(prefix="jourpost-bench-") as tmp:
        pki = create_dev_pki(Path(tmp), f"http://127.0.0.1:{free_port()}")
        services = start_trust_services(pki)
        handled = services.handled
        try:
            t = time.perf_counter()
            render.warm_up()
            pades.warm_up()
            warm = time.perf_counter() - t
            renders = []
            for _ in range(5):
                t = time.perf_counter()
                pdf = render.render_pdfa(HTML)
                renders.append(time.perf_counter() - t)
            async with aiohttp.ClientSession(trace_configs=[_trace_config()]) as session:
                for level in ("B-B", "B-LTA"):  # warm both paths once
                    await sign_once(pki, pdf, services.tsa_url, session, level)
                baseline = [
                    (await sign_once(pki, pdf, services.tsa_url, session, "B-B"))[1]
                    for _ in range(runs)
                ]
                handled.clear()
                lta: list[dict[str, float]] = []
                signed_docs: list[bytes] = []
                for _ in range(runs):
                    signed, figures = await sign_once(pki, pdf, services.tsa_url, session, "B-LTA")
                    lta.append(figures)
                    signed_docs.append(signed)
                server = [seconds for _, seconds in handled]
            verifies = [await verify_once(pki, doc) for doc in signed_docs]
        finally:
            services.stop()

    base = pct([b["total"] for b in baseline], 0.5)
    print(f"jourpost signing benchmark: {runs} runs each, document {len(pdf)} bytes, 1 page")
    print(f"  warm-up (WeasyPrint + stamp font, once per process)  {warm * 1000:7.1f} ms")
    print(line("render HTML -> PDF/A-2b", renders))
    print("sign, baseline B-B (no network):")
    print(line("whole step (key+cert+sign)", [b["total"] for b in baseline], base))
    print(line("  pyHanko", [b["pyhanko"] for b in baseline]))
    print(line("  ours (key, cert issue, stamp set-up)", [b["ours"] for b in baseline]))
    print("sign, B-LTA (TSA x3, OCSP, CRL over loopback HTTP):")
    print(line("whole step (key+cert+sign)", [f["total"] for f in lta], base))
    print(line("  network (client-side round trips)", [f["network"] for f in lta]))
    print(line("  pyHanko", [f["pyhanko"] for f in lta]))
    print(line("  ours (key, cert issue, stamp, DSS check)", [f["ours"] for f in lta]))
    print(line("  of which certificate issue", [f["issue"] for f in lta]))
    per_doc = statistics.mean(f["requests"] for f in lta)
    print(
        f"  trust-service requests per signature: {per_doc:.1f}; server-side handling "
        f"{statistics.mean(server) * 1000:.1f} ms mean per request, "
        f"{sum(server) / runs * 1000:.1f} ms per signature"
    )
    print("verify (offline, AdES-LTA):")
    print(line("whole verify_pdf", [v["total"] for v in verifies], base))
    print(line("  pyHanko (parse + ades_lta_validation)", [v["pyhanko"] for v in verifies]))
    print(line("  ours (level, timestamp, trailer checks)", [v["ours"] for v in verifies]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
