"""The relying party against an independent OpenID provider (npm oidc-provider, real server).

Needs `npm ci --prefix tests/servers/oidc_provider` (CI runs it). Locally, without it, these
tests are skipped with that instruction; under CI (`CI` set) that is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from auth.errors import LoginRejected
from auth.oidc import OIDCProviderConfig, PendingAuth, RelyingParty
from tests.auth.conftest import POST_LOGOUT_URI, REDIRECT_URI, callback_params
from tests.servers.forms import form_with_field, forms
from tests.servers.oidc_provider import OidcProvider, missing_reason, running_oidc_provider

MakeRp = Callable[[OIDCProviderConfig], RelyingParty]
CLIENT_ID = "jourpost-op-test"
TEST_USER = "196901159803"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"


@pytest.fixture(scope="module", autouse=True)
def _need_node_modules() -> None:
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"oidc-provider is required under CI: {reason}")
        pytest.skip(reason)


def _start(**kw: Any) -> Iterator[OidcProvider]:
    with running_oidc_provider(
        client_id=CLIENT_ID,
        client_secret=secrets.token_urlsafe(32),
        redirect_uri=REDIRECT_URI,
        user_pnr=TEST_USER,
        **kw,
    ) as op:
        yield op


@pytest.fixture(scope="module")
def op() -> Iterator[OidcProvider]:
    """The provider as configured by default: scope claims in userinfo only."""
    yield from _start()


def config(op: OidcProvider, **kw: Any) -> OIDCProviderConfig:
    return OIDCProviderConfig(
        issuer=op.issuer,
        client_id=op.client_id,
        client_secret=op.client_secret,
        redirect_uri=op.redirect_uri,
        **kw,
    )


async def walk(browser: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Follow the provider's redirects (headless interaction) back to our callback."""
    response = await browser.get(url)
    for _ in range(12):
        location = response.headers.get("location", "")
        if response.status_code in (302, 303) and location.startswith(REDIRECT_URI):
            return callback_params(response)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        response = await browser.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


async def test_full_login_with_claims_from_userinfo(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(config(op))
    url, pending = await rp.begin()
    params = await walk(browser, url)
    identity = await rp.complete(params, PendingAuth.from_dict(pending.to_dict()))
    assert identity.personal_identity_number == TEST_USER
    assert identity.personal_identity_number not in identity.subject
    assert (identity.given_name, identity.family_name) == ("Testa", "Testsson")
    assert identity.acr == "http://id.elegnamnden.se/loa/1.0/loa3"
    assert abs(identity.auth_time.timestamp() - time.time()) < 30


async def test_full_login_with_claims_in_the_id_token(
    make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    for op in _start(claims_in_id_token=True):
        rp = make_rp(config(op))
        url, pending = await rp.begin()
        identity = await rp.complete(await walk(browser, url), pending)
        assert identity.personal_identity_number == TEST_USER


async def test_login_hint_and_prompt_login_give_a_fresh_authentication(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(config(op))
    url, pending = await rp.begin(login_hint="197104309831")
    first = await rp.complete(await walk(browser, url), pending)
    assert first.personal_identity_number == "197104309831"
    await asyncio.sleep(1.1)  # auth_time has one-second resolution
    url, pending = await rp.begin(prompt="login", max_age=0, login_hint="197104309831")
    again = await rp.complete(await walk(browser, url), pending)
    assert again.auth_time > first.auth_time
    assert again.subject == first.subject


async def test_state_mismatch_is_rejected(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    rp = make_rp(config(op))
    url, _ = await rp.begin()
    _, other = await rp.begin()
    with pytest.raises(LoginRejected) as info:
        await rp.complete(await walk(browser, url), other)
    assert info.value.reason == "state_mismatch"
    assert "login rejected: state_mismatch" in caplog.text


async def test_replayed_code_is_refused(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    rp = make_rp(config(op))
    url, pending = await rp.begin()
    params = await walk(browser, url)
    await rp.complete(params, pending)
    with pytest.raises(LoginRejected) as info:
        await rp.complete(params, pending)
    assert info.value.reason == "token_exchange_failed"
    assert info.value.provider_error == "invalid_grant"
    assert "login rejected: token_exchange_failed" in caplog.text


async def test_token_request_without_code_verifier_is_refused(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(config(op))
    url, _ = await rp.begin()
    params = await walk(browser, url)
    token_endpoint = (await rp.discover())["token_endpoint"]
    answer = await browser.post(
        token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
        },
        auth=(op.client_id, op.client_secret),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] in ("invalid_grant", "invalid_request")


async def test_authorization_request_without_pkce_is_refused(
    op: OidcProvider, browser: httpx.AsyncClient
) -> None:
    query = {
        "client_id": op.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "state": "s",
    }
    answer = await browser.get(f"{op.issuer}/auth", params=query)
    params = callback_params(answer)
    assert params["error"] == "invalid_request" and "PKCE" in params["error_description"]


async def test_too_low_acr_is_rejected(
    make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    for op in _start(acr=LOA2):
        rp = make_rp(config(op))
        url, pending = await rp.begin()
        with pytest.raises(LoginRejected) as info:
            await rp.complete(await walk(browser, url), pending)
        assert info.value.reason == "acr_not_accepted"
        assert "login rejected: acr_not_accepted" in caplog.text


# -- pushed authorization requests and RP-initiated logout (issue 11, items 1 and 9) -------------

OTHER_USER = "197104309831"


@pytest.fixture(scope="module")
def op_form() -> Iterator[OidcProvider]:
    """The provider with a login form (it shows whether it asks) and logout registered."""
    yield from _start(post_logout_redirect_uri=POST_LOGOUT_URI, login_form=True)


async def until_login_form_or_callback(browser: httpx.AsyncClient, url: str) -> httpx.Response:
    """Follow the provider's redirects; stop at its login form (200) or at our callback."""
    response = await browser.get(url)
    for _ in range(12):
        location = response.headers.get("location", "")
        if response.status_code == 200 or location.startswith(REDIRECT_URI):
            return response
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        response = await browser.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


async def log_in_with_form(
    browser: httpx.AsyncClient, page: httpx.Response, pnr: str
) -> dict[str, str]:
    """Type the personnummer into the provider's form, then walk on to our callback.

    When another person was logged in at the provider, it ends that session first with a page
    that submits itself (script); a browser runs it, the test posts the form the same way.
    """
    assert page.status_code == 200, page.text[:300]
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    response = await browser.post(form.action, data={"personal_identity_number": pnr})
    for _ in range(12):
        location = response.headers.get("location", "")
        if location.startswith(REDIRECT_URI):
            return callback_params(response)
        if response.status_code == 200 and "document.forms[0].submit()" in response.text:
            [auto] = forms(response.text, str(response.url))
            response = await browser.post(auto.action, data=auto.fields)
            continue
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        response = await browser.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


async def test_login_hint_is_pushed_never_in_the_url(
    op: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(config(op))
    assert (await rp.discover()).get("pushed_authorization_request_endpoint")
    url, pending = await rp.begin(prompt="login", max_age=0, login_hint=OTHER_USER)
    assert OTHER_USER not in url and "login_hint" not in url
    assert set(dict(parse_qsl(urlsplit(url).query))) == {"client_id", "request_uri"}
    identity = await rp.complete(await walk(browser, url), pending)
    assert identity.personal_identity_number == OTHER_USER  # the pushed hint reached the provider


async def test_logout_ends_the_providers_session_and_the_next_login_asks_again(
    op_form: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(config(op_form, post_logout_redirect_uri=POST_LOGOUT_URI))
    url, pending = await rp.begin()
    first = await rp.complete(
        await log_in_with_form(
            browser, await until_login_form_or_callback(browser, url), TEST_USER
        ),
        pending,
    )
    assert first.personal_identity_number == TEST_USER
    url, _ = await rp.begin()
    silent = await until_login_form_or_callback(browser, url)
    assert silent.status_code in (302, 303)  # single sign-on answers at once: why logout matters

    end = await rp.end_session_url(first.id_token)
    assert end is not None and end.startswith(op_form.issuer + "/session/end?")
    query = dict(parse_qsl(urlsplit(end).query))
    # claims are in userinfo here, so the ID token is safe to show the provider in the URL
    assert query["id_token_hint"] == first.id_token and TEST_USER not in end
    assert query["post_logout_redirect_uri"] == POST_LOGOUT_URI
    confirm = await browser.get(end)
    assert confirm.status_code == 200, confirm.text[:300]
    [form] = forms(confirm.text, str(confirm.url))
    # oidc-provider's "Yes, sign me out" button sits outside the form (form="op.logoutForm");
    # a browser sends the clicked button's name and value with the form's fields.
    done = await browser.post(form.action, data={**form.fields, "logout": "yes"})
    assert done.status_code in (302, 303) and done.headers["location"] == POST_LOGOUT_URI

    url, pending = await rp.begin()
    page = await until_login_form_or_callback(browser, url)
    assert page.status_code == 200 and "personal_identity_number" in page.text
    other = await rp.complete(await log_in_with_form(browser, page, OTHER_USER), pending)
    assert other.personal_identity_number == OTHER_USER and other.subject != first.subject


async def test_prompt_login_makes_the_provider_ask_even_without_logout(
    op_form: OidcProvider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    """What the portal sends after a logout, for providers that ignore the logout."""
    rp = make_rp(config(op_form))
    url, pending = await rp.begin()
    await rp.complete(
        await log_in_with_form(
            browser, await until_login_form_or_callback(browser, url), TEST_USER
        ),
        pending,
    )
    url, pending = await rp.begin(prompt="login", max_age=0)
    page = await until_login_form_or_callback(browser, url)
    assert page.status_code == 200 and "personal_identity_number" in page.text
    other = await rp.complete(await log_in_with_form(browser, page, OTHER_USER), pending)
    assert other.personal_identity_number == OTHER_USER
