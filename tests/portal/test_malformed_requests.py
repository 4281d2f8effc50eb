"""Malformed requests are the client's error: 400/413/422 in Swedish, never a 500.

Each case here crashed the portal once (issue 11 item 7): a deeply nested JSON body, a path
integer beyond 64 bits, multipart file names that are empty, only `filename*` or hold a raw line
break, and a form posted without its file field. The limits (body size, JSON depth, form fields,
files per upload) and the Origin check on unsafe requests are tested here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.portal.conftest import RunningPortal
from tests.portal.reports.helpers import BARN, report_payload, unit_ids
from tests.portal.sessions import client_as

JONNA = "197803129829"  # jour staff, Socialjouren Gävleborg
HANNA = "196901159803"  # handler, Hudiksvall IFO barn och unga

# Binary, as real PDFs are (the second line): not valid UTF-8.
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def jonna(portal: RunningPortal) -> Iterator[httpx.Client]:
    client = client_as(portal.url, portal.settings, JONNA)
    yield client
    client.close()


@pytest.fixture
def hanna(portal: RunningPortal) -> Iterator[httpx.Client]:
    client = client_as(portal.url, portal.settings, HANNA)
    yield client
    client.close()


def _report(portal: RunningPortal, jonna: httpx.Client) -> str:
    unit = unit_ids(portal.settings)[("Hudiksvall", BARN)]
    r = jonna.post("/api/v1/reports", json=report_payload(unit))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _advisory(hanna: httpx.Client) -> str:
    from tests.portal.advisories.helpers import body

    r = hanna.post("/api/v1/advisories", json=body())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def assert_problem(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    """An RFC 9457 answer with one of `statuses` and a Swedish title."""
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code and body["title"]
    assert body["title"] not in ("Bad Request", "Internal Server Error", "Fel")
    return body


def assert_swedish_page(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="sv">' in r.text


def _multipart(disposition: str, content: bytes = PDF, extra: bytes = b"") -> tuple[bytes, str]:
    """A multipart body built by hand (httpx would escape what this test must send raw)."""
    boundary = "jourpost-fuzz-boundary"
    raw = (
        extra
        + f"--{boundary}\r\n".encode()
        + b"Content-Disposition: "
        + disposition.encode("latin-1")
        + b"\r\nContent-Type: application/pdf\r\n\r\n"
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return raw, f"multipart/form-data; boundary={boundary}"


# --- JSON depth, body size -------------------------------------------------------------------


def test_deeply_nested_json_is_refused_not_a_crash(jonna: httpx.Client) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = jonna.post("/api/v1/lookup", content=deep, headers={"content-type": "application/json"})
    assert_problem(r, 400, 413, 422)
    deep_object = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    r = jonna.post(
        "/api/v1/reports", content=deep_object, headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, 413, 422)
    # An ordinary nested body still works.
    r = jonna.post("/api/v1/lookup", json={"personal_identity_number": "201103059893"})
    assert r.status_code == 200, r.text


def test_a_body_over_the_limit_is_413_in_swedish(jonna: httpx.Client) -> None:
    big = b'{"personal_identity_number": "' + b"1" * (26 * 1024 * 1024) + b'"}'
    r = jonna.post("/api/v1/lookup", content=big, headers={"content-type": "application/json"})
    body = assert_problem(r, 413)
    assert body["title"] == "Begäran är för stor"
    # JSON and url-encoded bodies stop at 2 MB (files come as multipart).
    three_mb = b'{"personal_identity_number": "' + b"1" * (3 * 1024 * 1024) + b'"}'
    r = jonna.post("/api/v1/lookup", content=three_mb, headers={"content-type": "application/json"})
    assert assert_problem(r, 413)["title"] == "Begäran är för stor"
    form = {
        "_csrf_token": jonna.headers["X-CSRFToken"],
        "personal_identity_number": "1" * 3_000_000,
    }
    assert_swedish_page(jonna.post("/lookup", data=form, headers={"accept": "text/html"}), 413)
    many = "&".join(f"f{i}=x" for i in range(600))
    r = jonna.post(
        "/lookup",
        content=f"_csrf_token={jonna.headers['X-CSRFToken']}&{many}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
    )
    assert_swedish_page(r, 400)


# --- path parameters -------------------------------------------------------------------------


def test_path_integer_beyond_64_bits_is_refused(hanna: httpx.Client) -> None:
    aid = _advisory(hanna)
    huge = "9" * 23
    assert_problem(hanna.get(f"/api/v1/advisories/{aid}/versions/{huge}"), 400, 404, 422)
    r = hanna.get(f"/advisories/{aid}/versions/{huge}", headers={"accept": "text/html"})
    assert_swedish_page(r, 400, 404, 422)
    assert_problem(hanna.get(f"/api/v1/advisories/{uuid.uuid4()}/versions/{huge}"), 400, 404, 422)


# --- multipart file names --------------------------------------------------------------------

BAD_DISPOSITIONS = [
    'form-data; name="attachments"; filename=""',
    "form-data; name=\"attachments\"; filename*=UTF-8''plan.pdf",
    "form-data; name=\"attachments\"; filename*=UTF-8''%FF%FEplan.pdf",
    'form-data; name="attachments"; filename="pl\r\nan.pdf"',
    'form-data; name="attachments"; filename="pl\ran.pdf"',
    'form-data; name="attachments"; filename="plan\r\n\r\n.pdf"',
    'form-data; name="attachments";\r\n filename="plan.pdf"',
    'form-data; name="attachments"; filename=""\r\nContent-Type: text/plain; charset=nej',
    'form-data; name="attachments"; filename="\xe5\xe4\xf6.pdf"',
    'form-data; name="attachments"; filename',
    "form-data; name=\"attachments\"; filename*=''",
]


@pytest.mark.parametrize("disposition", BAD_DISPOSITIONS)
def test_odd_file_names_are_refused_or_stored_never_a_crash(
    portal: RunningPortal, jonna: httpx.Client, hanna: httpx.Client, disposition: str
) -> None:
    rid = _report(portal, jonna)
    aid = _advisory(hanna)
    content, ctype = _multipart(disposition)
    headers = {"content-type": ctype}
    for client, path in (
        (jonna, f"/api/v1/reports/{rid}/attachments"),
        (hanna, f"/api/v1/advisories/{aid}/attachments"),
    ):
        r = client.post(path, content=content, headers=headers)
        if r.status_code != 201:
            assert_problem(r, 400, 413, 415, 422)

    csrf = jonna.headers["X-CSRFToken"]
    form, ctype = _multipart(
        disposition,
        extra=(
            b"--jourpost-fuzz-boundary\r\n"
            b'Content-Disposition: form-data; name="_csrf_token"\r\n\r\n' + csrf.encode() + b"\r\n"
        ),
    )
    html = {"content-type": ctype, "accept": "text/html"}
    r = jonna.post(f"/reports/{rid}/attachments", content=form, headers=html)
    if r.status_code != 303:
        assert_swedish_page(r, 400, 413, 415, 422)
    r = hanna.post(f"/advisories/{aid}/attachments", content=form, headers=html)
    if r.status_code != 303:
        assert_swedish_page(r, 400, 413, 415, 422)


def test_report_form_without_the_file_field_is_a_swedish_422(
    portal: RunningPortal, jonna: httpx.Client
) -> None:
    rid = _report(portal, jonna)
    csrf = jonna.headers["X-CSRFToken"]
    r = jonna.post(
        f"/reports/{rid}/attachments",
        files={"_csrf_token": (None, csrf)},
        headers={"accept": "text/html"},
    )
    assert_swedish_page(r, 422)
    r = jonna.post(f"/reports/{rid}/attachments", data={"_csrf_token": csrf})
    assert_swedish_page(r, 400, 415, 422)


def test_at_most_ten_files_per_upload(
    portal: RunningPortal, jonna: httpx.Client, hanna: httpx.Client
) -> None:
    from tests.portal.advisories.helpers import pdf_bytes

    rid, aid = _report(portal, jonna), _advisory(hanna)
    eleven = [
        ("attachments", (f"del-{i}.pdf", pdf_bytes(f"Del {i}"), "application/pdf"))
        for i in range(11)
    ]
    for client, path in (
        (jonna, f"/api/v1/reports/{rid}/attachments"),
        (hanna, f"/api/v1/advisories/{aid}/attachments"),
    ):
        body = assert_problem(client.post(path, files=eleven), 422)
        assert body["errors"] == [
            {"field": "attachments", "detail": "Du kan bifoga högst 10 filer åt gången."}
        ]
        assert client.post(path, files=eleven[:10]).status_code == 201
    csrf = {"_csrf_token": (None, jonna.headers["X-CSRFToken"])}
    page = jonna.post(
        f"/reports/{rid}/attachments",
        files=[*csrf.items(), *eleven],
        headers={"accept": "text/html"},
    )
    assert_swedish_page(page, 422)
    assert "Du kan bifoga högst 10 filer åt gången." in page.text


def test_a_multipart_body_to_a_json_endpoint_is_the_clients_mistake(portal: RunningPortal) -> None:
    """It was 500 ("stream consumed": the form parser had read the body already)."""
    client = client_as(portal.url, portal.settings, JONNA)
    for path in ("/api/v1/lookup", "/drafts/report-new"):
        r = client.post(path, files=[("x", ("a.pdf", b"%PDF-1.7", "application/pdf"))])
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
