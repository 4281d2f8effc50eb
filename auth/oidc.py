"""OpenID Connect relying party: authorization code flow with PKCE, strict ID token checks.

Threats this module stands against, and where:
- login CSRF and callback mix-up: `state` is random per login, kept server-side by the caller in
  a `PendingAuth`, compared in constant time; RFC 9207 `iss` in the callback is checked;
- code interception / injection: PKCE S256 always; the code is only ever redeemed with the
  verifier of the login that started it;
- ID token forgery or substitution: signature checked with the provider's JWKS, only asymmetric
  algorithms the provider advertises (never `none`, never HS* keyed with a public key); iss, aud,
  azp, exp, iat, nbf, nonce, auth_time, acr are all checked; claims from userinfo are used only
  when their `sub` is the ID token's, and userinfo is asked only when the ID token lacks a claim
  the mapping reads (one round trip to the provider less per login otherwise);
- stale authentication for a signature: `prompt=login` / `max_age` are enforced with `auth_time`,
  so a chair's signing login must have happened after the signing request was made;
- leaking personal data: log lines carry reason codes only, never personnummer, names or tokens;
  a personnummer never goes in a URL (browser history, proxy and provider logs): where the
  provider offers pushed authorization requests (RFC 9126) every parameter is pushed over the
  back channel and the browser carries only `client_id` and an opaque `request_uri`; without
  PAR a `login_hint` is left out (the person types their number) — a signed request object
  would not help, it is readable base64 in the same URL;
- a shared workstation: logout ends the provider's single sign-on session too (RP-initiated
  logout); its URL carries the ID token as `id_token_hint` only when that token holds no
  personal data.

ID tokens come from the token endpoint over TLS, never from the browser, so an unknown `kid`
may trigger one JWKS refetch per login without giving an attacker a request amplifier.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import authlib.deprecate  # noqa: F401  (installs authlib's warning filter before ours)
import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from auth.claims import USER_SIGNATURE_CLAIM, ClaimMapping
from auth.errors import LoginRejected, ProviderUnavailable

with warnings.catch_warnings():
    # authlib 1.9 prefers the `httpx2` fork and warns once on import when plain httpx is used;
    # httpx is what the project pins, so the warning is not actionable here.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger("jourpost.auth")

DEFAULT_ACCEPTED_ACR: tuple[str, ...] = (
    "http://id.elegnamnden.se/loa/1.0/loa3",
    "http://id.swedenconnect.se/loa/1.0/uncertified-loa3",
    "http://id.elegnamnden.se/loa/1.0/loa4",
)
"""Levels of assurance accepted by default (DESIGN.md §5)."""

SIGN_REQUEST_PARAM = "https://id.oidc.se/param/signRequest"
"""oidc-sweden Signature Extension request parameter."""
SIGN_SCOPE = "https://id.oidc.se/scope/sign"
"""oidc-sweden scope that marks an authentication request as a signature request."""

# Asymmetric JWS algorithms we are willing to verify ID tokens with. HS* is excluded: with a
# JWKS of public keys, an HMAC "signature" keyed with a public key proves nothing.
ASYMMETRIC_ALGS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


@dataclass(frozen=True, slots=True)
class OIDCProviderConfig:
    """How Jourpost talks to one OpenID provider."""

    issuer: str
    """Issuer identifier, exactly as in the provider's discovery document (no trailing slash)."""
    client_id: str
    """Our client id at the provider."""
    redirect_uri: str
    """Our registered callback URL (…/auth/callback)."""
    client_secret: str | None = field(default=None, repr=False)
    """Client secret; None for a public client (PKCE only)."""
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"  # noqa: S105  (a method name, not a secret)
    )
    """How the client secret is sent to the token endpoint."""
    scopes: tuple[str, ...] | None = None
    """Requested scopes; None: openid, profile and the claim mapping's personnummer scope."""
    accepted_acr: tuple[str, ...] = DEFAULT_ACCEPTED_ACR
    """Accepted `acr` values (levels of assurance); anything else is refused."""
    request_acr_values: bool = True
    """Send the accepted values as `acr_values` in the authorization request."""
    claim_mapping: ClaimMapping = field(default_factory=ClaimMapping)
    """Which claims carry the personnummer and the names at this provider."""
    leeway_seconds: int = 60
    """Clock skew tolerated on exp, iat, nbf and auth_time."""
    http_timeout: float = 10.0
    """Timeout in seconds for each request to the provider."""
    pending_lifetime_seconds: int = 600
    """A login must complete within this many seconds of `begin()`."""
    discovery_ttl_seconds: int = 3600
    """How long the discovery document and JWKS are cached."""
    force_sign_request: bool = False
    """Send signRequest even when the provider's discovery does not list the sign scope."""
    post_logout_redirect_uri: str | None = None
    """Where the provider sends the browser after RP-initiated logout (registered there)."""

    @property
    def effective_scopes(self) -> tuple[str, ...]:
        """The scopes actually requested."""
        if self.scopes is not None:
            return self.scopes
        extra = self.claim_mapping.scope
        return ("openid", "profile", *((extra,) if extra else ()))


@dataclass(frozen=True, slots=True)
class PendingAuth:
    """What `begin()` sent and `complete()` must see again; stored server-side by the caller."""

    issuer: str
    """Provider the request went to."""
    state: str
    """Random `state` sent with the request."""
    nonce: str
    """`nonce` sent with the request (random, optionally "." and the binding)."""
    code_verifier: str
    """PKCE verifier (the provider saw only its S256 challenge)."""
    created_at: float
    """When the request was made (Unix time)."""
    max_age: int | None = None
    """`max_age` sent, if any."""
    prompt: str | None = None
    """`prompt` sent, if any."""
    sign_request_sent: bool = False
    """True when a signRequest parameter was sent (a userSignature is then required)."""
    nonce_binding: str | None = None
    """The document binding embedded in the nonce, if any."""

    @property
    def requires_fresh_login(self) -> bool:
        """True when the user had to authenticate after this request was made."""
        forced = self.prompt is not None and "login" in self.prompt.split()
        return forced or self.max_age == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for the caller's server-side session)."""
        return {
            "issuer": self.issuer,
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "created_at": self.created_at,
            "max_age": self.max_age,
            "prompt": self.prompt,
            "sign_request_sent": self.sign_request_sent,
            "nonce_binding": self.nonce_binding,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingAuth:
        """Rebuild from `to_dict()` output; ValueError when it is not such output."""
        try:
            pending = cls(
                issuer=str(data["issuer"]),
                state=str(data["state"]),
                nonce=str(data["nonce"]),
                code_verifier=str(data["code_verifier"]),
                created_at=float(data["created_at"]),
                max_age=None if data.get("max_age") is None else int(data["max_age"]),
                prompt=None if data.get("prompt") is None else str(data["prompt"]),
                sign_request_sent=bool(data.get("sign_request_sent", False)),
                nonce_binding=(
                    None if data.get("nonce_binding") is None else str(data["nonce_binding"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a PendingAuth") from exc
        if not (pending.state and pending.nonce and pending.code_verifier):
            raise ValueError("not a PendingAuth")
        return pending


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """A person as the provider vouched for them, after every check passed."""

    issuer: str
    """The provider."""
    subject: str
    """The provider's `sub` for this person (with issuer: the stable key)."""
    personal_identity_number: str | None
    """12-digit personnummer, normalised; None when the provider did not release it."""
    given_name: str | None
    """Given name."""
    family_name: str | None
    """Family name."""
    name: str | None
    """Full name."""
    acr: str
    """Level of assurance of this authentication."""
    auth_time: datetime
    """When the person authenticated (UTC)."""
    claims: dict[str, Any]
    """All claims: the ID token's, plus userinfo claims the ID token did not have (userinfo is
    read only when the ID token lacks one of the claims the claim mapping reads)."""
    user_signature: str | None = None
    """`https://id.oidc.se/claim/userSignature` from the ID token, if present."""
    nonce_binding: str | None = None
    """The document binding proven by the nonce, if `begin()` was given one."""
    id_token: str | None = field(default=None, repr=False)
    """The ID token as received (the `id_token_hint` of a later logout); holds claims."""


def _reject(reason: str, *, provider_error: str | None = None) -> LoginRejected:
    # Reason codes (and OAuth error codes) only: never claims, names, numbers or tokens.
    if provider_error:
        log.warning("login rejected: %s (provider error %s)", reason, provider_error[:64])
    else:
        log.warning("login rejected: %s", reason)
    return LoginRejected(reason, provider_error=provider_error)


class RelyingParty:
    """The OIDC client of one provider: builds login requests and verifies their answers."""

    def __init__(self, config: OIDCProviderConfig, http_client: Any = None) -> None:
        """`http_client`: an authlib `AsyncOAuth2Client` to use (tests); None builds one."""
        self.config = config
        self._owns_client = http_client is None
        self._client: Any = http_client or AsyncOAuth2Client(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint_auth_method=(
                config.token_endpoint_auth_method if config.client_secret else "none"
            ),
            redirect_uri=config.redirect_uri,
            scope=" ".join(config.effective_scopes),
            code_challenge_method="S256",
            timeout=config.http_timeout,
            follow_redirects=False,
        )
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    # -- metadata -------------------------------------------------------------------------

    async def _get_json(self, url: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request("GET", url, withhold_token=True, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"GET {url} failed: {type(exc).__name__}") from exc

    async def discover(self, *, refresh: bool = False) -> dict[str, Any]:
        """The provider's discovery document (cached); also loads its JWKS."""
        fresh = time.monotonic() - self._metadata_at < self.config.discovery_ttl_seconds
        if self._metadata is not None and fresh and not refresh:
            return self._metadata
        url = self.config.issuer + "/.well-known/openid-configuration"
        doc = await self._get_json(url)
        if not isinstance(doc, dict) or doc.get("issuer") != self.config.issuer:
            raise ProviderUnavailable("discovery issuer differs from the configured issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(key), str):
                raise ProviderUnavailable(f"discovery document lacks {key}")
        self._metadata = doc
        self._metadata_at = time.monotonic()
        await self._load_jwks()
        return doc

    async def _load_jwks(self) -> KeySet:
        assert self._metadata is not None
        data = await self._get_json(self._metadata["jwks_uri"])
        try:
            # Only public signature keys are kept; a private or symmetric key here is ignored.
            keys = [
                k
                for k in data["keys"]
                if k.get("kty") in ("RSA", "EC", "OKP") and k.get("use", "sig") == "sig"
            ]
            self._jwks = KeySet.import_key_set({"keys": keys})
        except (KeyError, TypeError, AttributeError, JoseError, ValueError) as exc:
            raise ProviderUnavailable("JWKS could not be parsed") from exc
        return self._jwks

    def supports_sign_request(self, metadata: Mapping[str, Any]) -> bool:
        """True when the provider declares the oidc-sweden Signature Extension (or it is forced).

        The extension (§5.3) is declared by `https://id.oidc.se/scope/sign` in scopes_supported.
        """
        if self.config.force_sign_request:
            return True
        scopes = metadata.get("scopes_supported")
        return isinstance(scopes, list) and SIGN_SCOPE in scopes

    # -- the request ----------------------------------------------------------------------

    async def begin(
        self,
        *,
        prompt: str | None = None,
        max_age: int | None = None,
        login_hint: str | None = None,
        sign_request: Mapping[str, Any] | None = None,
        nonce_binding: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[str, PendingAuth]:
        """The authorization URL to send the browser to, and what to keep for `complete()`.

        `sign_request`: {"tbs_data": base64, "sign_message": base64 of UTF-8 text} — sent as the
        oidc-sweden signRequest parameter only when the provider supports it (then prompt
        becomes "login consent"); check `PendingAuth.sign_request_sent`. `nonce_binding`: a
        URL-safe string (e.g. the document's SHA-256 in hex) embedded in the nonce so the ID
        token proves which document the login was for. When the provider offers pushed
        authorization requests (RFC 9126) every parameter is pushed and the URL carries only
        `client_id` and `request_uri`; otherwise `login_hint` is dropped (never in a URL).
        """
        metadata = await self.discover()
        if nonce_binding is not None and (
            not nonce_binding or any(c not in _URLSAFE for c in nonce_binding)
        ):
            raise ValueError("nonce_binding must be a non-empty URL-safe string")
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        if nonce_binding:
            nonce = f"{nonce}.{nonce_binding}"
        code_verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43..128)
        scopes = list(self.config.effective_scopes)
        params: dict[str, str] = {"nonce": nonce}
        sign_sent = False
        if sign_request is not None and self.supports_sign_request(metadata):
            sign_sent = True
            if SIGN_SCOPE not in scopes:
                scopes.append(SIGN_SCOPE)
            prompt = "login consent"
            params[SIGN_REQUEST_PARAM] = self._encode_sign_request(sign_request)
        if prompt:
            params["prompt"] = prompt
        if max_age is not None:
            if max_age < 0:
                raise ValueError("max_age must be >= 0")
            params["max_age"] = str(max_age)
        if login_hint:
            params["login_hint"] = login_hint
        if self.config.request_acr_values and self.config.accepted_acr:
            params["acr_values"] = " ".join(self.config.accepted_acr)
        clash = set(extra or {}) & (_RESERVED_PARAMS | set(params))
        if clash:
            raise ValueError(f"extra may not set {sorted(clash)}")
        params.update(extra or {})
        par_endpoint = metadata.get("pushed_authorization_request_endpoint")
        if not isinstance(par_endpoint, str) and params.pop("login_hint", None) is not None:
            log.info("login_hint left out: the provider takes no pushed authorization requests")
        url, _ = self._client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            code_verifier=code_verifier,
            scope=" ".join(scopes),
            **params,
        )
        if isinstance(par_endpoint, str):
            url = await self._push(par_endpoint, metadata["authorization_endpoint"], str(url))
        pending = PendingAuth(
            issuer=self.config.issuer,
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
            created_at=time.time(),
            max_age=max_age,
            prompt=prompt,
            sign_request_sent=sign_sent,
            nonce_binding=nonce_binding,
        )
        return str(url), pending

    async def _push(self, par_endpoint: str, authorization_endpoint: str, url: str) -> str:
        """Push the request of `url` (RFC 9126); return the URL that carries only its handle.

        The client authenticates as at the token endpoint, so the provider knows the pushed
        parameters came from us; the browser's URL then holds nothing but client_id and an
        opaque, single-use, short-lived request_uri.
        """
        body = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        method = self._client.token_endpoint_auth_method
        if method != "client_secret_basic":
            body = [(k, v) for k, v in body if k != "client_id"]  # the client auth adds it
        try:
            response = await self._client.request(
                "POST",
                par_endpoint,
                data=dict(body),
                auth=self._client.client_auth(method),
                withhold_token=True,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable("pushed authorization request failed") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code not in (200, 201) or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            log.warning(
                "pushed authorization request refused: HTTP %d %s",
                response.status_code,
                str(error)[:64] if error else "",
            )
            raise ProviderUnavailable("pushed authorization request refused")
        request_uri = answer.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise ProviderUnavailable("pushed authorization request answer lacks request_uri")
        query = urlencode({"client_id": self.config.client_id, "request_uri": request_uri})
        return authorization_endpoint + ("&" if "?" in authorization_endpoint else "?") + query

    async def end_session_url(self, id_token: str | None) -> str | None:
        """Where to send the browser to end the provider's session too, or None if it can't.

        OpenID Connect RP-Initiated Logout 1.0, as a GET (a cross-site POST would reach the
        provider without its SameSite=Lax session cookie, so nothing would be ended). The
        `id_token_hint` goes in only when the ID token holds nothing but protocol claims: a
        token carrying the personnummer or names would put them in the browser's history on a
        shared workstation and in proxy logs. Without it the request names the client
        (`client_id`, so the provider can check `post_logout_redirect_uri`) and the provider
        may ask the user to confirm.
        """
        metadata = await self.discover()
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None
        params = {"client_id": self.config.client_id}
        if id_token and _only_protocol_claims(id_token):
            params["id_token_hint"] = id_token
        if self.config.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.config.post_logout_redirect_uri
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)

    def _encode_sign_request(self, sign_request: Mapping[str, Any]) -> str:
        """The signRequest parameter value: a JWT signed by the client (spec §3.1.2).

        With a client secret the JWT is HS256 keyed with it (OpenID Core §10.1 symmetric
        request signing); the sign message is wrapped in the userMessage form of the spec.
        """
        if "tbs_data" not in sign_request or "sign_message" not in sign_request:
            raise ValueError("sign_request needs tbs_data and sign_message")
        if not self.config.client_secret or len(self.config.client_secret) < 16:
            raise ValueError("a signRequest must be signed: configure a client secret (16+ chars)")
        message = sign_request["sign_message"]
        if isinstance(message, str):
            message = {"message": {"sv": message}, "mime_type": "text/plain"}
        now = int(time.time())
        claims = {
            "iss": self.config.client_id,
            "aud": self.config.issuer,
            "iat": now,
            "exp": now + self.config.pending_lifetime_seconds,
            "tbs_data": sign_request["tbs_data"],
            "sign_message": message,
        }
        key = OctKey.import_key(self.config.client_secret)
        return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)

    # -- the answer -----------------------------------------------------------------------

    async def complete(self, params: Mapping[str, str], pending: PendingAuth) -> VerifiedIdentity:
        """Check the callback parameters, redeem the code, verify the ID token, read userinfo.

        Raises LoginRejected (with a reason code, also logged) for anything not as it must be,
        ProviderUnavailable when the provider cannot be reached.
        """
        got_state = params.get("state") or ""
        if not hmac.compare_digest(got_state.encode(), pending.state.encode()):
            raise _reject("state_mismatch")
        if pending.issuer != self.config.issuer:
            raise _reject("issuer_mismatch")
        if time.time() - pending.created_at > self.config.pending_lifetime_seconds:
            raise _reject("pending_expired")
        metadata = await self.discover()
        # RFC 9207 mix-up defence: a provider that says it sends `iss` must send ours.
        iss_required = metadata.get("authorization_response_iss_parameter_supported") is True
        if ("iss" in params or iss_required) and params.get("iss") != self.config.issuer:
            raise _reject("issuer_mismatch")
        if params.get("error"):
            raise _reject("provider_error", provider_error=params["error"])
        code = params.get("code")
        if not code:
            raise _reject("code_missing")

        try:
            token = await self._client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.code_verifier,
                redirect_uri=self.config.redirect_uri,
            )
        except OAuthError as exc:
            raise _reject("token_exchange_failed", provider_error=str(exc.error)) from exc
        except httpx.HTTPStatusError as exc:
            raise _reject("token_exchange_failed") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable("token endpoint failed") from exc

        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise _reject("id_token_missing")
        claims = await self.validate_id_token(id_token, pending)

        merged = dict(claims)
        access_token = token.get("access_token")
        if (
            metadata.get("userinfo_endpoint")
            and isinstance(access_token, str)
            and not self._has_mapped_claims(claims)
        ):
            userinfo = await self._userinfo(metadata["userinfo_endpoint"], access_token)
            if userinfo.get("sub") != claims["sub"]:
                raise _reject("userinfo_subject_mismatch")
            for key, value in userinfo.items():
                merged.setdefault(key, value)
        return replace(self._identity(claims, merged, pending), id_token=id_token)

    def _has_mapped_claims(self, claims: Mapping[str, Any]) -> bool:
        """Whether the (signed) ID token already holds every claim the mapping reads.

        Then userinfo could add nothing that is used (the ID token's claims win anyway), and
        the request — a round trip to the provider on every login — is left out.
        """
        mapping = self.config.claim_mapping
        wanted = (
            mapping.personal_identity_number,
            mapping.given_name,
            mapping.family_name,
            mapping.name,
        )
        return all(isinstance(claims.get(name), str) and claims[name] for name in wanted)

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        try:
            # The token is passed explicitly: the shared client must never reuse another
            # login's token (authlib keeps the last fetched token on the client object).
            response = await self._client.request(
                "GET",
                url,
                withhold_token=True,
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable("userinfo endpoint failed") from exc
        try:
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _reject("userinfo_failed") from exc
        if not isinstance(data, dict):
            raise _reject("userinfo_failed")
        return data

    async def validate_id_token(self, id_token: str, pending: PendingAuth) -> dict[str, Any]:
        """Verify an ID token's signature and claims for `pending`; return its claims."""
        metadata = await self.discover()
        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise _reject("id_token_malformed") from exc
        alg = header.get("alg")
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        if alg not in ASYMMETRIC_ALGS or alg not in advertised:
            raise _reject("alg_not_allowed")
        claims = await self._verify_signature(id_token, header, str(alg))
        self._check_claims(claims, pending)
        return claims

    async def _verify_signature(
        self, id_token: str, header: Mapping[str, Any], alg: str
    ) -> dict[str, Any]:
        kid = header.get("kid")
        for attempt in range(2):
            keyset = self._jwks if attempt == 0 and self._jwks else await self._load_jwks()
            candidates = [k for k in keyset.keys if kid is None or k.kid == kid]
            if not candidates:
                continue  # unknown kid: the provider may have rotated; refetch once
            for key in candidates:
                try:
                    token = jwt.decode(id_token, key, algorithms=[alg])
                except JoseError:
                    continue
                if not isinstance(token.claims, dict):
                    raise _reject("id_token_malformed")
                return dict(token.claims)
            raise _reject("bad_signature")
        raise _reject("unknown_kid")

    def _check_claims(self, claims: Mapping[str, Any], pending: PendingAuth) -> None:
        cfg = self.config
        now = time.time()
        leeway = cfg.leeway_seconds
        if claims.get("iss") != cfg.issuer:
            raise _reject("issuer_mismatch")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if cfg.client_id not in audiences:
            raise _reject("audience_mismatch")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != cfg.client_id:
            raise _reject("azp_mismatch")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _reject("id_token_malformed")
        exp = _number(claims.get("exp"))
        if exp is None or exp + leeway < now:
            raise _reject("token_expired")
        iat = _number(claims.get("iat"))
        if iat is None or iat - leeway > now:
            raise _reject("issued_in_future")
        if "nbf" in claims:
            nbf = _number(claims["nbf"])
            if nbf is None or nbf - leeway > now:
                raise _reject("not_yet_valid")
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(
            nonce.encode(), pending.nonce.encode()
        ):
            raise _reject("nonce_mismatch")
        auth_time = _number(claims.get("auth_time"))
        if auth_time is None:
            raise _reject("auth_time_missing")
        if pending.max_age is not None and now - auth_time > pending.max_age + leeway:
            raise _reject("auth_time_too_old")
        if pending.requires_fresh_login and auth_time < pending.created_at - leeway:
            raise _reject("auth_time_before_request")
        acr = claims.get("acr")
        if not isinstance(acr, str) or not acr:
            raise _reject("acr_missing")
        if acr not in cfg.accepted_acr:
            raise _reject("acr_not_accepted")

    def _identity(
        self, id_claims: Mapping[str, Any], merged: dict[str, Any], pending: PendingAuth
    ) -> VerifiedIdentity:
        mapping = self.config.claim_mapping
        try:
            pnr = mapping.personal_identity_number_from(merged)
        except ValueError as exc:
            raise _reject("personal_identity_number_invalid") from exc
        # A signature result must come from the (signed) ID token, never from userinfo (§5.2).
        signature = id_claims.get(USER_SIGNATURE_CLAIM)
        if pending.sign_request_sent and not isinstance(signature, str):
            raise _reject("user_signature_missing")
        return VerifiedIdentity(
            issuer=self.config.issuer,
            subject=str(id_claims["sub"]),
            personal_identity_number=pnr,
            given_name=_str_or_none(merged.get(mapping.given_name)),
            family_name=_str_or_none(merged.get(mapping.family_name)),
            name=_str_or_none(merged.get(mapping.name)),
            acr=str(id_claims["acr"]),
            auth_time=datetime.fromtimestamp(float(id_claims["auth_time"]), UTC),
            claims=merged,
            user_signature=signature if isinstance(signature, str) else None,
            nonce_binding=pending.nonce_binding,
        )


# Parameters begin() owns: letting `extra` set them would undo state, nonce or PKCE.
_RESERVED_PARAMS = frozenset(
    {
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "code_verifier",
        SIGN_REQUEST_PARAM,
    }
)
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# ID token claims that say nothing about the person (OpenID Connect Core §2, §3.1.3.6, Front-
# Channel Logout `sid`); any other claim may be personal data and keeps the token out of URLs.
_PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr", "azp"}
    | {"at_hash", "c_hash", "s_hash", "sid"}
)


def _only_protocol_claims(id_token: str) -> bool:
    """True when the token's payload has protocol claims only (`sub` must be pseudonymous)."""
    try:
        claims = json.loads(jws.extract_compact(id_token.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return False
    return isinstance(claims, dict) and set(claims) <= _PROTOCOL_CLAIMS


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
