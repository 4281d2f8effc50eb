"""Fuzzing: every API operation (schemathesis) and every HTML form (hypothesis), as two roles.

Done when nothing answers 5xx, and the API answers only what `/schema/openapi.json` documents
(status codes, content types, problem details). Both runs are bounded and derandomised (fixed
seeds and example counts) so CI stays fast and a failure is reproducible; real record ids
(created first) are mixed into the generated path parameters, otherwise almost every request
would stop at 404 before reaching the code that parses and validates.

The roles are jour staff (Jonna) and a municipal handler (Hanna), each with a real session
cookie and the CSRF header, as a case system integrating with the API would send them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.portal.advisories.helpers import body, pdf_bytes
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import draft_body, roster_with_olof
from tests.portal.placements.helpers import placement as placement_body
from tests.portal.police.helpers import request_body
from tests.portal.reports.helpers import BARN, report_payload, unit_ids
from tests.portal.sessions import client_as

JONNA = "197803129829"  # jour staff, Socialjouren Gävleborg
HANNA = "196901159803"  # handler, Hudiksvall IFO barn och unga
ROLES = {"jour": JONNA, "handler": HANNA}

# Per operation; with the coverage and stateful phases ~2,400 cases per role (~40 s each).
API_EXAMPLES = 25
API_SEED = 20261204
FORM_EXAMPLES = 600
# Fuzzing the production database only (SQLite runs every other HTTP test).
pytestmark = [
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
    pytest.mark.slow,
]

PDF = pdf_bytes("Plan")


def seed_records(portal: RunningPortal) -> dict[str, list[str]]:
    """Create one record of each kind; return path parameter name -> real values."""
    known = roster_with_olof(portal)
    jonna = client_as(portal.url, portal.settings, JONNA)
    hanna = client_as(portal.url, portal.settings, HANNA)
    try:
        unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
        report = jonna.post("/api/v1/reports", json=report_payload(unit)).json()["id"]
        files = [("attachments", ("plan.pdf", PDF, "application/pdf"))]
        r = jonna.post(f"/api/v1/reports/{report}/attachments", files=files)
        report_file = r.json()["ids"][0]

        valid_until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
        advisory = hanna.post("/api/v1/advisories", json=body(valid_until=valid_until)).json()
        r = hanna.post(f"/api/v1/advisories/{advisory['id']}/attachments", files=files)
        advisory_file = r.json()["ids"][0]

        decision = jonna.post("/api/v1/decisions", json=draft_body(known)).json()["id"]
        versions = hanna.get(f"/api/v1/rosters/municipalities/{known['Hudiksvall']}/versions")
        roster = versions.json()[0]["id"]
        placement = hanna.post("/api/v1/placements", json=placement_body()).json()["id"]

        due_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        assignment = hanna.post(
            "/api/v1/assignments",
            json={"task": "Hembesök", "requester_name": "Hanna", "contact_phone": "0650-190 00",
                  "due_at": due_at},
        ).json()["id"]  # fmt: skip
        note = jonna.post("/api/v1/handover", json={"body": "Till nästa pass."}).json()["id"]
        police = jonna.post(
            "/api/v1/police-requests",
            json=request_body(str(known["Hudiksvall"]), confirm_unregistered=True),
        ).json()["id"]
    finally:
        jonna.close()
        hanna.close()
    return {
        "advisory_id": [advisory["id"]],
        "assignment_id": [assignment],
        "note_id": [note],
        "report_id": [report],
        "decision_id": [decision],
        "placement_id": [placement],
        "request_id": [police],
        "attachment_id": [report_file, advisory_file],
        "version_id": [roster],
        "municipality_id": [str(known["Hudiksvall"]), str(known["Gävle"])],
        "record_id": [advisory["id"], report, decision, roster],
        "number": [1, 2],
        "kind": ["advisory", "report", "decision", "roster"],
    }


def _config(tmp: Path, values: dict[str, list[Any]]) -> Path:
    """schemathesis.toml: real ids mixed into the generated path parameters."""
    lines = []
    for name, vals in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(vals)}", ""]
    lines.append("[parameters]")
    for name in values:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}')
    path = tmp / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(
    portal: RunningPortal, client: httpx.Client, config: Path, report: Path
) -> dict[str, Any]:
    """Run the schemathesis CLI against the live portal as `client`; return its JSON report."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{portal.url}/schema/openapi.json",
        "-H", f"Cookie: {cookie}", "-H", f"X-CSRFToken: {client.headers['X-CSRFToken']}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-examples", str(API_EXAMPLES), "--seed", str(API_SEED), "--workers", "1",
        "--suppress-health-check", "all", "--warnings", "off",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    done = subprocess.run(  # in tmp: schemathesis keeps a cache in its working directory
        cmd, capture_output=True, text=True, timeout=600, check=False, cwd=report.parent
    )
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["_output"] = done.stdout
    return result


def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(
    portal: RunningPortal, tmp_path: Path
) -> None:
    config = _config(tmp_path, seed_records(portal))
    summary, problems = [], []
    for role, pnr in ROLES.items():
        client = client_as(portal.url, portal.settings, pnr)
        try:
            result = run_schemathesis(portal, client, config, tmp_path / f"{role}.json")
        finally:
            client.close()
        assert result["complete"] and result["errors"] == [], result["_output"][-3000:]
        cases = result["test_cases"]
        kinds = {f"{f['code']} {f['title']}": f["count"] for f in result["failures"]}
        summary.append((role, result["operations"]["tested"], cases["generated"], kinds))
        if cases["with_failures"]:
            problems.append(f"--- {role}: " + "\n".join(_failure_lines(result["_output"])))
    print("schemathesis (role, operations, cases, failures by kind):", summary)
    assert not problems, f"{summary}\n" + "\n".join(problems)[:8000]


def _failure_lines(output: str) -> list[str]:
    """The failure blocks of the CLI's text output (code, status, the request to reproduce)."""
    keep = re.compile(
        r"^(_{3,}.*|\s*- ST\d+.*|\s*Received.*|\s*Documented.*|\s*curl .*|\[\d+\].*)$"
    )
    return [line for line in output.splitlines() if keep.match(line)]


# --- HTML forms (not in the schema) ----------------------------------------------------------


class _Forms(HTMLParser):
    """Collect each POST form's action and its field names."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, set[str]] = {}
        self._current: set[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._current = self.forms.setdefault(a.get("action") or "", set())
        elif tag in ("input", "select", "textarea") and self._current is not None and a.get("name"):
            self._current.add(str(a["name"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def form_routes(portal: RunningPortal, ids: dict[str, list[str]]) -> list[str]:
    """Every POST route outside the OpenAPI schema, with real ids in its path."""
    from litestar.routes import HTTPRoute

    schema_paths = set(httpx.get(f"{portal.url}/schema/openapi.json").json()["paths"])
    out = []
    for route in portal.app.routes:
        if not isinstance(route, HTTPRoute) or "POST" not in route.route_handler_map:
            continue
        plain = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if plain in schema_paths or plain.startswith(("/auth/", "/dev-")):
            continue  # the API (schemathesis); login/logout (tested in test_login.py)
        out.append(re.sub(r"\{(\w+)\}", lambda m: ids.get(m[1], [m[1]])[0], plain))
    return sorted(out)


def harvest_fields(client: httpx.Client, pages: list[str]) -> dict[str, set[str]]:
    """Field names of the POST forms found on `pages`, by action."""
    parser = _Forms()
    for page in pages:
        parser.feed(client.get(page, headers={"accept": "text/html"}).text)
    return parser.forms


def test_html_forms_never_answer_5xx(portal: RunningPortal) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ids = seed_records(portal)
    routes = form_routes(portal, ids)
    assert len(routes) > 20, routes
    clients = {role: client_as(portal.url, portal.settings, p) for role, p in ROLES.items()}
    pages = ["/", "/lookup", "/logs", "/archive", "/advisories/new", "/reports/new",
             "/decisions", "/stats/costs", "/retention", "/placements/new",
             "/police-requests/new"]  # fmt: skip
    pages += [f"/advisories/{ids['advisory_id'][0]}", f"/reports/{ids['report_id'][0]}",
              f"/decisions/{ids['decision_id'][0]}",
              f"/placements/{ids['placement_id'][0]}/amend",
              f"/police-requests/{ids['request_id'][0]}",
              f"/rosters/municipalities/{ids['municipality_id'][0]}"]  # fmt: skip
    known: set[str] = {"_csrf_token"}
    for client in clients.values():
        for names in harvest_fields(client, pages).values():
            known |= names
    seen: dict[int, int] = {}

    weird = st.sampled_from(
        ["", " ", "0", "-1", "9" * 30, "1e309", "NaN", "null", "true", "[]", "{}",
         "2026-02-30", "2026-12-04T25:61", "9999-12-31T23:59", "0001-01-01",
         "00000000-0000-0000-0000-000000000000", "19121212-1212", "201103059893",
         "%", "_", "'", '"', "<script>", "\x00", "a\r\nb", "x" * 70_000, "ÅÄÖ"]
        + [v for vals in ids.values() for v in map(str, vals)]
    )  # fmt: skip
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # encodable
    value = st.one_of(weird, text)
    field = st.one_of(st.sampled_from(sorted(known)), text.filter(bool))
    files = st.lists(
        st.tuples(
            st.sampled_from(["attachments", "file", "pdf", "x"]),
            st.one_of(st.sampled_from(["plan.pdf", "", "a\r\nb.pdf", "../x.pdf"]), text),
            st.sampled_from([PDF, b"", b"\xff\xfe\x00", b"GIF89a"]),
        ),
        max_size=3,
    )

    def post(role: str, route: str, fields: list[tuple[str, str]], upload: list[Any]) -> None:
        client = clients[role]
        if any(name == "_csrf_token" for name, _ in fields):
            fields = [(n, client.headers["X-CSRFToken"] if n == "_csrf_token" else v)
                      for n, v in fields]  # fmt: skip
        headers = {"accept": "text/html"}
        if upload:
            multipart = [(n, (None, v.encode())) for n, v in fields]
            multipart += [(n, (name, content, "application/pdf")) for n, name, content in upload]
            r = client.post(route, files=multipart, headers=headers)
        else:
            r = client.post(route, data=dict(fields) if fields else None, headers=headers)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (role, route, fields[:5], upload[:1], r.status_code)
        if r.status_code >= 400:  # a Swedish page, not Litestar's English text
            assert '<html lang="sv">' in r.text, (route, r.status_code, r.text[:200])

    @settings(
        max_examples=FORM_EXAMPLES, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(
        role=st.sampled_from(sorted(clients)),
        route=st.sampled_from(routes),
        fields=st.lists(st.tuples(field, value), max_size=8).map(
            lambda f: [("_csrf_token", ""), *f]
        ),
        upload=files,
    )
    def fuzz(role: str, route: str, fields: list[tuple[str, str]], upload: list[Any]) -> None:
        post(role, route, fields, upload)

    try:
        fuzz()
    finally:
        for client in clients.values():
            client.close()
    print("form fuzzing: routes", len(routes), "answers", dict(sorted(seen.items())))


ODD_QUERY = (
    "?page=99999999999999999999&year=99999999999&month=13&from=2026-13-45&to=x&q=%FF%FE"
    "&number=999999999999999999999&version=-1&box=x&view=x&kind=x&sort=x&period=x&ref=x:y"
)


def test_pages_with_extreme_parameters_never_answer_5xx(portal: RunningPortal) -> None:
    """Every GET page and API route: real ids, path integers far out of range, odd queries."""
    from litestar.routes import HTTPRoute

    ids = seed_records(portal)
    targets: set[str] = set()
    for route in portal.app.routes:
        if not isinstance(route, HTTPRoute) or "GET" not in route.route_handler_map:
            continue
        if route.path.startswith(("/auth/", "/dev-", "/static", "/schema")):
            continue
        for number in ("9" * 23, "-1", "0"):
            targets.add(
                re.sub(
                    r"\{(\w+):(\w+)\}",
                    lambda m, n=number: n if m[2] == "int" else str(ids.get(m[1], ["x"])[0]),
                    route.path,
                )
            )
    assert len(targets) > 40, targets
    crashed = []
    for pnr in (*ROLES.values(), "198311099876"):  # and Anders, archivist
        client = client_as(portal.url, portal.settings, pnr)
        for target in sorted(targets):
            for query in ("", ODD_QUERY):
                r = client.get(target + query, headers={"accept": "text/html"})
                if r.status_code >= 500:
                    crashed.append((pnr, target + query, r.status_code))
        client.close()
    assert not crashed, crashed
