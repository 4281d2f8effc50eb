"""Full logins through the development identity provider, served on loopback by uvicorn."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from auth.devidp import DevIdpClient, DevIdpConfig, DevIdpRefused, create_dev_idp
from auth.errors import LoginRejected, ProviderUnavailable
from auth.oidc import OIDCProviderConfig, RelyingParty
from tests.auth.conftest import CLIENT_ID, JONNA, OLOF, REDIRECT_URI, Provider, callback_params
from tests.servers.forms import form_with_field

MakeRp = Callable[[OIDCProviderConfig], RelyingParty]


async def submit_login(
    browser: httpx.AsyncClient, page: httpx.Response, pnr: str, action: str = "login"
) -> httpx.Response:
    """Fill in the simulator's form as a user would and post it."""
    assert page.status_code == 200, page.text
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    data = dict(form.fields)
    data["personal_identity_number"] = pnr
    data["action"] = action
    return await browser.post(form.action, data=data)


async def test_full_login_yields_the_verified_person(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jourpost")
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    # pushed (RFC 9126): the URL holds only the client and the handle of the pushed request
    assert url.startswith(dev_idp.issuer + "/authorize?client_id=")
    assert "request_uri=" in url and "code_challenge" not in url and "code_verifier" not in url
    page = await browser.get(url)
    assert page.status_code == 200
    assert "BankID-simulator — endast för utveckling" in page.text
    assert 'lang="sv"' in page.text and "<script" not in page.text
    assert (
        '<label for="pnr">' in page.text and 'id="pnr" name="personal_identity_number"' in page.text
    )
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'

    answer = await submit_login(browser, page, JONNA.personal_identity_number)
    assert answer.status_code == 303
    params = callback_params(answer)
    assert params["iss"] == dev_idp.issuer and params["state"] == pending.state

    identity = await rp.complete(params, type(pending).from_dict(pending.to_dict()))
    assert identity.personal_identity_number == JONNA.personal_identity_number
    assert (identity.given_name, identity.family_name, identity.name) == (
        "Jonna",
        "Jourström",
        "Jonna Jourström",
    )
    assert identity.issuer == dev_idp.issuer
    assert identity.subject and JONNA.personal_identity_number not in identity.subject
    assert identity.acr == "http://id.elegnamnden.se/loa/1.0/loa3"
    assert abs(identity.auth_time.timestamp() - time.time()) < 30
    assert identity.user_signature is None
    ours = [r for r in caplog.records if r.name.startswith("jourpost")]
    for record in ours:  # no personal data or tokens in any log line of ours
        text = record.getMessage()
        assert JONNA.personal_identity_number not in text and "Jourström" not in text
        assert params["code"] not in text


async def test_the_same_person_keeps_the_same_subject_and_other_persons_differ(
    dev_idp: Provider, make_rp: MakeRp
) -> None:
    rp = make_rp(dev_idp.config())
    subjects = []
    for person in (JONNA, OLOF, JONNA):
        async with httpx.AsyncClient(follow_redirects=False) as browser:
            url, pending = await rp.begin()
            answer = await submit_login(browser, await browser.get(url), person[0])
            subjects.append((await rp.complete(callback_params(answer), pending)).subject)
    assert subjects[0] == subjects[2] != subjects[1]


async def test_single_sign_on_is_silent_but_prompt_login_always_shows_the_page(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    first = await submit_login(browser, await browser.get(url), OLOF[0])
    await rp.complete(callback_params(first), pending)

    url, pending = await rp.begin()  # same browser session: no page, straight back
    silent = await browser.get(url)
    assert silent.status_code == 302
    await rp.complete(callback_params(silent), pending)

    url, pending = await rp.begin(prompt="login")
    page = await browser.get(url)
    assert page.status_code == 200 and "personal_identity_number" in page.text
    answer = await submit_login(browser, page, OLOF[0])
    identity = await rp.complete(callback_params(answer), pending)
    assert identity.auth_time.timestamp() >= pending.created_at - 1


async def test_max_age_forces_a_new_login_once_the_session_is_older(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    await rp.complete(
        callback_params(await submit_login(browser, await browser.get(url), OLOF[0])), pending
    )
    url, _ = await rp.begin(max_age=3600)
    assert (await browser.get(url)).status_code == 302
    await asyncio.sleep(1.1)
    url, _ = await rp.begin(max_age=0)
    assert (await browser.get(url)).status_code == 200


async def test_login_hint_preselects_the_person(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, _ = await rp.begin(login_hint=OLOF[0])
    page = await browser.get(url)
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    assert form.fields["personal_identity_number"] == OLOF[0]
    assert 'aria-current="true">Olof Ordén' in page.text
    assert 'aria-current="true">Jonna' not in page.text


async def test_invalid_personnummer_is_refused_on_the_page(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, _ = await rp.begin()
    page = await browser.get(url)
    for bad in ("197803129828", "7803129829", "abc"):
        answer = await submit_login(browser, page, bad)
        assert answer.status_code == 422
        assert 'aria-invalid="true"' in answer.text and "giltigt personnummer" in answer.text


async def test_cancel_is_a_rejected_login_with_the_provider_error(
    dev_idp: Provider,
    make_rp: MakeRp,
    browser: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    answer = await submit_login(browser, await browser.get(url), "", action="cancel")
    with pytest.raises(LoginRejected) as info:
        await rp.complete(callback_params(answer), pending)
    assert info.value.reason == "provider_error"
    assert info.value.provider_error == "access_denied"
    assert "provider_error" in caplog.text


async def test_sign_request_shows_the_message_and_returns_a_user_signature(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    document = b"%PDF-1.7 beslut 6 \xc2\xa7 LVU"
    message = "Beslut om omedelbart omhändertagande enligt 6 § LVU"
    url, pending = await rp.begin(
        prompt="login",
        sign_request={
            "tbs_data": base64.b64encode(document).decode(),
            "sign_message": base64.b64encode(message.encode()).decode(),
        },
    )
    assert pending.sign_request_sent and pending.prompt == "login consent"
    page = await browser.get(url)
    assert f'Du skriver under: <strong class="sign-message">{message}</strong>' in page.text
    assert ">Skriv under<" in page.text
    identity = await rp.complete(
        callback_params(await submit_login(browser, page, OLOF[0])), pending
    )
    assert identity.user_signature is not None
    blob = base64.b64decode(identity.user_signature)
    jwks = KeySet.import_key_set((await browser.get(dev_idp.issuer + "/jwks")).json())
    signed = jws.deserialize_compact(blob, jwks, algorithms=["RS256"])
    payload = json.loads(signed.payload)
    assert payload["sign_message"] == message
    digest = base64.urlsafe_b64encode(hashlib.sha256(document).digest()).rstrip(b"=").decode()
    assert payload["tbs_data_sha256"] == digest
    assert payload["https://id.oidc.se/claim/personalIdentityNumber"] == OLOF[0]
    assert payload["sub"] == identity.subject
    # a signature is never single sign-on: the next plain login shows the page again
    url, _ = await rp.begin()
    assert (await browser.get(url)).status_code == 200


async def test_nonce_binding_is_carried_through_the_id_token(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    binding = hashlib.sha256(b"document").hexdigest()  # what the portal binds: the PDF's digest
    url, pending = await rp.begin(prompt="login", nonce_binding=binding)
    assert pending.nonce.endswith("." + binding)
    answer = await submit_login(browser, await browser.get(url), JONNA[0])
    identity = await rp.complete(callback_params(answer), pending)
    assert identity.claims["nonce"] == pending.nonce and identity.nonce_binding == binding


async def test_state_mismatch_is_rejected(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    _, other = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    with pytest.raises(LoginRejected) as info:
        await rp.complete(params, other)
    assert info.value.reason == "state_mismatch"
    assert "login rejected: state_mismatch" in caplog.text
    with pytest.raises(LoginRejected, match="state_mismatch"):
        await rp.complete({k: v for k, v in params.items() if k != "state"}, pending)
    # the simulator announces RFC 9207 `iss`, so an answer without it is a possible mix-up
    with pytest.raises(LoginRejected, match="issuer_mismatch"):
        await rp.complete({k: v for k, v in params.items() if k != "iss"}, pending)
    with pytest.raises(LoginRejected, match="issuer_mismatch"):
        await rp.complete({**params, "iss": "https://evil.example"}, pending)
    assert (await rp.complete(params, pending)).personal_identity_number == JONNA[0]


async def test_replayed_code_is_refused_by_the_provider(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    await rp.complete(params, pending)
    with pytest.raises(LoginRejected) as info:
        await rp.complete(params, pending)
    assert info.value.reason == "token_exchange_failed"
    assert info.value.provider_error == "invalid_grant"
    assert "token_exchange_failed" in caplog.text


async def test_token_request_without_pkce_verifier_is_refused(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    token_endpoint = (await rp.discover())["token_endpoint"]
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT_URI,
    }
    auth = (CLIENT_ID, dev_idp.client_secret)
    refused = await browser.post(token_endpoint, data=form, auth=auth)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # the code is burnt by the failed attempt: not even the right verifier redeems it now
    late = await browser.post(
        token_endpoint, data={**form, "code_verifier": pending.code_verifier}, auth=auth
    )
    assert late.status_code == 400


async def test_wrong_pkce_verifier_is_refused_through_the_relying_party(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    _, other = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    forged = type(pending).from_dict({**pending.to_dict(), "code_verifier": other.code_verifier})
    with pytest.raises(LoginRejected, match="token_exchange_failed"):
        await rp.complete(params, forged)


async def test_authorization_request_without_pkce_is_refused(
    dev_idp: Provider, browser: httpx.AsyncClient
) -> None:
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "state": "s",
    }
    answer = await browser.get(dev_idp.issuer + "/authorize", params=query)
    assert callback_params(answer)["error"] == "invalid_request"
    unknown = await browser.get(
        dev_idp.issuer + "/authorize", params={**query, "redirect_uri": "https://evil.example/"}
    )
    assert unknown.status_code == 400 and "location" not in unknown.headers


async def test_wrong_client_secret_is_refused(
    dev_idp: Provider,
    make_rp: MakeRp,
    browser: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rp = make_rp(dev_idp.config(client_secret="not-the-secret"))
    with pytest.raises(ProviderUnavailable):  # the pushed request already needs the secret
        await rp.begin()
    assert "pushed authorization request refused: HTTP 401 invalid_client" in caplog.text
    # and without PAR, the token endpoint refuses it
    metadata = dict(await rp.discover())
    metadata.pop("pushed_authorization_request_endpoint")
    monkeypatch.setattr(rp, "_metadata", metadata)
    url, pending = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    with pytest.raises(LoginRejected) as info:
        await rp.complete(params, pending)
    assert info.value.provider_error == "invalid_client"


async def test_client_secret_post_works(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config(token_endpoint_auth_method="client_secret_post"))
    url, pending = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    assert (await rp.complete(params, pending)).personal_identity_number == JONNA[0]


def _config(tmp_path: Path, **kw: object) -> DevIdpConfig:
    return DevIdpConfig(
        issuer="http://127.0.0.1:1/dev-idp",
        clients=[DevIdpClient(CLIENT_ID, "s", [REDIRECT_URI])],
        key_path=str(tmp_path / "k.json"),
        **kw,  # type: ignore[arg-type]
    )


def test_production_flag_refuses_to_build(tmp_path: Path) -> None:
    with pytest.raises(DevIdpRefused, match="production"):
        create_dev_idp(_config(tmp_path, production=True))
    with pytest.raises(DevIdpRefused, match="not enabled"):
        create_dev_idp(_config(tmp_path, enabled=False))
    assert not (tmp_path / "k.json").exists()  # refused before any key is made
    create_dev_idp(_config(tmp_path))
    assert (tmp_path / "k.json").stat().st_mode & 0o077 == 0


def test_signing_key_survives_a_restart(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    kids = []
    for _ in range(2):
        with TestClient(create_dev_idp(_config(tmp_path))) as client:
            kids.append(client.get("/jwks").json()["keys"][0]["kid"])
    assert kids[0] == kids[1]


async def test_a_replayed_code_revokes_the_access_token_issued_from_it(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    params = callback_params(await submit_login(browser, await browser.get(url), JONNA[0]))
    metadata = await rp.discover()
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pending.code_verifier,
    }
    auth = (CLIENT_ID, dev_idp.client_secret)
    first = await browser.post(metadata["token_endpoint"], data=form, auth=auth)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await browser.get(metadata["userinfo_endpoint"], headers=bearer)).status_code == 200
    replay = await browser.post(metadata["token_endpoint"], data=form, auth=auth)
    assert replay.status_code == 400
    assert (await browser.get(metadata["userinfo_endpoint"], headers=bearer)).status_code == 401


def _authorize_query(**extra: str) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile",
        "state": "st",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **extra,
    }


async def test_prompt_none_without_a_session_answers_login_required(
    dev_idp: Provider, browser: httpx.AsyncClient
) -> None:
    answer = await browser.get(
        dev_idp.issuer + "/authorize", params=_authorize_query(prompt="none")
    )
    assert callback_params(answer)["error"] == "login_required"


async def test_single_sign_on_is_not_used_for_another_hinted_person(
    dev_idp: Provider, make_rp: MakeRp, browser: httpx.AsyncClient
) -> None:
    rp = make_rp(dev_idp.config())
    url, pending = await rp.begin()
    await rp.complete(
        callback_params(await submit_login(browser, await browser.get(url), JONNA[0])), pending
    )
    url, _ = await rp.begin(login_hint=JONNA[0])
    assert (await browser.get(url)).status_code == 302
    url, _ = await rp.begin(login_hint=OLOF[0])
    assert (await browser.get(url)).status_code == 200


async def test_sign_request_in_the_spec_object_form_is_shown(
    dev_idp: Provider, browser: httpx.AsyncClient
) -> None:
    message = "Jag intygar 11 § LVU"
    value = json.dumps(
        {
            "tbs_data": base64.b64encode(b"data").decode(),
            "sign_message": {
                "message": {"sv": base64.b64encode(message.encode()).decode()},
                "mime_type": "text/plain",
            },
        }
    )
    query = _authorize_query(
        prompt="login consent", **{"https://id.oidc.se/param/signRequest": value}
    )
    page = await browser.get(dev_idp.issuer + "/authorize", params=query)
    assert (
        page.status_code == 200
        and f'Du skriver under: <strong class="sign-message">{message}<' in page.text
    )
    bad = _authorize_query(**{"https://id.oidc.se/param/signRequest": "{not json"})
    answer = await browser.get(dev_idp.issuer + "/authorize", params=bad)
    assert callback_params(answer)["error"] == "invalid_request"


async def test_sign_message_is_escaped_on_the_page(
    dev_idp: Provider, browser: httpx.AsyncClient
) -> None:
    value = json.dumps(
        {"tbs_data": "ZGF0YQ==", "sign_message": base64.b64encode(b"<script>x</script>").decode()}
    )
    query = _authorize_query(**{"https://id.oidc.se/param/signRequest": value})
    page = await browser.get(dev_idp.issuer + "/authorize", params=query)
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
