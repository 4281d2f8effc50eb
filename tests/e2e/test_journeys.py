"""Issue 6 journeys a–e, in order, against `jourpost demo` in Chromium, as the demo persons.

Each step asserts what the person sees, runs axe-core (WCAG 2.1 A and AA) on the page and saves a
screenshot under test-artifacts/e2e/. The chair signs on a 360 px phone viewport with the keyboard
alone. The journeys share one demo (session fixture), but none relies on another having run:
what a journey starts from (an advisory, a report, a signed decision) is made for it by a
fixture below, through the API, so each journey runs alone or in any order.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS, Demo
from tests.e2e.pages import check, focus_is_visible, login, new_page, tab_to
from tests.portal import login as http
from tests.portal.reports.helpers import report_payload

HANNA, JONNA, OLOF, ANDERS = "196901159803", "197803129829", "197104309831", "198311099876"
BOY = "201103059893"
ADA = "197512189882"
STHLM_FMT = "%Y-%m-%dT%H:%M"


def _local(delta: timedelta) -> str:
    from portal.timefmt import STOCKHOLM

    return (datetime.now(STOCKHOLM) + delta).strftime(STHLM_FMT)


def _pdf(path: Path) -> Path:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = "Planering"
    pdf.save(path)
    return path


# -- what the journeys start from, made through the API ------------------------------------


def _api_client(demo: Demo, personnummer: str) -> httpx.Client:
    """Logged in through the dev IdP, with the CSRF header the API wants on unsafe requests."""
    client, _ = http.login(demo.url, personnummer)
    http.csrf_form(client)  # sets the csrftoken cookie
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


def _option(html: str, label: str) -> str:
    """The value of the <option> whose text contains `label`."""
    found = re.search(rf'<option value="([0-9a-f-]{{36}})"[^>]*>[^<]*{re.escape(label)}', html)
    assert found, label
    return found.group(1)


@pytest.fixture(scope="module")
def advisory(demo: Demo) -> str:
    """Hanna's advisory about the boy (Kalle Klient), posted just now; its id."""
    with closing(_api_client(demo, HANNA)) as hanna:
        r = hanna.post(
            "/api/v1/advisories",
            json={
                "subjects": [{"personal_identity_number": BOY, "name": "Kalle Klient"}],
                "plan": "Placerad hos morbror i Delsbo. Skolan måndag.",
                "alternative_plans": "Jourhem via IFO.",
                "instructions": "Bevilja inte akutboende.",
                "legal_basis": "sol",
                "contact_name": "Hanna Hedlund",
                "contact_phone": "070-000 00 01",
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.fixture(scope="module")
def report(demo: Demo) -> str:
    """Jonna's report about the boy to Hudiksvall's IFO barn och unga, follow-up asked; its id."""
    with closing(_api_client(demo, JONNA)) as jonna:
        form = jonna.get("/reports/new")
        unit = _option(form.text, "Hudiksvall – IFO barn och unga")
        body = report_payload(
            unit,
            subjects=[{"personal_identity_number": BOY, "name": "Kalle Klient"}],
            narrative="Polisen hittade pojken på stationen. Morbror kontaktad, pojken åkte dit.",
        )
        r = jonna.post("/api/v1/reports", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.fixture(scope="module")
def signed_decision(demo: Demo) -> str:
    """A 6 § LVU decision about the boy: drafted by Jonna, signed by Olof at the IdP; its id."""
    with closing(_api_client(demo, JONNA)) as jonna:
        form = jonna.get("/decisions/new").text
        r = jonna.post(
            "/api/v1/decisions",
            json={
                "kind": "lvu6",
                "municipality_id": _option(form, "Hudiksvall"),
                "oral_decision_at": (
                    datetime.now().astimezone() - timedelta(minutes=30)
                ).isoformat(),
                "decision_maker_id": _option(form, "Olof Ordén"),
                "subject_personal_identity_number": BOY,
                "subject_name": "Kalle Klient",
                "facts": "Pojken har rymt från HVB tre gånger i veckan.",
                "grounds": "Allvarlig risk för hälsa och utveckling.",
                "placement": "Jourhem i Hudiksvall.",
            },
        )
        assert r.status_code == 201, r.text
        decision = str(r.json()["id"])
        assert jonna.post(f"/api/v1/decisions/{decision}/submit").status_code == 200
    olof, _ = http.login(demo.url, OLOF)
    with closing(olof):
        start = olof.post(f"/decisions/{decision}/sign", data=http.csrf_form(olof))
        assert start.status_code in (302, 303), start.text
        done = http.through_idp(olof, start.headers["location"], OLOF)
        assert done.status_code in (302, 303), done.text
    return decision


# -- the journeys --------------------------------------------------------------------------


def test_a_hanna_posts_an_advisory_with_a_pdf_plan(
    demo: Demo, browser: Any, tmp_path: Path
) -> None:
    page = new_page(browser)
    login(page, demo.url, HANNA)
    check(page, "a1-hanna-start")
    page.goto(f"{demo.url}/advisories/new")
    check(page, "a2-advisory-form")

    # A first attempt without a plan (with the file, so through the upload script): the error
    # is announced and tied to its field.
    page.fill("[name=subjects-0-personal_identity_number]", BOY)
    page.set_input_files("[name=attachments]", str(_pdf(tmp_path / "Planering Kalle.pdf")))
    page.get_by_role("button", name="Skicka till socialjouren").click()
    page.wait_for_selector("[role=alert]")
    summary = page.locator("[role=alert]").first
    assert summary.is_visible()
    invalid = page.locator("[aria-invalid=true]")
    assert invalid.count() >= 1
    described = invalid.first.get_attribute("aria-describedby")
    assert described and page.locator(f"#{described.split()[0]}").is_visible()
    check(page, "a3-advisory-form-errors")

    page.fill("[name=subjects-0-personal_identity_number]", BOY)
    page.fill("[name=subjects-0-name]", "Kalle Klient")
    # Required fields announce it: the accessible name carries "(måste fyllas i)".
    page.get_by_label(re.compile(r"^Planering\b.*måste fyllas i")).fill(
        "Placerad hos morbror i Delsbo. Skolan måndag."
    )
    page.get_by_label("Alternativ planering").fill("Jourhem via IFO.")
    page.get_by_label("Instruktioner till jouren").fill("Bevilja inte akutboende.")
    page.get_by_label(re.compile(r"^Placeringens lagrum\b.*måste fyllas i")).select_option("sol")
    page.fill("[name=contact_name]", "Hanna Hedlund")
    page.fill("[name=contact_phone]", "070-000 00 01")
    page.set_input_files("[name=attachments]", str(_pdf(tmp_path / "Planering Kalle.pdf")))
    # With a file chosen, the upload goes through the progress script (XMLHttpRequest).
    with (
        page.expect_request(
            lambda r: r.method == "POST" and r.headers.get("x-upload-progress") == "1"
        ) as upload,
        page.expect_navigation(url=re.compile(r".*\?saved=1")),
    ):
        page.get_by_role("button", name="Skicka till socialjouren").click()
    assert upload.value.url.endswith("/advisories/new")
    page.wait_for_url(re.compile(r".*/advisories/[0-9a-f-]{36}\?saved=1"))
    body = page.content()
    assert "Bevilja inte akutboende." in body and "Planering Kalle.pdf" in body
    check(page, "a4-advisory-saved")


def test_b_jonna_looks_up_acknowledges_and_reports(demo: Demo, browser: Any, advisory: str) -> None:
    page = new_page(browser)
    login(page, demo.url, JONNA)
    # The start page is the night's dashboard: Hanna's new advisory there, unacknowledged; the
    # demo's decision waiting for Olof with its age; who is on call in every municipality, with
    # a number to tap; the jour's own number.
    night = page.locator("section.night")
    changed = night.locator("li.card", has_text="Nya eller ändrade aviseringar")
    assert changed.locator(f"a[href='/advisories/{advisory}']").count() == 1
    assert "Inte kvitterad" in changed.inner_text()
    waiting = night.locator("li.card", has_text="Beslut som väntar på underskrift").inner_text()
    assert "Olof Ordén" in waiting and re.search(r"muntligt beslut för \d+ (min|tim)", waiting)
    on_call = night.locator("li.card", has_text="Ordförandejour nu")
    assert on_call.locator("a[href^='tel:']").count() == 10  # every member municipality
    assert night.locator("p.hint a[href^='tel:']").count() == 1  # Jourens telefon
    check(page, "b0-night-dashboard")

    # A call: one search from the start page (the box is first on it), the plan on screen.
    search = page.get_by_role("search").get_by_label(re.compile(r"^Sök person"))
    box = search.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800  # no scrolling to find it
    search.fill(BOY)
    with page.expect_navigation():
        search.press("Enter")
    assert BOY not in page.url  # the personnummer is posted, never in the URL
    result = page.content()
    assert "Kalle Klient" in result
    # The plan itself is in the result: one search during a call, no second click.
    assert "Bevilja inte akutboende." in result and "Kontakt under jourtid" in result
    instructions = page.get_by_text("Bevilja inte akutboende.").first
    assert instructions.is_visible()
    check(page, "b2-lookup-result")

    # By name: the lookup page (its field has focus) finds the same plan.
    page.goto(f"{demo.url}/lookup")
    assert page.evaluate("document.activeElement.id") == "personal_identity_number"
    check(page, "b1-lookup")
    page.get_by_label("… eller namn eller smeknamn").fill("kalle klient")
    with page.expect_navigation():
        page.get_by_role("button", name="Sök").click()
    assert "Resultat för namnet ”kalle klient”" in page.content()
    assert page.get_by_text("Bevilja inte akutboende.").first.is_visible()
    check(page, "b2-lookup-by-name")
    with page.expect_navigation():
        page.locator(f"a[href='/advisories/{advisory}']").first.click()
    assert "Bevilja inte akutboende." in page.content()
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Kvittera version 1")).click()
    assert "Kvitterad" in page.content() or "kvitterad" in page.content()
    check(page, "b3-advisory-acknowledged")

    page.goto(f"{demo.url}/reports/new")
    check(page, "b4-report-form")
    page.get_by_label("Enhet").select_option(label="Hudiksvall – IFO barn och unga")
    page.fill("#subjects-0-personal_identity_number", BOY)
    page.fill("#subjects-0-name", "Kalle Klient")
    page.get_by_label("När hände det?").fill(_local(timedelta(hours=-2)))
    page.get_by_label("Under beredskapstid").check()
    page.get_by_label("Initiativtagare").select_option("polisen")
    page.get_by_label("Kategori").select_option("13_17_ar")
    page.get_by_label("Karaktär").select_option("barn_ungdom")
    page.get_by_label("Skyddsbedömning", exact=True).first.check()
    page.get_by_label("Upplysning eller hänvisning").check()
    page.get_by_label("Tidsåtgång i minuter").fill("45")
    page.get_by_label("Vad hände och vad gjorde jouren?").fill(
        "Polisen hittade pojken på stationen. Morbror kontaktad, pojken åkte dit."
    )
    page.get_by_label("Barn berörs").check()
    page.fill("#assessment-assessment", "Inte i akut fara hos morbror.")
    page.fill("#assessment-facts", "Samtal med pojken och morbror.")
    page.fill("#assessment-assessed_at", _local(timedelta(hours=-1)))
    page.fill("#assessment-assessed_by", "Jonna Jourström")
    page.get_by_label("Kommunen behöver följa upp").check()
    page.get_by_label("Hur snart?").select_option("nasta_vardag")
    with page.expect_navigation():
        page.get_by_role("button", name="Skicka rapporten").click()
    page.wait_for_url(re.compile(r".*/reports/[0-9a-f-]{36}\?sent=1$"))
    assert "Morbror kontaktad" in page.content()
    check(page, "b5-report-sent")


def test_c_hanna_reads_acknowledges_and_takes_over(demo: Demo, browser: Any, report: str) -> None:
    page = new_page(browser)
    login(page, demo.url, HANNA)
    page.goto(f"{demo.url}/reports/inbox")
    check(page, "c1-inbox")
    with page.expect_navigation():
        page.locator(f"a[href^='/reports/{report}']").first.click()
    assert "Morbror kontaktad" in page.content()
    check(page, "c2-report")
    page.get_by_label("Vem tar över uppföljningen?").select_option(label="Hanna Hedlund (jag)")
    with page.expect_navigation():
        page.get_by_role("button", name="Kvittera rapporten").click()
    assert page.url.endswith(f"/reports/{report}?acknowledged=1")
    text = page.content()
    assert "Rapporten är kvitterad." in text
    assert "Hanna Hedlund" in text
    check(page, "c3-report-acknowledged")


def test_d_jonna_drafts_and_olof_signs_on_a_phone_with_the_keyboard(
    demo: Demo, browser: Any, tmp_path: Path
) -> None:
    page = new_page(browser)
    login(page, demo.url, JONNA)
    page.goto(f"{demo.url}/decisions/new")
    check(page, "d1-decision-form")
    # The oral decision's time starts at now (Stockholm time, to the minute).
    when = page.get_by_label("Tidpunkt för det muntliga beslutet")
    started = datetime.strptime(when.input_value(), STHLM_FMT)
    assert abs(datetime.strptime(_local(timedelta(0)), STHLM_FMT) - started) <= timedelta(minutes=2)
    page.get_by_label("Typ av beslut").select_option("lvu6")
    page.get_by_label("Kommun").select_option(label="Hudiksvall")
    # Only Hudiksvall's decision-makers remain, the one on call chosen (decision-form.js).
    maker = page.get_by_label("Beslutsfattare")
    shown = maker.locator("optgroup:not([hidden])")
    assert shown.count() == 1 and shown.first.get_attribute("label") == "Hudiksvall"
    assert "i beredskap nu" in maker.locator("option:checked").inner_text()
    when.fill(_local(timedelta(minutes=-30)))
    olof = [o for o in maker.locator("option").all_inner_texts() if "Olof Ordén" in o]
    maker.select_option(label=olof[0])
    page.get_by_label("Personnummer (lämna tomt om identiteten är okänd)").fill(BOY)
    page.fill("[name=subject_name]", "Kalle Klient")
    page.get_by_label("Omständigheter").fill("Pojken har rymt från HVB tre gånger i veckan.")
    page.get_by_label("Skäl", exact=True).fill("Allvarlig risk för hälsa och utveckling.")
    page.get_by_label("Placering (om beslutad)").fill("Jourhem i Hudiksvall.")
    with page.expect_navigation():
        page.get_by_role("button", name="Spara utkast").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Skicka till beslutsfattaren för underskrift").click()
    decision = re.search(r"/decisions/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    check(page, "d2-decision-sent")

    phone = new_page(browser, phone=True)
    login(phone, demo.url, OLOF)
    assert "Väntar på din underskrift" in phone.content()
    check(phone, "d3-olof-start")
    # From here on, the keyboard alone.
    tab_to(
        phone, f"e => e.tagName === 'A' && e.getAttribute('href') === '/decisions/{decision}/sign'"
    )
    phone.keyboard.press("Enter")
    phone.wait_for_url(f"**/decisions/{decision}/sign")
    assert "Kalle Klient" in phone.content()
    check(phone, "d4-sign-page")
    tab_to(
        phone,
        "e => e.tagName === 'BUTTON' && e.innerText.includes('Skriv under med e-legitimation')",
    )
    phone.keyboard.press("Enter")
    phone.wait_for_url("**/dev-idp/**")
    assert "Jag undertecknar beslut om omedelbart omhändertagande" in phone.content()
    check(phone, "d5-idp-sign")
    tab_to(phone, "e => e.id === 'pnr'")
    if phone.evaluate("document.activeElement.value") != OLOF:
        phone.keyboard.press("Control+A")
        phone.keyboard.type(OLOF)
    tab_to(phone, "e => e.tagName === 'BUTTON' && e.innerText.trim() === 'Skriv under'")
    phone.keyboard.press("Enter")
    phone.wait_for_url(f"**/decisions/{decision}/sign")
    assert "har levererats till kommunen" in phone.content()
    check(phone, "d6-signed")
    tab_to(phone, "e => e.tagName === 'A' && e.getAttribute('href').endsWith('/signed.pdf')")
    with phone.expect_download() as download:
        phone.keyboard.press("Enter")
    pdf = tmp_path / "beslut.pdf"
    download.value.save_as(pdf)
    verified = subprocess.run(
        [demo.jourpost, "verify", str(pdf), "--trust", str(demo.data / "pki" / "root.pem")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "GILTIG" in verified.stdout

    # Without JavaScript the decision is still readable.
    nojs = new_page(browser, phone=True, javascript=False)
    login(nojs, demo.url, OLOF)
    nojs.goto(f"{demo.url}/decisions/{decision}/sign")
    assert "Kalle Klient" in nojs.content() and "Skäl" in nojs.content()


def test_d_the_signing_page_stays_within_its_budget(
    demo: Demo, browser: Any, signed_decision: str
) -> None:
    """≤ 100 KB transferred (compressed), everything from the portal's own origin, no PDF."""
    phone = new_page(browser, phone=True)
    login(phone, demo.url, OLOF)
    decision = signed_decision
    cdp = phone.context.new_cdp_session(phone)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes: dict[str, int] = {}
    urls: dict[str, str] = {}
    cdp.on(
        "Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"])
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    phone.goto(f"{demo.url}/decisions/{decision}/sign", wait_until="networkidle")
    assert all(u.startswith(demo.url) or u.startswith("data:") for u in urls.values()), urls
    assert not any(u.endswith(".pdf") for u in urls.values())
    total = sum(sizes.values())
    assert 0 < total <= 100 * 1024, f"{total} bytes"


def test_e_anders_finds_verifies_and_exports_the_decision(
    demo: Demo, browser: Any, tmp_path: Path, signed_decision: str
) -> None:
    from tests.portal.archive.eark import validate_sip

    page = new_page(browser)
    login(page, demo.url, ANDERS)
    page.goto(f"{demo.url}/archive")
    check(page, "e1-archive-search")
    page.get_by_label("Personnummer (valfritt)").fill(BOY)
    with page.expect_navigation():
        page.get_by_role("button", name="Sök").click()
    assert BOY not in page.url
    check(page, "e2-archive-results")
    with page.expect_navigation():
        page.locator(f"a[href='/archive/records/decision/{signed_decision}']").click()
    text = page.content()
    assert "Integritetskontroll: godkänd." in text
    assert "Underskriften är giltig och betrodd." in text and "B-LTA" in text
    check(page, "e3-archive-decision")
    with page.expect_download() as download:
        page.get_by_role("button", name="Exportera till e-arkiv").click()
    package = tmp_path / "sip.zip"
    download.value.save_as(package)
    report = validate_sip(package.read_bytes(), tmp_path / "sip")
    assert report.ok, report.problems
    assert any(n.endswith(f"beslut-{signed_decision}.pdf") for n in report.data_files)


def test_focus_is_visible_on_the_start_page(demo: Demo, browser: Any) -> None:
    page = new_page(browser)
    login(page, demo.url, HANNA)
    page.keyboard.press("Tab")
    assert focus_is_visible(page)


def test_f_the_other_pages_of_the_roles_pass_the_same_checks(
    demo: Demo, browser: Any, report: str
) -> None:
    """Statistics, costs, log review, retention and the lists: axe, lang and 360 px too (with
    `report` in Hanna's inbox)."""
    visits = {
        "198507049818": ["/", "/stats", "/stats/costs", "/logs", "/jour/advisories", "/decisions"],
        OLOF: ["/stats", "/decisions"],
        ANDERS: ["/retention", "/logs", "/verify"],
        HANNA: ["/advisories", "/reports/inbox", "/placements", "/placements/new"],
        JONNA: [
            "/reports/sent",
            "/rosters/on-call",
            "/codes",
            "/dev-mail",
            "/police-requests",
            "/police-requests/new",
        ],
        ADA: ["/delegation", "/admin/users"],  # the users list last: the steps below use it
    }
    for pnr, paths in visits.items():
        page = new_page(browser)
        login(page, demo.url, pnr)
        for path in paths:
            response = page.goto(f"{demo.url}{path}")
            assert response is not None and response.status == 200, (pnr, path)
            check(page, f"f-{pnr[-4:]}{path.replace('/', '-')}")
        if pnr == ADA:  # one user's page and the question before a role is removed
            with page.expect_navigation():
                page.get_by_role("link", name="Hanna Hedlund").click()
            check(page, "f-admin-user")
            with page.expect_navigation():
                page.get_by_role("button", name="Ta bort roll").first.click()
            assert "Ta bort rollen?" in page.content()
            check(page, "f-admin-revoke-question")
        if pnr == HANNA:  # the inbox on a phone: status and follow-up in view, no side-scrolling
            page.goto(f"{demo.url}/reports/inbox")
            for label in ("Status", "Uppföljning"):
                cell = page.locator(f"td[data-label={label}]").first
                box = cell.bounding_box()
                assert cell.is_visible() and box is not None and box["x"] + box["width"] <= 360
            page.goto(demo.url + "/")
            with page.expect_navigation():
                page.get_by_role("link", name="Ordförandejour").first.click()
            check(page, "f-hanna-roster")
        page.context.close()


def test_g_records_print_clean_and_checkboxes_are_big_enough(
    demo: Demo, browser: Any, advisory: str, report: str, signed_decision: str
) -> None:
    """A printed advisory, report or decision holds the record, not the navigation and forms;
    every checkbox row is a 44 px touch target."""

    page = new_page(browser)
    login(page, demo.url, JONNA)
    records = {
        "advisory": (f"/advisories/{advisory}", "Bevilja inte akutboende."),
        "report": (f"/reports/{report}", "Händelserapport"),
        "decision": (f"/decisions/{signed_decision}", "6 § LVU"),
    }
    for name, (path, must) in records.items():
        page.goto(f"{demo.url}{path}")
        pdf = ARTIFACTS / f"g-print-{name}.pdf"
        page.pdf(path=str(pdf), format="A4")
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert must in text, name
        for chrome in ("Logga ut", "Hoppa till innehållet", "Jourpost – säkert informationsutbyte"):
            assert chrome not in text, (name, chrome)
        for label in page.locator("main button:visible").all_inner_texts():
            if len(label.strip()) > 8:  # e.g. "Kvittera version 1", "Skriv under med …"
                assert label.strip() not in text, (name, label)

    page.goto(f"{demo.url}/reports/new")
    boxes = page.locator("input[type=checkbox]")
    assert boxes.count() > 5
    for i in range(boxes.count()):
        box = boxes.nth(i)
        own = box.bounding_box()
        row = box.locator("xpath=..").bounding_box()
        assert own and own["width"] >= 24 and own["height"] >= 24, i
        assert row and row["height"] >= 44, i


def _end_all_sessions_by_idling(demo: Demo, minutes: int) -> None:
    """As if nobody had touched the portal for `minutes` (the demo's own database)."""
    import asyncio
    import threading

    from sqlalchemy import update

    from portal.db.base import utcnow
    from portal.db.engine import make_engine, make_sessionmaker
    from portal.db.models import WebSession

    async def go() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{demo.data / 'jourpost.sqlite3'}")
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                await db.execute(
                    update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=minutes))
                )
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop in this thread: run ours in another.
    worker = threading.Thread(target=lambda: asyncio.run(go()))
    worker.start()
    worker.join(timeout=30)


def test_h_a_report_survives_the_session_timeout(demo: Demo, browser: Any) -> None:
    """Jonna writes, is warned before the idle timeout, stays; later the session ends anyway,
    and after logging in she is back at the form with what she wrote."""
    page = new_page(browser)
    page.clock.install()
    login(page, demo.url, JONNA)
    page.goto(f"{demo.url}/reports/new")
    text = "Polisen ringde kl. 02.50 om en pojke på busstationen."
    page.get_by_label("Vad hände och vad gjorde jouren?").fill(text)
    page.clock.run_for(3000)  # the draft is saved a moment after the last keystroke
    page.wait_for_selector("form[data-draft-saved]")

    # Two minutes before the idle limit: a warning, and a way to stay.
    page.clock.run_for(28 * 60 * 1000)
    dialog = page.get_by_role("alertdialog")
    assert dialog.is_visible() and "Du loggas ut om två minuter" in dialog.inner_text()
    check(page, "h1-session-warning")
    with page.expect_response(lambda r: r.url.endswith("/auth/keepalive")) as kept:
        page.get_by_role("button", name="Fortsätt vara inloggad").click()
    assert kept.value.status == 204
    page.wait_for_selector("[role=alertdialog]", state="detached")

    # Later nobody answers the warning: the session ends, the login takes her back to the form.
    _end_all_sessions_by_idling(demo, 31)
    with page.expect_navigation(url=re.compile(r".*/reports/new$"), timeout=30_000):
        page.clock.run_for(30 * 60 * 1000)
    if "/dev-idp/" in page.url:  # the simulator asks again: log in as before
        page.get_by_label("Personnummer (12 siffror, ÅÅÅÅMMDDNNNN)").fill(JONNA)
        page.get_by_role("button", name="Logga in", exact=True).click()
        page.wait_for_url(re.compile(r".*/reports/new$"))
    restored = page.content()
    assert "Ditt utkast är återställt" in restored and text in restored
    check(page, "h2-draft-restored")


def test_i_a_blocked_and_an_allowed_police_request(demo: Demo, browser: Any) -> None:
    """Handräckning on a phone: Sixten is placed under SoL — blocked, with why; Tilde under
    3 § LVU — allowed, and since Hudiksvall's chair decides handräckning (the demo's delegation
    matrix) it waits for Olof, who decides and signs it on his phone after a fresh identity check
    at the identity provider."""
    from portal.demo_night import placed_persons

    placed = placed_persons()
    page = new_page(browser, phone=True)
    login(page, demo.url, JONNA)
    page.goto(f"{demo.url}/police-requests/new")
    check(page, "i1-police-form")

    def fill(pnr: str, name: str) -> None:
        page.get_by_label(re.compile(r"^Personnummer")).fill(pnr)
        page.get_by_label(re.compile(r"^Lagrum")).select_option("lvu")
        page.get_by_label(re.compile(r"^För kommun")).select_option(label="Hudiksvall")
        page.get_by_label(re.compile(r"^Personens namn")).fill(name)
        page.get_by_label(re.compile(r"^Polisens hjälp behövs för")).select_option("return")
        page.get_by_label(re.compile(r"^Vart ska personen föras")).fill("Placeringen")
        page.get_by_label(re.compile(r"^Skäl för begäran")).fill("Har avvikit och vägrar.")
        page.get_by_label(re.compile(r"^Till \(polisstation")).fill("Polisen, Hudiksvall")
        page.get_by_label(re.compile(r"^Jourens telefon")).fill("026-17 80 00")

    fill(placed["Sixten Svensson"], "Sixten Svensson")
    page.get_by_role("button", name="Kontrollera lagrum").click()
    page.wait_for_selector("text=Handräckning kan inte begäras.")
    assert "frivilligt enligt SoL" in page.content()
    check(page, "i2-police-blocked-check")
    page.get_by_role("button", name="Skapa begäran").click()
    page.wait_for_selector("[role=alert]")
    assert "frivilligt enligt SoL" in page.locator("[role=alert]").inner_text()
    check(page, "i3-police-blocked")

    fill(placed["Tilde Testsson"], "Tilde Testsson")
    page.get_by_role("button", name="Kontrollera lagrum").click()
    page.wait_for_selector("text=Lagrummet stämmer.")
    with page.expect_navigation(url=re.compile(r".*/police-requests/[0-9a-f-]{36}\?saved=1")):
        page.get_by_role("button", name="Skapa begäran").click()
    assert "Väntar på ordförandens beslut" in page.content()
    check(page, "i4-police-awaiting-chair")
    request_url = page.url.split("?")[0]
    page.context.close()

    page = new_page(browser, phone=True)
    login(page, demo.url, OLOF)
    page.goto(request_url)
    # Deciding sends Olof to the identity provider again (step-up, bound to the document).
    page.get_by_role("button", name="Besluta och skriv under").click()
    page.wait_for_url("**/dev-idp/**")
    assert "Jag beslutar och undertecknar begäran om handräckning enligt 43 § LVU" in (
        page.content()
    )
    check(page, "i5-police-idp-sign")
    pnr = page.locator("#pnr")
    if pnr.input_value() != OLOF:
        pnr.fill(OLOF)
    with page.expect_navigation(url=re.compile(r".*\?saved=1")):
        page.get_by_role("button", name="Skriv under", exact=True).click()
    assert "Hämta underskriven begäran (PDF)" in page.content()
    check(page, "i6-police-signed-by-chair")
    page.context.close()
