"""Every ID token check of the relying party, with tokens forged by a test key.

A real provider never issues these tokens, so the provider side here is an in-process fake
(httpx.MockTransport serving discovery, JWKS, token and userinfo); the relying party's code path
is the real one, from `begin()` through `complete()`, with real signatures.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from auth.claims import ClaimMapping
from auth.errors import LoginRejected, ProviderUnavailable
from auth.oidc import OIDCProviderConfig, PendingAuth, RelyingParty

ISSUER = "https://op.test"
CLIENT_ID = "jourpost"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
DROP = object()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Forger:
    """A fake provider that answers the token request with whatever ID token a test wants."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.published = [self.key]
        self.jwks_fetches = 0
        self.nonce = ""
        self.claims: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self.raw_token: str | None = None
        self.sign_key: Any = self.key
        self.userinfo: dict[str, Any] = {}
        self.userinfo_requests = 0
        self.discovery_issuer = ISSUER
        self.after_first_jwks: list[RSAKey] | None = None

    def id_token(self) -> str:
        if self.raw_token is not None:
            return self.raw_token
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "subject-1",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "nonce": self.nonce,
            "acr": LOA3,
            PNR_CLAIM: "197803129829",
            "given_name": "Jonna",
        }
        claims.update(self.claims)
        claims = {k: v for k, v in claims.items() if v is not DROP}
        header = {"alg": "RS256", "kid": "k1", **self.header}
        return jwt.encode(header, claims, self.sign_key)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.discovery_issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "userinfo_endpoint": f"{ISSUER}/userinfo",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
                },
            )
        if path == "/jwks":
            self.jwks_fetches += 1
            keys = self.published
            if self.jwks_fetches > 1 and self.after_first_jwks is not None:
                keys = self.after_first_jwks
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in keys]})
        if path == "/token":
            form = dict(parse_qsl(request.content.decode()))
            assert form["code_verifier"] and form["code"] == "the-code"
            return httpx.Response(
                200,
                json={"access_token": "at", "token_type": "Bearer", "id_token": self.id_token()},
            )
        if path == "/userinfo":
            assert request.headers["authorization"] == "Bearer at"
            self.userinfo_requests += 1
            return httpx.Response(200, json={"sub": "subject-1", **self.userinfo})
        return httpx.Response(404)


@pytest.fixture
def forger() -> Forger:
    return Forger()


@pytest.fixture
async def make_forged_rp(
    forger: Forger,
) -> AsyncIterator[Callable[..., RelyingParty]]:
    clients: list[Any] = []

    def make(**overrides: Any) -> RelyingParty:
        config = replace(
            OIDCProviderConfig(
                issuer=ISSUER,
                client_id=CLIENT_ID,
                client_secret="secret-of-the-client-0123456789",
                redirect_uri="https://portal.test/auth/callback",
            ),
            **overrides,
        )
        client = AsyncOAuth2Client(
            client_id=config.client_id,
            client_secret=config.client_secret,
            redirect_uri=config.redirect_uri,
            code_challenge_method="S256",
            transport=httpx.MockTransport(forger.handle),
        )
        clients.append(client)
        return RelyingParty(config, http_client=client)

    yield make
    for client in clients:
        await client.aclose()


async def login(rp: RelyingParty, forger: Forger, **begin: Any) -> tuple[PendingAuth, Any]:
    url, pending = await rp.begin(**begin)
    forger.nonce = dict(parse_qsl(urlsplit(url).query))["nonce"]
    return pending, await rp.complete({"state": pending.state, "code": "the-code"}, pending)


async def rejected(rp: RelyingParty, forger: Forger, **begin: Any) -> str:
    with pytest.raises(LoginRejected) as info:
        await login(rp, forger, **begin)
    return info.value.reason


async def test_a_correct_token_is_accepted(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.userinfo = {"family_name": "Jourström", "given_name": "Other"}
    _, identity = await login(make_forged_rp(), forger)
    assert identity.personal_identity_number == "197803129829"
    assert identity.given_name == "Jonna"  # the ID token wins over userinfo
    assert identity.family_name == "Jourström"  # userinfo fills what the ID token lacks


NOW = int(time.time())


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "another-nonce"}, "nonce_mismatch"),
        ({"nonce": DROP}, "nonce_mismatch"),
        ({"aud": "someone-else"}, "audience_mismatch"),
        ({"aud": [CLIENT_ID, "someone-else"]}, "azp_mismatch"),
        ({"aud": [CLIENT_ID, "someone-else"], "azp": "someone-else"}, "azp_mismatch"),
        ({"iss": "https://evil.test"}, "issuer_mismatch"),
        ({"exp": NOW - 3600}, "token_expired"),
        ({"exp": DROP}, "token_expired"),
        ({"iat": NOW + 3600}, "issued_in_future"),
        ({"nbf": NOW + 3600}, "not_yet_valid"),
        ({"acr": "http://id.elegnamnden.se/loa/1.0/loa2"}, "acr_not_accepted"),
        ({"acr": DROP}, "acr_missing"),
        ({"auth_time": DROP}, "auth_time_missing"),
        ({PNR_CLAIM: "197803129828"}, "personal_identity_number_invalid"),
    ],
)
async def test_bad_claims_are_rejected_and_logged(
    make_forged_rp: Callable[..., RelyingParty],
    forger: Forger,
    caplog: pytest.LogCaptureFixture,
    claims: dict[str, Any],
    reason: str,
) -> None:
    forger.claims = claims
    assert await rejected(make_forged_rp(), forger) == reason
    assert f"login rejected: {reason}" in caplog.text
    assert "197803129828" not in caplog.text


async def test_expiry_within_the_leeway_is_accepted(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.claims = {"exp": int(time.time()) - 30}
    await login(make_forged_rp(leeway_seconds=60), forger)
    assert await rejected(make_forged_rp(leeway_seconds=0), forger) == "token_expired"


async def test_alg_none_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger, caplog: pytest.LogCaptureFixture
) -> None:
    rp = make_forged_rp()
    url, pending = await rp.begin()
    nonce = dict(parse_qsl(urlsplit(url).query))["nonce"]
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": "s",
        "aud": CLIENT_ID,
        "exp": now + 60,
        "iat": now,
        "auth_time": now,
        "nonce": nonce,
        "acr": LOA3,
    }
    forger.raw_token = ".".join(
        [_b64url(json.dumps({"alg": "none"}).encode()), _b64url(json.dumps(payload).encode()), ""]
    )
    with pytest.raises(LoginRejected) as info:
        await rp.complete({"state": pending.state, "code": "the-code"}, pending)
    assert info.value.reason == "alg_not_allowed"
    assert "login rejected: alg_not_allowed" in caplog.text


async def test_hs256_keyed_with_the_public_key_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    public = json.dumps(forger.key.as_dict(private=False)).encode()
    forger.sign_key = OctKey.import_key(public)
    forger.header = {"alg": "HS256"}
    assert await rejected(make_forged_rp(), forger) == "alg_not_allowed"


async def test_a_signature_by_another_key_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger, caplog: pytest.LogCaptureFixture
) -> None:
    forger.sign_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    assert await rejected(make_forged_rp(), forger) == "bad_signature"
    assert "login rejected: bad_signature" in caplog.text


async def test_an_unknown_kid_refetches_the_jwks_once_then_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.sign_key = RSAKey.generate_key(2048, parameters={"kid": "k9"})
    forger.header = {"kid": "k9"}
    assert await rejected(make_forged_rp(), forger) == "unknown_kid"
    assert forger.jwks_fetches == 2


async def test_a_rotated_key_is_found_by_refetching_the_jwks(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    new = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    forger.after_first_jwks = [forger.key, new]
    forger.sign_key, forger.header = new, {"kid": "k2"}
    await login(make_forged_rp(), forger)
    assert forger.jwks_fetches == 2


async def test_auth_time_older_than_max_age_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger, caplog: pytest.LogCaptureFixture
) -> None:
    forger.claims = {"auth_time": int(time.time()) - 3600}
    assert await rejected(make_forged_rp(), forger, max_age=600) == "auth_time_too_old"
    assert "login rejected: auth_time_too_old" in caplog.text
    await login(make_forged_rp(), forger, max_age=7200)  # within max_age: fine
    await login(make_forged_rp(), forger)  # no max_age asked: fine


async def test_prompt_login_requires_authentication_after_the_request(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.claims = {"auth_time": int(time.time()) - 600}
    assert await rejected(make_forged_rp(), forger, prompt="login") == "auth_time_before_request"
    assert await rejected(make_forged_rp(), forger, max_age=0) in (
        "auth_time_too_old",
        "auth_time_before_request",
    )


async def test_userinfo_for_another_subject_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.userinfo = {"sub": "someone-else"}
    assert await rejected(make_forged_rp(), forger) == "userinfo_subject_mismatch"


async def test_userinfo_left_out_when_the_id_token_has_every_mapped_claim(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.claims = {"family_name": "Jourström", "name": "Jonna Jourström"}
    forger.userinfo = {"sub": "someone-else"}  # refused, were it read
    _, identity = await login(make_forged_rp(), forger)
    assert forger.userinfo_requests == 0
    assert (identity.given_name, identity.family_name) == ("Jonna", "Jourström")
    assert identity.personal_identity_number == "197803129829"


@pytest.mark.parametrize("missing", [PNR_CLAIM, "given_name", "family_name", "name"])
async def test_userinfo_asked_when_a_mapped_claim_is_missing(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger, missing: str
) -> None:
    forger.claims = {"family_name": "Jourström", "name": "Jonna Jourström", missing: DROP}
    forger.userinfo = {missing: "197104309831" if missing == PNR_CLAIM else "Från userinfo"}
    _, identity = await login(make_forged_rp(), forger)
    assert forger.userinfo_requests == 1
    assert identity.claims[missing] == forger.userinfo[missing]


async def test_personnummer_only_in_userinfo_is_used(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.claims = {PNR_CLAIM: DROP}
    forger.userinfo = {PNR_CLAIM: "197104309831"}
    _, identity = await login(make_forged_rp(), forger)
    assert identity.personal_identity_number == "197104309831"


@pytest.mark.parametrize(("profile", "claim"), [("idura", "ssn"), ("signicat", "nin")])
async def test_claim_mapping_presets(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger, profile: Any, claim: str
) -> None:
    forger.claims = {PNR_CLAIM: DROP, claim: "19710430-9831"}
    rp = make_forged_rp(claim_mapping=ClaimMapping.preset(profile))
    url, _ = await rp.begin()
    assert claim in dict(parse_qsl(urlsplit(url).query))["scope"].split()
    forger.nonce = ""
    _, identity = await login(rp, forger)
    assert identity.personal_identity_number == "197104309831"


async def test_sign_request_without_user_signature_is_rejected(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    rp = make_forged_rp(force_sign_request=True)
    sign = {"tbs_data": "AAEC", "sign_message": base64.b64encode(b"Beslut").decode()}
    assert await rejected(rp, forger, sign_request=sign) == "user_signature_missing"


async def test_sign_request_is_not_sent_when_the_provider_lacks_support(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    sign = {"tbs_data": "AAEC", "sign_message": "QmVzbHV0"}
    url, pending = await make_forged_rp().begin(prompt="login", sign_request=sign)
    assert not pending.sign_request_sent and "signRequest" not in url


async def test_callback_checks_before_any_token_request(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    rp = make_forged_rp()
    _, pending = await rp.begin()
    cases = [
        (
            {"state": pending.state, "code": "the-code", "iss": "https://evil.test"},
            "issuer_mismatch",
        ),
        ({"state": pending.state}, "code_missing"),
        ({"state": pending.state, "error": "login_required"}, "provider_error"),
        ({"state": "x" + pending.state[1:], "code": "the-code"}, "state_mismatch"),
    ]
    for params, reason in cases:
        with pytest.raises(LoginRejected, match=reason):
            await rp.complete(params, pending)
    old = replace(pending, created_at=pending.created_at - 3600)
    with pytest.raises(LoginRejected, match="pending_expired"):
        await rp.complete({"state": pending.state, "code": "the-code"}, old)


async def test_discovery_for_another_issuer_is_refused(
    make_forged_rp: Callable[..., RelyingParty], forger: Forger
) -> None:
    forger.discovery_issuer = "https://evil.test"
    with pytest.raises(ProviderUnavailable):
        await make_forged_rp().begin()


def test_pending_auth_round_trips_and_refuses_garbage() -> None:
    pending = PendingAuth(ISSUER, "s", "n", "v", 1.5, max_age=0, prompt="login")
    assert PendingAuth.from_dict(json.loads(json.dumps(pending.to_dict()))) == pending
    assert pending.requires_fresh_login
    with pytest.raises(ValueError):
        PendingAuth.from_dict({"state": "s"})


def test_unknown_reason_codes_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        LoginRejected("because")


async def test_extra_parameters_cannot_replace_state_nonce_or_pkce(
    make_forged_rp: Callable[..., RelyingParty],
) -> None:
    rp = make_forged_rp()
    url, _ = await rp.begin(extra={"ui_locales": "sv"})
    assert dict(parse_qsl(urlsplit(url).query))["ui_locales"] == "sv"
    for key in ("state", "nonce", "code_challenge", "prompt"):
        with pytest.raises(ValueError):
            await rp.begin(prompt="login", extra={key: "x"})
