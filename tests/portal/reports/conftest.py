"""Fixtures for the report tests: demo people as logged-in clients, and an SMTP server.

The portal itself is tests/portal/conftest.py's `portal` fixture (real HTTP, migrated, seeded).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.portal.conftest import RunningPortal
from tests.portal.sessions import client_as
from tests.servers.smtp import smtp_server  # noqa: F401  (fixture)

JONNA = "197803129829"  # jour staff
ERIK = "198507049818"  # jour unit head
HANNA = "196901159803"  # handler, Hudiksvall IFO barn och unga
GUNILLA = "196209219846"  # handler, Gävle IFO barn och unga
OLOF = "197104309831"  # chair, Hudiksvall
EVA = "195806119862"  # substitute chair, Hudiksvall
GUSTAV = "199002279850"  # chair, Gävle
ANDERS = "198311099876"  # archivist, Hudiksvall
ADA = "197512189882"  # admin
ALL_DEMO = (JONNA, ERIK, HANNA, GUNILLA, OLOF, EVA, GUSTAV, ANDERS, ADA)
BOY_15 = "201103059893"
BOY_17 = "200908179799"
WOMAN = "199204029780"


class People:
    """Logged-in clients for the demo persons of one portal, created on first use."""

    def __init__(self, portal: RunningPortal) -> None:
        self.portal = portal
        self._clients: dict[str, httpx.Client] = {}

    def __call__(self, personnummer: str) -> httpx.Client:
        if personnummer not in self._clients:
            self._clients[personnummer] = client_as(
                self.portal.url, self.portal.settings, personnummer
            )
        return self._clients[personnummer]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


@pytest.fixture
def people(portal: RunningPortal) -> Iterator[People]:
    """people(JONNA) -> an httpx client logged in as Jonna."""
    p = People(portal)
    try:
        yield p
    finally:
        p.close()
