"""Signing with the step-up at an independent OpenID provider (npm oidc-provider): it has no
oidc-sweden signRequest support, so the fresh authentication (prompt=login, max_age=0) is bound
to the document through the nonce, and the signature still ends as a valid PAdES-B-LTA."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.conftest import RunningPortal, portal_at_oidc_provider
from tests.portal.decisions.helpers import OLOF, draft_body, jour_client, roster_with_olof


@pytest.fixture
def portal_at_op(database_url: str, tmp_path: Path) -> Iterator[RunningPortal]:
    """The portal logging in at oidc-provider, whose only user is Olof (the chair)."""
    with portal_at_oidc_provider(database_url, tmp_path, user_pnr=OLOF) as portal:
        yield portal


def _through_op(client: httpx.Client, url: str) -> httpx.Response:
    """Follow the provider's headless interaction until our callback, then call it."""
    response = client.get(url)
    for _ in range(15):
        location = response.headers.get("location", "")
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        if "/auth/callback" in location:
            return client.get(location)
        response = client.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


def test_chair_signs_with_step_up_at_oidc_provider(portal_at_op: RunningPortal) -> None:
    portal = portal_at_op
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200

    # Origin: as a browser names the page's origin on its posts (portal.web.origin checks it).
    olof = httpx.Client(
        base_url=portal.url, follow_redirects=False, timeout=30, headers={"Origin": portal.url}
    )
    start = olof.get("/auth/login")
    logged_in = _through_op(olof, start.headers["location"])
    assert logged_in.status_code in (302, 303), logged_in.text
    home = olof.get("/").text
    # The name the administrator registered is kept; the provider's ("Testa Testsson") is shown
    # beside it on the admin page (tests/portal/test_login.py).
    assert "Välkommen, Olof Ordén" in home and "Ordförande" in home

    olof.get("/healthz")
    sign = olof.post(f"/decisions/{d['id']}/sign", data={"_csrf_token": olof.cookies["csrftoken"]})
    assert sign.status_code == 303
    # Pushed (RFC 9126): the URL has no personnummer, prompt or signRequest, only the handle.
    query = parse_qs(urlsplit(sign.headers["location"]).query)
    assert set(query) == {"client_id", "request_uri"} and OLOF not in sign.headers["location"]
    done = _through_op(olof, sign.headers["location"])
    assert done.status_code in (302, 303), done.text
    assert done.headers["location"] == f"/decisions/{d['id']}/sign"
    assert jonna.get(f"/api/v1/decisions/{d['id']}").json()["status"] == "delivered"

    signed = olof.get(f"/decisions/{d['id']}/signed.pdf").content
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    report = asyncio.run(verify_pdf(signed, trust_roots=[root])).to_json()
    assert report["valid"] is True
    assert report["signatures"][0]["personal_identity_number"] == OLOF
