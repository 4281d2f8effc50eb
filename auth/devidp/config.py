"""Configuration of the development identity provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
"""The level of assurance the simulator claims (it is a simulator: nothing is assured)."""


class DevPerson(NamedTuple):
    """A demo person offered as a button on the login page."""

    personal_identity_number: str
    """12-digit personnummer."""
    given_name: str
    """Given name."""
    family_name: str
    """Family name."""


@dataclass(frozen=True, slots=True)
class DevIdpClient:
    """A relying party registered at the simulator."""

    client_id: str
    """Client id."""
    client_secret: str = field(repr=False)
    """Client secret (client_secret_basic or client_secret_post)."""
    redirect_uris: Sequence[str] = ()
    """Exact redirect URIs accepted for this client."""
    post_logout_redirect_uris: Sequence[str] = ()
    """Exact URIs the browser may be sent to after RP-initiated logout."""


@dataclass(frozen=True, slots=True)
class DevIdpConfig:
    """What the simulator serves and to whom."""

    issuer: str
    """Issuer URL, the public URL it is mounted at (e.g. https://portal.example/dev-idp)."""
    clients: Sequence[DevIdpClient]
    """Registered relying parties."""
    key_path: str
    """JSON file holding the RS256 signing key and the subject secret (created on first use)."""
    persons: Sequence[tuple[str, str, str]] = ()
    """Demo persons (personnummer, given name, family name); DevPerson is such a tuple."""
    enabled: bool = True
    """Must be True to build the app."""
    production: bool = False
    """True in production mode: building the app is then refused."""
    acr: str = LOA3
    """`acr` put in ID tokens."""
    code_lifetime_seconds: int = 60
    """How long an authorization code can be redeemed."""
    token_lifetime_seconds: int = 300
    """Lifetime of ID and access tokens."""
