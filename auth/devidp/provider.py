"""The simulator's protocol logic: authorization requests, codes, tokens, userinfo.

Framework-free: methods take parameter mappings and return `Answer`s; `app.py` adapts them to
Litestar. Why not authlib's `AuthorizationServer`: its grants are synchronous, bound to a
framework request wrapper (authlib ships none for Litestar) and to a storage model; wiring that
up cost more code than the four endpoints below, which only a development build ever serves.
authlib's RFC 7636 helper computes the PKCE challenge; joserfc signs the tokens.

Everything here is for development: state lives in memory, the "authentication" is typing a
personnummer, and `create_dev_idp` refuses to build in production mode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from personnummer import personnummer

from auth.devidp.config import DevIdpClient, DevIdpConfig, DevPerson
from auth.devidp.keys import DevIdpKeys

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
PNR_SCOPE = "https://id.oidc.se/scope/naturalPersonNumber"
SIGN_SCOPE = "https://id.oidc.se/scope/sign"
SIGN_REQUEST_PARAM = "https://id.oidc.se/param/signRequest"
USER_SIGNATURE_CLAIM = "https://id.oidc.se/claim/userSignature"
REQUEST_LIFETIME = 600
PUSHED_LIFETIME = 90
"""Seconds a pushed request_uri can be used (RFC 9126 suggests 5 to 600)."""
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
MAX_SIGN_MESSAGE = 4000


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, headers, and either a JSON body or a page to render."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    page: str | None = None
    """Template name; `context` fills it."""
    context: dict[str, Any] = field(default_factory=dict)
    set_session: str | None = None
    """A new browser session id to set as cookie."""
    clear_session: bool = False
    """Remove the browser session cookie (after logout)."""


@dataclass(frozen=True, slots=True)
class SignRequest:
    """A decoded signRequest: what is signed and what the user is shown."""

    tbs_data: bytes
    sign_message: str


@dataclass(slots=True)
class _AuthRequest:
    client: DevIdpClient
    redirect_uri: str
    state: str | None
    nonce: str | None
    scope: list[str]
    code_challenge: str
    prompt: list[str]
    max_age: int | None
    login_hint: str | None
    sign: SignRequest | None
    created: float


@dataclass(slots=True)
class _Code:
    request: _AuthRequest
    pnr: str
    auth_time: int
    expires: float


@dataclass(slots=True)
class _AccessToken:
    pnr: str
    scope: list[str]
    client_id: str
    expires: float
    code: str


class BadRequest(Exception):
    """An authorization request error to send back to the client (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def valid_pnr(value: str) -> str | None:
    """The 12-digit form of a valid personnummer typed by the user, else None."""
    digits = value.strip().replace("-", "").replace(" ", "")
    if len(digits) != 12 or not digits.isdigit():
        return None
    try:
        return digits if personnummer.valid(digits) else None
    except personnummer.PersonnummerException:
        return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DevProvider:
    """In-memory OpenID provider state and endpoint logic."""

    def __init__(self, config: DevIdpConfig, keys: DevIdpKeys) -> None:
        self.config = config
        self.keys = keys
        self.issuer = config.issuer.rstrip("/")
        self.clients = {c.client_id: c for c in config.clients}
        self.persons = [DevPerson(*p) for p in config.persons]
        self._requests: dict[str, _AuthRequest] = {}
        self._pushed: dict[str, _AuthRequest] = {}  # request_uri -> pushed request
        self._sessions: dict[str, tuple[str, int]] = {}  # browser session -> (pnr, auth_time)
        self._codes: dict[str, _Code] = {}
        self._used_codes: set[str] = set()
        self._tokens: dict[str, _AccessToken] = {}

    # -- metadata -------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "pushed_authorization_request_endpoint": f"{i}/par",
            "require_pushed_authorization_requests": False,
            "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", PNR_SCOPE, SIGN_SCOPE],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "given_name",
                "family_name",
                "name",
                PNR_CLAIM,
                USER_SIGNATURE_CLAIM,
            ],
            "acr_values_supported": [self.config.acr],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        """The public signing key."""
        return {"keys": [self.keys.signing_key.as_dict(private=False)]}

    def form_targets(self) -> list[str]:
        """Origins the login form may end up redirecting to (for CSP form-action)."""
        origins = {
            "{0.scheme}://{0.netloc}".format(urlsplit(uri))
            for c in self.config.clients
            for uri in c.redirect_uris
        }
        return sorted(origins)

    # -- /authorize -----------------------------------------------------------------------

    def authorize(self, params: Mapping[str, str], session_id: str | None) -> Answer:
        """GET /authorize: validate, then log in silently, show the page, or redirect an error.

        With `request_uri` the request is the one pushed to /par (single use, same client);
        any other query parameter is then ignored (RFC 9126 §4).
        """
        self._expire()
        client = self.clients.get(params.get("client_id", ""))
        if "request_uri" in params:
            pushed = self._pushed.get(params["request_uri"])
            if pushed is None or client is None or pushed.client.client_id != client.client_id:
                # Another client's handle is not burnt: that would let anyone cancel a login.
                return Answer(
                    400,
                    page="error.html",
                    context={"message": "Inloggningen har gått ut. Börja om från tjänsten."},
                )
            del self._pushed[params["request_uri"]]  # single use
            return self._authenticate(pushed, session_id)
        redirect_uri = params.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an unverified URI (open redirector); tell the user instead.
            return Answer(400, page="error.html", context={"message": "Okänd klient eller adress."})
        state = params.get("state")
        try:
            request = self._parse_request(params, client, redirect_uri, state)
        except BadRequest as exc:
            return self._error_redirect(redirect_uri, state, exc.error, exc.description)
        return self._authenticate(request, session_id)

    def _authenticate(self, request: _AuthRequest, session_id: str | None) -> Answer:
        """Single sign-on when allowed, else the login page (or login_required)."""
        redirect_uri, state = request.redirect_uri, request.state
        session = self._sessions.get(session_id or "")
        if session is not None and self._may_reuse(request, session):
            pnr, auth_time = session
            return self._code_redirect(request, pnr, auth_time, status=302)
        if "none" in request.prompt:
            return self._error_redirect(redirect_uri, state, "login_required", "login required")
        request_id = secrets.token_urlsafe(32)
        self._requests[request_id] = request
        return self._page(request_id, request)

    def par(self, form: Mapping[str, str], authorization: str | None) -> Answer:
        """POST /par: a pushed authorization request (RFC 9126) from an authenticated client.

        The same checks as /authorize, answered in JSON; the request is kept under a random,
        single-use request_uri that the browser then brings to /authorize.
        """
        self._expire()
        client = self._authenticate_client(form, authorization)
        if client is None:
            return _oauth_error(401, "invalid_client", "client authentication failed")
        if form.get("client_id", client.client_id) != client.client_id:
            return _oauth_error(400, "invalid_request", "client_id differs from the client")
        if "request_uri" in form or "request" in form:
            return _oauth_error(400, "invalid_request", "request_uri may not be pushed")
        redirect_uri = form.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return _oauth_error(400, "invalid_request", "redirect_uri not registered")
        try:
            request = self._parse_request(form, client, redirect_uri, form.get("state"))
        except BadRequest as exc:
            return _oauth_error(400, exc.error, exc.description)
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        self._pushed[request_uri] = request
        return Answer(
            201,
            {"Cache-Control": "no-store"},
            json={"request_uri": request_uri, "expires_in": PUSHED_LIFETIME},
        )

    def logout(self, params: Mapping[str, str], session_id: str | None) -> Answer:
        """GET/POST /logout: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

        Ends this browser's single sign-on session, then redirects to `post_logout_redirect_uri`
        only when it is registered for the client named by `id_token_hint` (a token this
        provider signed for that client) or `client_id`; without one it shows a page. A request
        it cannot verify logs nobody out. A simulator, so no confirmation is asked.
        """
        client: DevIdpClient | None = None
        hint = params.get("id_token_hint")
        if hint:
            try:
                claims = jwt.decode(hint, self.keys.signing_key, algorithms=["RS256"]).claims
            except (JoseError, ValueError):
                return _logout_refused("id_token_hint could not be verified")
            client = self.clients.get(str(claims.get("aud", "")))
            if client is None or claims.get("iss") != self.issuer:
                return _logout_refused("id_token_hint is not for a known client")
        if params.get("client_id"):
            named = self.clients.get(params["client_id"])
            if named is None or (client is not None and named is not client):
                return _logout_refused("client_id unknown or not the hint's audience")
            client = named
        target = params.get("post_logout_redirect_uri")
        if target is not None and (
            client is None or target not in client.post_logout_redirect_uris
        ):
            return _logout_refused("post_logout_redirect_uri not registered")
        self._sessions.pop(session_id or "", None)
        if target is None:
            return Answer(
                200,
                page="error.html",
                context={"message": "Du är utloggad från BankID-simulatorn."},
                clear_session=True,
            )
        if params.get("state"):
            target = _add_query(target, {"state": params["state"]})
        return Answer(303, {"Location": target}, clear_session=True)

    def _parse_request(
        self, params: Mapping[str, str], client: DevIdpClient, redirect_uri: str, state: str | None
    ) -> _AuthRequest:
        if params.get("response_type") != "code":
            raise BadRequest("unsupported_response_type", "only response_type=code")
        scope = params.get("scope", "").split()
        if "openid" not in scope:
            raise BadRequest("invalid_scope", "openid scope required")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            raise BadRequest("invalid_request", "PKCE with S256 is required")
        prompt = params.get("prompt", "").split()
        if "none" in prompt and len(prompt) > 1:
            raise BadRequest("invalid_request", "prompt=none cannot be combined")
        max_age: int | None = None
        if params.get("max_age"):
            try:
                max_age = int(params["max_age"])
            except ValueError:
                raise BadRequest("invalid_request", "max_age must be an integer") from None
            if max_age < 0:
                raise BadRequest("invalid_request", "max_age must be >= 0")
        sign: SignRequest | None = None
        if SIGN_REQUEST_PARAM in params:
            sign = self._parse_sign_request(params[SIGN_REQUEST_PARAM], client)
        elif SIGN_SCOPE in scope:
            raise BadRequest("invalid_request", "sign scope requires a signRequest")
        return _AuthRequest(
            client=client,
            redirect_uri=redirect_uri,
            state=state,
            nonce=params.get("nonce"),
            scope=scope,
            code_challenge=challenge,
            prompt=prompt,
            max_age=max_age,
            login_hint=params.get("login_hint"),
            sign=sign,
            created=time.time(),
        )

    def _parse_sign_request(self, value: str, client: DevIdpClient) -> SignRequest:
        """A signRequest: a JWT (HS256 with the client secret) or, leniently, a JSON object."""
        try:
            if value.count(".") == 2:
                key = OctKey.import_key(client.client_secret)
                data: Any = jwt.decode(value, key, algorithms=["HS256"]).claims
                if data.get("aud") != self.issuer or data.get("iss") != client.client_id:
                    raise BadRequest("invalid_request", "signRequest not for this provider")
            else:
                data = json.loads(value)
            tbs = base64.b64decode(data["tbs_data"], validate=True)
            message = data["sign_message"]
            if isinstance(message, dict):  # the spec's userMessage form
                texts = message.get("message") or {}
                message = texts.get("sv") or next(iter(texts.values()))
            text = base64.b64decode(message, validate=True).decode("utf-8")
        except BadRequest:
            raise
        except (JoseError, ValueError, KeyError, TypeError, StopIteration, binascii.Error):
            raise BadRequest("invalid_request", "malformed signRequest") from None
        if not tbs or not text.strip() or len(text) > MAX_SIGN_MESSAGE:
            raise BadRequest("invalid_request", "empty or oversized signRequest")
        return SignRequest(tbs, text)

    def _may_reuse(self, request: _AuthRequest, session: tuple[str, int]) -> bool:
        """Single sign-on only when nothing asks for a fresh authentication."""
        if "login" in request.prompt or request.sign is not None:
            return False  # a signature is never based on a previous login (spec §4.1)
        if request.max_age is not None and time.time() - session[1] > request.max_age:
            return False
        hint = valid_pnr(request.login_hint or "")
        return hint is None or hint == session[0]

    def _page(
        self, request_id: str, request: _AuthRequest, *, error: str | None = None, value: str = ""
    ) -> Answer:
        hint = valid_pnr(request.login_hint or "")
        return Answer(
            422 if error else 200,
            page="authorize.html",
            context={
                "base": self.issuer,
                "request_id": request_id,
                "persons": self.persons,
                "selected": hint,
                "value": value or hint or "",
                "error": error,
                "sign_message": request.sign.sign_message if request.sign else None,
            },
        )

    def login(self, form: Mapping[str, str]) -> Answer:
        """POST /authorize: the user chose a person (or cancelled)."""
        self._expire()
        request_id = form.get("request_id", "")
        request = self._requests.get(request_id)
        if request is None:
            return Answer(
                400,
                page="error.html",
                context={"message": "Inloggningen har gått ut. Börja om från tjänsten."},
            )
        if form.get("action") == "cancel":
            del self._requests[request_id]
            return self._error_redirect(
                request.redirect_uri, request.state, "access_denied", "cancelled by the user"
            )
        typed = form.get("personal_identity_number", "")
        pnr = valid_pnr(typed)
        if pnr is None:
            return self._page(
                request_id,
                request,
                error="Ange ett giltigt personnummer med 12 siffror (ÅÅÅÅMMDDNNNN).",
                value=typed[:20],
            )
        del self._requests[request_id]
        auth_time = int(time.time())
        session_id = secrets.token_urlsafe(32)
        if request.sign is None:  # a signature is not kept for single sign-on (spec §5.1)
            self._sessions[session_id] = (pnr, auth_time)
        answer = self._code_redirect(request, pnr, auth_time, status=303)
        stored = request.sign is None
        return Answer(answer.status, answer.headers, set_session=session_id if stored else None)

    def _code_redirect(
        self, request: _AuthRequest, pnr: str, auth_time: int, *, status: int
    ) -> Answer:
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(
            request, pnr, auth_time, time.time() + self.config.code_lifetime_seconds
        )
        query = {"code": code, "iss": self.issuer}
        if request.state is not None:
            query["state"] = request.state
        return Answer(status, {"Location": _add_query(request.redirect_uri, query)})

    def _error_redirect(
        self, redirect_uri: str, state: str | None, error: str, description: str
    ) -> Answer:
        query = {"error": error, "error_description": description, "iss": self.issuer}
        if state is not None:
            query["state"] = state
        return Answer(302, {"Location": _add_query(redirect_uri, query)})

    # -- /token ---------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> Answer:
        """POST /token: authorization_code grant with PKCE and client authentication."""
        self._expire()
        client = self._authenticate_client(form, authorization)
        if client is None:
            return _oauth_error(401, "invalid_client", "client authentication failed")
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "authorization_code only")
        code = form.get("code", "")
        record = self._codes.pop(code, None)  # single use, whatever happens next
        if record is None:
            if code in self._used_codes:
                # RFC 6749 §4.1.2: a replayed code revokes what was issued from it.
                self._tokens = {k: t for k, t in self._tokens.items() if t.code != code}
            return _oauth_error(400, "invalid_grant", "unknown, expired or used code")
        self._used_codes.add(code)
        request = record.request
        if request.client.client_id != client.client_id:
            return _oauth_error(400, "invalid_grant", "code was issued to another client")
        if record.expires < time.time():
            return _oauth_error(400, "invalid_grant", "code expired")
        if form.get("redirect_uri") != request.redirect_uri:
            return _oauth_error(400, "invalid_grant", "redirect_uri differs")
        verifier = form.get("code_verifier")
        if not verifier:
            return _oauth_error(400, "invalid_grant", "code_verifier required (PKCE)")
        challenge = create_s256_code_challenge(verifier)
        if not hmac.compare_digest(challenge, request.code_challenge):
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")

        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        lifetime = self.config.token_lifetime_seconds
        self._tokens[access_token] = _AccessToken(
            record.pnr, request.scope, client.client_id, now + lifetime, code
        )
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(request.scope),
            "id_token": self._id_token(record, now),
        }
        return Answer(200, {"Cache-Control": "no-store", "Pragma": "no-cache"}, json=body)

    def _authenticate_client(
        self, form: Mapping[str, str], authorization: str | None
    ) -> DevIdpClient | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode("utf-8")
            except (ValueError, binascii.Error):
                return None
            user, _, password = decoded.partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(password)
        client = self.clients.get(client_id or "")
        if client is None or not hmac.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            return None
        return client

    def subject(self, pnr: str) -> str:
        """The stable pseudonymous `sub` of a person (not the personnummer)."""
        mac = hmac.new(self.keys.subject_secret, b"sub:" + pnr.encode(), hashlib.sha256)
        return _b64url(mac.digest())

    def person_claims(self, pnr: str) -> dict[str, str]:
        """Names and number of a person (unknown numbers get a placeholder name)."""
        person = next((p for p in self.persons if p.personal_identity_number == pnr), None)
        given, family = (person.given_name, person.family_name) if person else ("Test", "Person")
        return {
            PNR_CLAIM: pnr,
            "given_name": given,
            "family_name": family,
            "name": f"{given} {family}",
        }

    def _id_token(self, record: _Code, now: int) -> str:
        request = record.request
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject(record.pnr),
            "aud": request.client.client_id,
            "exp": now + self.config.token_lifetime_seconds,
            "iat": now,
            "auth_time": record.auth_time,
            "acr": self.config.acr,
            **self.person_claims(record.pnr),
        }
        if request.nonce is not None:
            claims["nonce"] = request.nonce
        if request.sign is not None:
            claims[USER_SIGNATURE_CLAIM] = self._user_signature(record, claims)
        return self._sign(claims)

    def _user_signature(self, record: _Code, claims: Mapping[str, Any]) -> str:
        """The simulated signature: base64 of a JWS (RS256, this provider's key) over
        {iss, aud, sub, personnummer, tbs_data_sha256, sign_message, signed_at}.

        A real provider returns the eID's own signature here; this only proves that this
        simulator saw this person confirm this data.
        """
        assert record.request.sign is not None
        payload = {
            "iss": self.issuer,
            "aud": claims["aud"],
            "sub": claims["sub"],
            PNR_CLAIM: record.pnr,
            "tbs_data_sha256": _b64url(hashlib.sha256(record.request.sign.tbs_data).digest()),
            "sign_message": record.request.sign.sign_message,
            "signed_at": record.auth_time,
        }
        blob = jws.serialize_compact(
            {"alg": "RS256", "kid": self.keys.signing_key.kid, "typ": "dev-user-signature"},
            json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            self.keys.signing_key,
        )
        return base64.b64encode(blob.encode("ascii")).decode("ascii")

    def _sign(self, claims: Mapping[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.keys.signing_key.kid, "typ": "JWT"}
        return jwt.encode(header, dict(claims), self.keys.signing_key)

    # -- /userinfo ------------------------------------------------------------------------

    def userinfo(self, authorization: str | None) -> Answer:
        """GET/POST /userinfo with a Bearer access token."""
        token = None
        if authorization and authorization.lower().startswith("bearer "):
            token = self._tokens.get(authorization[7:].strip())
        if token is None or token.expires < time.time():
            return Answer(
                401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                json={"error": "invalid_token"},
            )
        claims: dict[str, Any] = {"sub": self.subject(token.pnr)}
        person = self.person_claims(token.pnr)
        if "profile" in token.scope:
            claims.update({k: person[k] for k in ("given_name", "family_name", "name")})
        if PNR_SCOPE in token.scope:
            claims[PNR_CLAIM] = token.pnr
        return Answer(200, {"Cache-Control": "no-store"}, json=claims)

    def _expire(self) -> None:
        now = time.time()
        self._requests = {
            k: r for k, r in self._requests.items() if now - r.created < REQUEST_LIFETIME
        }
        self._pushed = {k: r for k, r in self._pushed.items() if now - r.created < PUSHED_LIFETIME}
        self._codes = {k: c for k, c in self._codes.items() if c.expires >= now - 60}
        self._tokens = {k: t for k, t in self._tokens.items() if t.expires >= now}


def _oauth_error(status: int, error: str, description: str) -> Answer:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = "Basic"
    return Answer(status, headers, json={"error": error, "error_description": description})


def _logout_refused(reason: str) -> Answer:
    # Shown to the user, never redirected: the target could not be trusted.
    return Answer(
        400,
        page="error.html",
        context={"message": f"Utloggningen kunde inte genomföras ({reason})."},
    )


def _add_query(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)
