"""Errors of the OIDC relying party.

    AuthError                    base of everything raised by `auth.oidc`
     ├── ProviderUnavailable     discovery, JWKS or an endpoint could not be reached or made no
     │                           sense (an operations problem, not the user's: map to 503)
     └── LoginRejected(reason)   the answer from the identity provider was refused; `reason` is a
                                 machine-readable code from `REASONS` (map to 403, audit it)

The reason code is safe to log and audit: it never contains personal data or token material.
"""

from __future__ import annotations

REASONS: frozenset[str] = frozenset(
    {
        "state_mismatch",  # callback state absent or not the one we sent (CSRF / mix-up)
        "pending_expired",  # the login started too long ago
        "provider_error",  # the provider answered with an `error` parameter (see .provider_error)
        "issuer_mismatch",  # `iss` (callback parameter or ID token) is not the configured issuer
        "code_missing",  # no authorization code in the callback
        "token_exchange_failed",  # the token endpoint refused the code (replayed, bad PKCE ...)
        "id_token_missing",  # the token response had no ID token
        "id_token_malformed",  # not a compact JWS with a JSON payload
        "alg_not_allowed",  # alg none, HS*, or not among the provider's advertised algorithms
        "unknown_kid",  # no key in the provider's JWKS (even after one refetch) verifies it
        "bad_signature",  # the signature does not verify
        "audience_mismatch",  # our client_id is not in `aud`
        "azp_mismatch",  # several audiences and `azp` is not our client_id
        "token_expired",  # `exp` (plus leeway) has passed, or is missing
        "issued_in_future",  # `iat` (minus leeway) is in the future, or is missing
        "not_yet_valid",  # `nbf` (minus leeway) is in the future
        "nonce_mismatch",  # `nonce` is not the one we sent
        "auth_time_missing",  # no `auth_time`
        "auth_time_too_old",  # `auth_time` older than the requested max_age (plus leeway)
        "auth_time_before_request",  # fresh login (prompt=login / max_age=0) was not done
        "acr_missing",  # no `acr`
        "acr_not_accepted",  # `acr` not among the accepted levels of assurance
        "userinfo_failed",  # the userinfo endpoint refused or answered nonsense
        "userinfo_subject_mismatch",  # userinfo `sub` differs from the ID token's
        "personal_identity_number_invalid",  # the personnummer claim is not a valid number
        "user_signature_missing",  # a signRequest was sent but no userSignature came back
    }
)


class AuthError(Exception):
    """Base class of the relying party's errors."""


class ProviderUnavailable(AuthError):
    """The identity provider (or its metadata) could not be used; not the user's fault."""


class LoginRejected(AuthError):
    """The identity provider's answer was refused for `reason` (one of `REASONS`)."""

    def __init__(self, reason: str, *, provider_error: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(reason)
        self.reason = reason
        """Machine-readable reason code (safe to log and audit)."""
        self.provider_error = provider_error
        """The OAuth `error` code sent by the provider, when there was one."""
