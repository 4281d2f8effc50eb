"""Pushed authorization requests (RFC 9126) and RP-initiated logout at the dev identity provider.

A personnummer never travels in a URL (DESIGN.md §5): `login_hint` and the signRequest are pushed
to the provider over the back channel and the browser carries only `client_id` and an opaque
`request_uri`. Logging out ends the provider's single sign-on session too, so the next person at
a shared jour workstation has to authenticate.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from auth.oidc import OIDCProviderConfig, RelyingParty
from tests.auth.conftest import (
    CLIENT_ID,
    JONNA,
    OLOF,
    POST_LOGOUT_URI,
    REDIRECT_URI,
    Provider,
    callback_params,
)
from tests.auth.test_devidp import submit_login
from tests.servers.forms import form_with_field

MakeRp = Callable[[OIDCProviderConfig], RelyingParty]
SIGN_REQUEST = {
    "tbs_data": base64.b64encode(b"\x01" * 32).decode(),
    "sign_message": base64.b64encode(b"Jag undertecknar beslutet").decode(),
}


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def test_login_hint_and_sign_request_are_pushed_not_put_in_the_url(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    assert (await rp.discover())["pushed_authorization_request_endpoint"] == (
        dev_idp.issuer + "/par"
    )
    url, pending = await rp.begin(
        prompt="login", max_age=0, login_hint=OLOF[0], sign_request=SIGN_REQUEST
    )
    assert OLOF[0] not in url and "signRequest" not in url and "login_hint" not in url
    query = _query(url)
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    page = await browser.get(url)
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    assert form.fields["personal_identity_number"] == OLOF[0]  # the hint arrived, pushed
    assert "Jag undertecknar beslutet" in page.text  # and so did the signRequest
    identity = await rp.complete(
        callback_params(await submit_login(browser, page, OLOF[0])), pending
    )
    assert identity.personal_identity_number == OLOF[0] and identity.user_signature


async def test_a_pushed_request_is_single_use_and_bound_to_its_client(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, _ = await rp.begin(login_hint=JONNA[0])
    request_uri = _query(url)["request_uri"]
    authorize = dev_idp.issuer + "/authorize"
    other = await browser.get(authorize, params={"client_id": "other", "request_uri": request_uri})
    assert other.status_code == 400 and "location" not in other.headers
    assert (await browser.get(url)).status_code == 200
    again = await browser.get(url)
    assert again.status_code == 400 and "location" not in again.headers
    made_up = await browser.get(
        authorize,
        params={"client_id": CLIENT_ID, "request_uri": "urn:ietf:params:oauth:request_uri:x"},
    )
    assert made_up.status_code == 400


async def test_the_par_endpoint_authenticates_the_client_and_checks_the_request(
    dev_idp: Provider, browser: httpx.AsyncClient
) -> None:
    par = dev_idp.issuer + "/par"
    request = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "login_hint": JONNA[0],
    }
    wrong = await browser.post(par, data=request, auth=(CLIENT_ID, "not-the-secret"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    auth = (CLIENT_ID, dev_idp.client_secret)
    no_pkce = {k: v for k, v in request.items() if not k.startswith("code_challenge")}
    bad = await browser.post(par, data=no_pkce, auth=auth)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    evil = await browser.post(
        par, data={**request, "redirect_uri": "https://evil.example/"}, auth=auth
    )
    assert evil.status_code == 400
    ok = await browser.post(par, data=request, auth=auth)
    assert ok.status_code == 201 and ok.headers["cache-control"] == "no-store"
    assert ok.json()["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 0 < ok.json()["expires_in"] <= 600


async def test_a_provider_without_par_gets_no_login_hint(
    dev_idp: Provider, make_rp: MakeRp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the provider cannot take a pushed request the hint is left out (the person types
    their number) rather than put in the query string."""
    rp = make_rp(dev_idp.config())
    metadata = dict(await rp.discover())
    metadata.pop("pushed_authorization_request_endpoint")
    monkeypatch.setattr(rp, "_metadata", metadata)
    url, _ = await rp.begin(prompt="login", login_hint=OLOF[0])
    assert OLOF[0] not in url and "login_hint" not in _query(url)
    assert _query(url)["prompt"] == "login"


async def test_logout_ends_single_sign_on_at_the_provider(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    answer = await submit_login(browser, await browser.get(url), JONNA[0])
    identity = await rp.complete(callback_params(answer), pending)
    assert identity.id_token
    url, _ = await rp.begin()
    assert (await browser.get(url)).status_code == 302  # single sign-on: no page

    end = await rp.end_session_url(identity.id_token)
    assert end is not None and end.startswith(dev_idp.issuer + "/logout?")
    # This provider's ID token holds the personnummer: it stays out of the URL.
    assert _query(end) == {"client_id": CLIENT_ID, "post_logout_redirect_uri": POST_LOGOUT_URI}
    done = await browser.get(end)
    assert done.status_code == 303 and done.headers["location"] == POST_LOGOUT_URI

    url, pending = await rp.begin()
    page = await browser.get(url)
    assert page.status_code == 200 and "personal_identity_number" in page.text
    other = await rp.complete(callback_params(await submit_login(browser, page, OLOF[0])), pending)
    assert other.personal_identity_number == OLOF[0]


async def test_logout_redirects_only_to_a_registered_uri(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    answer = await submit_login(browser, await browser.get(url), JONNA[0])
    identity = await rp.complete(callback_params(answer), pending)
    assert identity.id_token
    logout = dev_idp.issuer + "/logout"
    hint = {"id_token_hint": identity.id_token, "post_logout_redirect_uri": POST_LOGOUT_URI}
    for uri in ("https://evil.example/", REDIRECT_URI):
        refused = await browser.get(logout, params={**hint, "post_logout_redirect_uri": uri})
        assert refused.status_code == 400 and "location" not in refused.headers
    no_client = await browser.get(logout, params={"post_logout_redirect_uri": POST_LOGOUT_URI})
    assert no_client.status_code == 400
    forged = await browser.get(logout, params={**hint, "id_token_hint": identity.id_token[:-4]})
    assert forged.status_code == 400
    other = await browser.get(logout, params={**hint, "client_id": "other"})
    assert other.status_code == 400
    url, _ = await rp.begin()
    assert (await browser.get(url)).status_code == 302  # refused requests logged nobody out
    # POST works too (the spec requires both), with the hint and the state returned
    bye = await browser.post(logout, data={**hint, "state": "s1"})
    assert bye.status_code == 303 and bye.headers["location"] == POST_LOGOUT_URI + "&state=s1"
    url, _ = await rp.begin()
    assert (await browser.get(url)).status_code == 200
    # without a target the provider says so itself
    page = await browser.get(logout)
    assert page.status_code == 200 and "utloggad" in page.text
