"""`jourpost demo` starts on a believable night: rosters everywhere, advisories (one expiring),
a decision waiting for the chair, and receipts that agree with themselves; a restart adds
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.portal.login import login
from tests.servers.demo import running_demo
from tests.servers.net import free_port

JONNA, HANNA, OLOF = "197803129829", "196901159803", "197104309831"
MUNICIPALITIES = ("Bollnäs", "Gävle", "Hofors", "Hudiksvall", "Ljusdal", "Nordanstig",
                  "Ockelbo", "Ovanåker", "Sandviken", "Söderhamn")  # fmt: skip


def test_the_demo_starts_on_a_believable_night(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    with running_demo(data, free_port()) as url:
        jonna, _ = login(url, JONNA)
        night = jonna.get("/jour/advisories").text
        assert night.count('<li class="card">') == 3
        assert night.count("Går ut snart") == 1
        on_call = jonna.get("/rosters/on-call").text
        for name in MUNICIPALITIES:
            section = on_call.split(name, 1)
            assert len(section) == 2, name
        assert "Ingen lista" not in on_call and "saknar lista" not in on_call
        start = jonna.get("/").text
        assert "Öppna uppdrag (1)" in start and "Hembesök, Hudiksvall" in start
        # The jour has acknowledged the rosters it has had for a day, but one.
        assert re.search(r"<strong>1</strong> ordförandelista</a> är inte kvitterad\.", start)
        assert "familjen Sample" in start.split('id="handover"', 1)[1]

        olof, _ = login(url, OLOF)
        start = olof.get("/").text
        assert "Väntar på din underskrift" in start and "/sign" in start

        hanna, _ = login(url, HANNA)
        rows = hanna.get("/reports/inbox").text.split("<tr>")[2:]
        assert rows, "the synthetic year gives Hanna's unit reports"
        register = hanna.get("/placements").text
        assert register.count('<li class="card">') == 2
        assert "3 § LVU" in register and "SoL – frivillig placering" in register
        contradictory = [r for r in rows if "Oläst" in r and "Kvitterad" in r]
        assert contradictory == []
        assert any("Kvitterad" in r for r in rows)

        mail = httpx.get(f"{url}/dev-mail").text
        assert "Det finns ett beslut som väntar på din underskrift" in mail
        assert re.search(r"Till olof@hudiksvall\.kommun\.example", mail)

    log = tmp_path / "demo-now.log"
    assert log.read_text().count("demo: tonight's data:") == 1
    # The start-up banner says where the e-mails went (README says so too).
    assert f"meddelandena visas på {url}/dev-mail" in log.read_text()

    # A restart finds everything and adds nothing.
    with running_demo(data, free_port()) as url:
        jonna, _ = login(url, JONNA)
        assert jonna.get("/jour/advisories").text.count('<li class="card">') == 3
        assert "Öppna uppdrag (1)" in jonna.get("/").text
    assert "demo: tonight's data:" not in log.read_text()
