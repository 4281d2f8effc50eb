"""Probes, schema, error shapes and security headers over real HTTP."""

from __future__ import annotations

import httpx

from tests.portal.conftest import RunningPortal


def test_health_and_readiness(portal: RunningPortal) -> None:
    assert httpx.get(f"{portal.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{portal.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "object_store": "ok"}


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
