"""A real SMTP server (aiosmtpd) on a free loopback port that keeps every message it receives.

Usable as a context manager or through the `smtp_server` fixture in a conftest:

    from tests.servers.smtp import smtp_server  # noqa: F401  (re-export the fixture)

aiosmtpd's Controller cannot bind port 0, so a free port is chosen first.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.servers.net import free_port


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


@dataclass
class CollectingHandler:
    """aiosmtpd handler: accept and keep every message."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """A running server: where it listens and what it got."""

    host: str
    port: int
    handler: CollectingHandler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least `count` messages arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
            time.sleep(0.05)
        return list(self.messages)


@contextmanager
def running_smtp() -> Iterator[SmtpServer]:
    """Start aiosmtpd on 127.0.0.1 and a free port; stop it afterwards."""
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A collecting SMTP server for one test."""
    with running_smtp() as server:
        yield server
