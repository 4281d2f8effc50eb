"""Notification e-mail over STARTTLS with authentication, against a real aiosmtpd server.

The server offers STARTTLS with a certificate from a CA made here, requires TLS before AUTH
and authenticates one user. The portal's dispatcher (started as the lifespan starts it, from
the settings) must verify the certificate against `smtp_ca_file`, log in and deliver; a wrong
password or a certificate from another CA must leave the mail pending with the error recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from portal.notify.models import OutboxMail
from portal.notify.service import queue_mail, start_dispatcher, stop_dispatcher
from tests.conftest import make_settings
from tests.servers.net import free_port
from tests.servers.smtp import CollectingHandler

USER, PASSWORD = "jourpost", "rätt-lösenord-123"
TO = "socialjouren@gavle.kommun.example"


@dataclass(frozen=True)
class Pki:
    """A CA and a server certificate it issued for 127.0.0.1, as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, label: str) -> Pki:
    """A fresh CA (EC P-256) and a server certificate for IP 127.0.0.1 issued by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} test CA"))
        .issuer_name(_name(f"{label} test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("smtp.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        directory / f"{label}-ca.pem",
        directory / f"{label}-cert.pem",
        directory / f"{label}-key.pem",
    )
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@dataclass
class TlsSmtp:
    """A running STARTTLS + AUTH server and what it received."""

    port: int
    handler: CollectingHandler
    logins: list[tuple[str, bool]]


def _authenticator(logins: list[tuple[str, bool]]) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USER
            and auth_data.password.decode() == PASSWORD
        )
        logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    return authenticate


@pytest.fixture
def server_pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path, "server")


@pytest.fixture
def tls_smtp(server_pki: Pki) -> Iterator[TlsSmtp]:
    """aiosmtpd offering STARTTLS (required) and AUTH (required, only over TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_pki.cert_file, server_pki.key_file)
    handler = CollectingHandler()
    logins: list[tuple[str, bool]] = []
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator(logins),
        auth_required=True,
    )
    controller.start()
    try:
        yield TlsSmtp(port, handler, logins)
    finally:
        controller.stop()


async def _deliver(
    database_url: str, tmp_path: Path, port: int, *, password: str, ca_file: Path
) -> OutboxMail:
    """Queue one mail, run the dispatcher the settings describe until the row was tried once;
    return the row as it then is."""
    from portal.app import build_runtime

    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=True,
        smtp_username=USER,
        smtp_password=password,
        smtp_ca_file=str(ca_file),
    )
    state = build_runtime(settings)
    try:
        async with state.sessionmaker() as db, db.begin():
            await queue_mail(db, to=TO, template="new_report", link_path="/reports/x")
        task = start_dispatcher(state, interval=0.2)
        assert task is not None
        try:
            deadline = time.monotonic() + 20
            while True:
                async with state.sessionmaker() as db:
                    row = await db.scalar(select(OutboxMail))
                assert row is not None
                if row.sent_at is not None or row.last_error is not None:
                    return row
                assert time.monotonic() < deadline, "the dispatcher never tried the mail"
                await asyncio.sleep(0.05)
        finally:
            await stop_dispatcher(task)
    finally:
        await state.engine.dispose()


def test_mail_goes_over_starttls_with_the_configured_login(
    database_url: str, tmp_path: Path, tls_smtp: TlsSmtp, server_pki: Pki
) -> None:
    row = asyncio.run(
        _deliver(
            database_url, tmp_path, tls_smtp.port, password=PASSWORD, ca_file=server_pki.ca_file
        )
    )
    assert row.sent_at is not None and row.last_error is None
    assert [ok for _, ok in tls_smtp.logins] == [True]
    (received,) = tls_smtp.handler.messages
    assert received.rcpt_tos == [TO]
    assert received.message["Subject"] == "Nytt i Jourpost"


def test_a_wrong_password_leaves_the_mail_pending_with_the_error(
    database_url: str, tmp_path: Path, tls_smtp: TlsSmtp, server_pki: Pki
) -> None:
    row = asyncio.run(
        _deliver(database_url, tmp_path, tls_smtp.port, password="fel", ca_file=server_pki.ca_file)
    )
    assert row.sent_at is None
    assert row.last_error == "SMTPAuthenticationError"
    assert row.attempts == 1 and row.next_attempt_at > row.created_at  # retried with backoff
    assert tls_smtp.logins and not any(ok for _, ok in tls_smtp.logins)  # tried, refused
    assert tls_smtp.handler.messages == []


def test_a_server_certificate_from_another_ca_is_refused(
    database_url: str, tmp_path: Path, tls_smtp: TlsSmtp
) -> None:
    other = make_pki(tmp_path, "other")
    row = asyncio.run(
        _deliver(database_url, tmp_path, tls_smtp.port, password=PASSWORD, ca_file=other.ca_file)
    )
    assert row.sent_at is None and row.last_error == "SSLCertVerificationError"
    assert row.attempts == 1
    assert tls_smtp.logins == []  # the password never crossed the connection
    assert tls_smtp.handler.messages == []
