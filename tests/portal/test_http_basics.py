"""Probes, schema, error shapes and security headers over real HTTP."""

from __future__ import annotations

import httpx

from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as


def test_health_and_readiness(portal: RunningPortal) -> None:
    assert httpx.get(f"{portal.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{portal.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "object_store": "ok"}


def test_openapi_schema_is_served_without_external_assets(portal: RunningPortal) -> None:
    r = httpx.get(f"{portal.url}/schema/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert "/healthz" in schema["paths"]


def test_landing_page_is_swedish_with_security_headers(portal: RunningPortal) -> None:
    r = httpx.get(f"{portal.url}/")
    assert r.status_code == 200
    assert '<html lang="sv">' in r.text
    assert "Logga in" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in r.headers  # plain http in tests
    assert "<script>" not in r.text and "style=" not in r.text


def test_unknown_api_path_is_problem_details(portal: RunningPortal) -> None:
    r = httpx.get(f"{portal.url}/api/v1/finns-inte")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 404 and body["title"]


def test_unknown_page_is_a_swedish_error_page(portal: RunningPortal) -> None:
    r = httpx.get(f"{portal.url}/finns-inte", headers={"accept": "text/html"})
    assert r.status_code == 404
    assert "Sidan finns inte" in r.text


def test_protected_page_redirects_to_login(portal: RunningPortal) -> None:
    r = httpx.get(f"{portal.url}/admin/users", follow_redirects=False)
    assert r.status_code in (302, 303, 307)
    assert r.headers["location"] == "/auth/login?next=/admin/users"


def test_post_without_csrf_token_is_refused(portal: RunningPortal) -> None:
    r = httpx.post(f"{portal.url}/auth/logout", headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "Formuläret har gått ut" in r.text


SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _assert_security_headers(r: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert value in r.headers.get(name, ""), (r.request.method, r.request.url, r.status_code)


def test_every_answer_carries_the_security_headers(portal: RunningPortal) -> None:
    """Router-made 404/405, 413, errors of mounted apps and 500s too, not only handled routes."""
    from litestar import get

    @get("/test-only/crash", include_in_schema=False)
    async def crash() -> None:
        raise RuntimeError("a genuine server bug")

    portal.app.register(crash)
    url = portal.url
    jonna = client_as(url, portal.settings, "197803129829")
    html, api = {"accept": "text/html"}, {"accept": "application/json"}
    answers = [
        httpx.get(f"{url}/finns-inte", headers=html),  # router 404, page
        httpx.get(f"{url}/api/v1/finns-inte"),  # router 404, problem details
        httpx.get(f"{url}/static/finns-inte.css"),
        httpx.get(f"{url}/dev-idp/finns-inte"),  # the mounted identity provider
        httpx.delete(f"{url}/healthz"),  # router 405
        httpx.put(f"{url}/", headers=html),
        httpx.request("PATCH", f"{url}/api/v1/lookup", headers=api),
        jonna.post("/api/v1/lookup", content=b"x" * (26 * 1024 * 1024)),  # 413
        httpx.get(f"{url}/test-only/crash", headers=html),  # 500
        httpx.get(f"{url}/%2e%2e/%2e%2e/etc/passwd"),
        httpx.get(f"{url}/healthz"),
    ]
    crashed = httpx.get(f"{url}/test-only/crash", headers=api)
    assert {r.status_code for r in answers} >= {200, 404, 405, 413, 500}
    for r in [*answers, crashed]:
        _assert_security_headers(r)
    assert crashed.status_code == 500 and "genuine" not in crashed.text
    assert crashed.headers["content-type"].startswith("application/problem+json")
    jonna.close()


def test_schema_documents_security_schemes_and_problem_details(portal: RunningPortal) -> None:
    schema = httpx.get(f"{portal.url}/schema/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie"}
    assert schemes["session"]["name"] == "jp_session"  # __Host-jp_session on https
    assert schemes["csrfHeader"]["in"] == "header"
    assert schemes["csrfHeader"]["name"] == "X-CSRFToken"
    assert schemes["csrfCookie"]["name"] == "csrftoken"
    api = {p: item for p, item in schema["paths"].items() if p.startswith("/api/")}
    assert len(api) > 25
    for path, item in api.items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            unsafe = method != "get"
            expected = {"session", "csrfCookie", "csrfHeader"} if unsafe else {"session"}
            assert [set(r) for r in op["security"]] == [expected], (method, path)
            wanted = {"400", "401", "403", "404", "422"} | ({"409", "413"} if unsafe else set())
            assert wanted <= set(op["responses"]), (method, path)
            for status, answer in op["responses"].items():
                if status >= "400":
                    assert list(answer["content"]) == ["application/problem+json"], (path, status)
    lookup = schema["paths"]["/api/v1/lookup"]["post"]["responses"]
    assert lookup["429"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetails"
    }
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert "503" in schema["paths"]["/readyz"]["get"]["responses"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_unsafe_requests_from_another_origin_are_refused(portal: RunningPortal) -> None:
    """A second CSRF layer: Origin (or Sec-Fetch-Site) must be the portal's own."""
    jonna = client_as(portal.url, portal.settings, "197803129829")  # sends the CSRF header
    csrf = jonna.headers["X-CSRFToken"]
    body = {"personal_identity_number": "201103059893"}
    port = portal.url.rsplit(":", 1)[1]

    def lookup(headers: dict[str, str]) -> httpx.Response:
        return jonna.post("/api/v1/lookup", json=body, headers=headers)

    for foreign in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": f"http://localhost:{port}"},
        {"origin": f"http://127.0.0.1:{int(port) + 1}"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "same-origin", "origin": "https://evil.example"},
    ):
        r = lookup(foreign)
        assert r.status_code == 403, foreign
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "annan webbplats" in r.json()["detail"]
    assert lookup({"origin": portal.url}).status_code == 200
    assert lookup({"origin": portal.url.upper().replace("HTTP", "http")}).status_code == 200
    assert lookup({"sec-fetch-site": "same-origin"}).status_code == 200
    # A browser's own post under Referrer-Policy: no-referrer says Origin: null.
    assert lookup({"origin": "null", "sec-fetch-site": "same-origin"}).status_code == 200
    assert lookup({}).status_code == 200  # a case system: no Origin, but the CSRF header

    # A form post (token in the body): a browser names its origin; without it, refused.
    form = {"_csrf_token": csrf, **body}
    page = {"accept": "text/html"}
    del jonna.headers["X-CSRFToken"]
    refused = jonna.post("/lookup", data=form, headers=page)
    assert refused.status_code == 403 and "Formuläret har gått ut" in refused.text
    foreign = jonna.post("/lookup", data=form, headers={**page, "origin": "https://evil.example"})
    assert foreign.status_code == 403 and "annan webbplats" in foreign.text
    assert '<html lang="sv">' in foreign.text
    ok = jonna.post("/lookup", data=form, headers={**page, "origin": portal.url})
    assert ok.status_code == 200, ok.text[:300]
    jonna.close()


def test_dependencies_are_resolved_one_at_a_time_in_dependency_order(
    portal: RunningPortal,
) -> None:
    """`resolve_one_at_a_time` (portal.web.deps): every route's dependencies in batches of one
    (no task group per request), each after the dependencies it needs; none lost."""
    from litestar.routes import HTTPRoute

    checked = 0
    for route in portal.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, kwargs_model in route.route_handler_map.values():
            batches = kwargs_model.dependency_batches
            assert all(len(batch) == 1 for batch in batches), handler
            order = [dependency.key for batch in batches for dependency in batch]
            assert len(order) == len(set(order)), handler
            for position, batch in enumerate(batches):
                for dependency in batch:
                    for needed in dependency.dependencies:
                        assert needed.key in order[:position], (handler, dependency.key)
            checked += "principal" in order and "db" in order
    assert checked > 10  # the pages of logged-in users
