"""The Swedish pages: the report form with accessible errors, the detail page's forms."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from tests.portal.conftest import RunningPortal
from tests.portal.reports.conftest import BOY_15, HANNA, JONNA, OLOF, People
from tests.portal.reports.helpers import BARN, audit_entries, unit_ids
from tests.servers.forms import form_with_field, forms

STHLM = ZoneInfo("Europe/Stockholm")


class _Ids(HTMLParser):
    """Every element id, and every input/select/textarea's attributes by id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.fields: dict[str, dict[str, str]] = {}
        self.label_for: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag in ("input", "select", "textarea") and "id" in a:
            self.fields[a["id"]] = a
        if tag == "label" and "for" in a:
            self.label_for.add(a["for"])


def _parse(html: str) -> _Ids:
    p = _Ids()
    p.feed(html)
    return p


def _no_inline_code(html: str) -> None:
    import re

    # External scripts from our origin are fine (CSP 'self'); inline code is not.
    assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", html)
    assert "style=" not in html and "<style" not in html


def _base_form(csrf: str, unit: str) -> dict[str, str | list[str]]:
    local = datetime.now(STHLM) - timedelta(hours=2)
    return {
        "_csrf_token": csrf,
        "unit_id": unit,
        "occurred_at": local.strftime("%Y-%m-%dT%H:%M"),
        "on_call": "1",
        "initiator": "polisen",
        "category": "13_17_ar",
        "character": "barn_ungdom",
        "actions": ["skyddsbedomning", "uppfoljning"],
        "minutes": "40",
        "subjects[0].personal_identity_number": "201103059893",
        "subjects[0].name": "Pelle Testsson",
        "narrative": "Orolig pojke hos polisen.",
        "follow_up_requested": "1",
        "follow_up_urgency": "omgaende",
    }


def test_report_form_shows_accessible_errors_and_then_sends(
    portal: RunningPortal, people: People
) -> None:
    jonna = people(JONNA)
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    page = jonna.get("/reports/new")
    assert page.status_code == 200
    _no_inline_code(page.text)
    ids = _parse(page.text)
    for field in ("unit_id", "occurred_at", "minutes", "narrative", "child_involved"):
        assert field in ids.fields and field in ids.label_for, field
    assert "Hudiksvall – IFO barn och unga" in page.text and "Annan kommun" in page.text
    assert "13–20 år" not in page.text  # abolished in the current version

    csrf = jonna.cookies["csrftoken"]
    form = _base_form(csrf, unit)
    form["child_involved"] = "1"  # but no protection assessment
    form["minutes"] = "-3"
    bad = jonna.post("/reports/new", data=form)
    assert bad.status_code == 422
    _no_inline_code(bad.text)
    summary = re.search(r'<div class="error-summary" role="alert".*?</div>', bad.text, re.S)
    assert summary is not None
    targets = re.findall(r'href="#([^"]+)"', summary.group(0))
    parsed = _parse(bad.text)
    assert set(targets) >= {"minutes", "assessment-assessment", "assessment-facts"}
    for target in targets:
        assert target in parsed.ids, target
    minutes = parsed.fields["minutes"]
    assert minutes["aria-invalid"] == "true"
    assert "minutes-error" in minutes["aria-describedby"].split()
    assert "minutes-error" in parsed.ids
    assert minutes["value"] == "-3"  # what was typed is kept
    assert parsed.fields["subjects-0-name"]["value"] == "Pelle Testsson"
    assert 'value="skyddsbedomning" checked' in bad.text

    form.update(
        {
            "minutes": "40",
            "assessment.assessment": "Ingen akut fara.",
            "assessment.facts": "Samtal med pojken.",
            "assessment.assessed_at": (datetime.now(STHLM) - timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M"
            ),
            "assessment.assessed_by": "Jonna Jourström",
        }
    )
    ok = jonna.post("/reports/new", data=form)
    assert ok.status_code == 303, ok.text
    location = ok.headers["location"]
    assert BOY_15 not in location and "Pelle" not in location
    detail = jonna.get(location)
    assert "Rapporten är skickad." in detail.text
    _no_inline_code(detail.text)
    occurred = datetime.fromisoformat(str(form["occurred_at"])).strftime("%Y-%m-%d %H:%M")
    assert occurred in detail.text  # shown in Swedish time, as typed

    rid = location.split("/")[2].split("?")[0]
    hanna = people(HANNA)
    inbox = hanna.get("/reports/inbox")
    assert rid in inbox.text and "Oläst" in inbox.text
    opened = hanna.get(f"/reports/{rid}")
    assert "Pelle Testsson" in opened.text and "Kvittera rapporten" in opened.text
    assert "Nytt tillägg" not in opened.text
    ack = hanna.post(
        f"/reports/{rid}/acknowledge",
        data={"_csrf_token": hanna.cookies["csrftoken"], "follow_up_owner_id": "inte-ett-id"},
    )
    assert ack.status_code == 422 and 'aria-invalid="true"' in ack.text
    select = _parse(ack.text).fields["follow_up_owner_id"]
    assert select["aria-describedby"] == "follow_up_owner_id-error"
    ack = hanna.post(
        f"/reports/{rid}/acknowledge", data={"_csrf_token": hanna.cookies["csrftoken"]}
    )
    assert ack.status_code == 303
    assert "Hanna Hedlund tar över uppföljningen" in hanna.get(ack.headers["location"]).text

    add = jonna.post(f"/reports/{rid}/addenda", data={"_csrf_token": csrf, "text": ""})
    assert add.status_code == 422 and "Skriv tillägget." in add.text
    add = jonna.post(f"/reports/{rid}/addenda", data={"_csrf_token": csrf, "text": "Rättelse."})
    assert add.status_code == 303
    assert "Rättelse." in jonna.get(f"/reports/{rid}").text
    assert "Kvitterad" in jonna.get("/reports/sent").text


def test_other_municipality_from_the_form(portal: RunningPortal, people: People) -> None:
    jonna = people(JONNA)
    form = _base_form(jonna.cookies["csrftoken"], "annan")
    form.update({"other_municipality": "Uppsala", "category": "man", "character": "boende"})
    form["actions"] = ["logi"]
    ok = jonna.post("/reports/new", data=form)
    assert ok.status_code == 303, ok.text
    detail = jonna.get(ok.headers["location"])
    assert "Annan kommun: Uppsala" in detail.text and "Ladda ner som PDF" in detail.text


def test_forms_work_like_a_browser_with_the_token_from_the_page(
    portal: RunningPortal, people: People
) -> None:
    """No X-CSRFToken header: the hidden _csrf_token field rendered in each form must do."""
    jonna = people(JONNA)
    del jonna.headers["X-CSRFToken"]
    jonna.headers["Origin"] = portal.url  # as a browser names the page's origin on a post
    page = jonna.get("/reports/new")
    form = form_with_field(page.text, portal.url, "minutes")
    assert form.action.endswith("/reports/new")
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    data = _base_form(form.fields["_csrf_token"], unit)
    data.update({"category": "kvinna", "character": "boende"})
    sent = jonna.post("/reports/new", data=data)
    assert sent.status_code == 303, sent.text[:500]
    detail = jonna.get(sent.headers["location"])
    (tillagg,) = [f for f in forms(detail.text, portal.url) if f.action.endswith("/addenda")]
    assert tillagg.fields["_csrf_token"]
    added = jonna.post(tillagg.action, data={**tillagg.fields, "text": "Tillägg via formulär."})
    assert added.status_code == 303


def test_only_jour_staff_get_the_form_and_start_page_links(
    portal: RunningPortal, people: People
) -> None:
    assert people(HANNA).get("/reports/new").status_code == 403
    assert people(OLOF).get("/reports/new").status_code == 403
    start = people(JONNA).get("/").text
    assert 'href="/reports/new"' in start and 'href="/reports/sent"' in start
    assert 'href="/reports/inbox"' in people(HANNA).get("/").text
    assert people(JONNA).get("/reports").headers["location"] == "/reports/sent"
    assert people(HANNA).get("/reports").headers["location"] == "/reports/inbox"
    assert audit_entries(portal.settings, "report.create") == []


def test_the_report_form_starts_with_what_it_can_know(
    portal: RunningPortal, people: People
) -> None:
    page = people(JONNA).get("/reports/new")
    assert page.status_code == 200
    fields = _parse(page.text).fields
    before = datetime.now(STHLM).replace(second=0, microsecond=0, tzinfo=None)
    for name in ("occurred_at", "assessment.assessed_at"):
        field = next(f for f in fields.values() if f.get("name") == name)
        shown = datetime.fromisoformat(field["value"])
        assert timedelta(0) <= shown - before <= timedelta(minutes=2), name
    assessor = next(f for f in fields.values() if f.get("name") == "assessment.assessed_by")
    assert assessor["value"] == "Jonna Jourström, Socialjouren Gävleborg"
