"""Fixtures for the OIDC tests: a served dev identity provider and relying parties for it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from auth.devidp import DevIdpClient, DevIdpConfig, DevPerson
from auth.oidc import OIDCProviderConfig, RelyingParty
from tests.servers.devidp import running_dev_idp

CLIENT_ID = "jourpost-test"
REDIRECT_URI = "http://127.0.0.1:9/auth/callback"  # never fetched: the test reads the redirect
POST_LOGOUT_URI = "http://127.0.0.1:9/?utloggad=1"  # likewise
JONNA = DevPerson("197803129829", "Jonna", "Jourström")
OLOF = DevPerson("197104309831", "Olof", "Ordén")


class Provider:
    """A running provider and what a relying party needs to use it."""

    def __init__(self, issuer: str, client_secret: str) -> None:
        self.issuer = issuer
        self.client_secret = client_secret

    def config(self, **overrides: Any) -> OIDCProviderConfig:
        base = OIDCProviderConfig(
            issuer=self.issuer,
            client_id=CLIENT_ID,
            client_secret=self.client_secret,
            redirect_uri=REDIRECT_URI,
            post_logout_redirect_uri=POST_LOGOUT_URI,
        )
        return replace(base, **overrides)


@pytest.fixture(scope="session")
def dev_idp_key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("devidp") / "dev-idp-key.json"


@pytest.fixture(scope="session")
def dev_idp(dev_idp_key_path: Path) -> Iterator[Provider]:
    """The simulator served on loopback below /dev-idp, with one client and two persons."""
    secret = secrets.token_urlsafe(24)

    def make(issuer: str) -> DevIdpConfig:
        return DevIdpConfig(
            issuer=issuer,
            clients=[
                DevIdpClient(
                    CLIENT_ID, secret, [REDIRECT_URI], post_logout_redirect_uris=[POST_LOGOUT_URI]
                )
            ],
            persons=[JONNA, OLOF],
            key_path=str(dev_idp_key_path),
        )

    with running_dev_idp(make) as issuer:
        yield Provider(issuer, secret)


@pytest.fixture
async def make_rp() -> AsyncIterator[Callable[[OIDCProviderConfig], RelyingParty]]:
    """Build relying parties that are closed after the test."""
    made: list[RelyingParty] = []

    def make(config: OIDCProviderConfig) -> RelyingParty:
        rp = RelyingParty(config)
        made.append(rp)
        return rp

    yield make
    for rp in made:
        await rp.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """One cookie jar, redirects followed by hand (as the tests need to see each hop)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as client:
        yield client


def callback_params(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect to our callback URL."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    return dict(parse_qsl(urlsplit(location).query))
