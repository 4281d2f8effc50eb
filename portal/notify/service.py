"""Notification e-mail through a transactional outbox.

    queue_mail(db, ...)        writes an outbox row in the caller's transaction: an action that
                               rolls back sends nothing, a committed one is never forgotten
    dispatch_pending(...)      sends due rows, each claimed under a lease, marks them sent,
                               and on failure schedules a retry with exponential backoff
    run_dispatcher(...)        the background loop the app starts when smtp_host is set

Threat: e-mail leaves our control (providers, forwarding, phones' lock screens). Messages
therefore say only that something is waiting, plus a link; never a name, personnummer or case
content, and the subject line is the same for every message. The outbox row holds only an
address, a template name and a link path (the opaque record id).

Delivery is at least once: a row is marked sent right after the SMTP server accepted it; if
the process dies between those two steps the lease expires and the mail is sent again. The
Message-ID is derived from the row id so receiving systems can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal.db.base import utcnow
from portal.notify.models import OutboxMail
from portal.settings import Settings

log = logging.getLogger("jourpost.notify")

SUBJECT = "Nytt i Jourpost"
TEMPLATES: dict[str, str] = {
    "new_report": "Det finns en ny händelserapport till er enhet i Jourpost.",
    "report_addendum": "Det finns ett tillägg till en händelserapport till er enhet i Jourpost.",
    "advisory_expiring": "Det finns en avisering som snart går ut.",
    "new_advisory": "Det finns en ny eller ändrad avisering till socialjouren i Jourpost.",
    "sign_request": "Det finns ett beslut som väntar på din underskrift i Jourpost.",
    "sign_reminder": "Ett beslut väntar fortfarande på din underskrift i Jourpost.",
    "sign_overdue": "Ett beslut har väntat på ordförandens underskrift i mer än en timme.",
    "new_assignment": "Det finns ett nytt uppdrag till socialjouren i Jourpost.",
    "assignment_update": "Socialjouren har tagit emot eller avrapporterat ett uppdrag från er.",
    "assignment_overdue": (
        "Ett uppdrag till socialjouren har passerat sin sista tid utan att vara avrapporterat."
    ),
}
_FOOTER = (
    "Logga in i Jourpost för att läsa:\n{link}\n\n"
    "Meddelandet skickas automatiskt och innehåller inga uppgifter om ärendet. Svara inte på det."
)
LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)


class Mailer(Protocol):
    """Sends one message; raises on any failure (the outbox then retries)."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` to its To address."""


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    """aiosmtplib over SMTP; STARTTLS and login only when configured.

    With `start_tls` the connection is upgraded before anything else is said and the server's
    certificate must chain to `ca_file` (or the system's CAs) and name `host`; a TLS or AUTH
    failure raises like any other (the outbox retries with backoff and records the error type).
    """

    host: str
    """SMTP server."""
    port: int
    """SMTP port."""
    sender: str
    """From address."""
    start_tls: bool = False
    """Upgrade the connection with STARTTLS."""
    username: str | None = None
    """Login name, when the server requires authentication."""
    password: str | None = field(default=None, repr=False)
    """Password for `username`."""
    ca_file: str | None = None
    """PEM file of the CA(s) the server certificate must chain to (None: the system's)."""
    timeout: float = 30.0
    """Seconds before a connection attempt or command is given up."""

    async def send(self, message: EmailMessage) -> None:
        """Send with aiosmtplib; any SMTP or network error propagates."""
        import aiosmtplib

        if "From" not in message:
            message["From"] = self.sender
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            start_tls=self.start_tls,  # False: never upgrade opportunistically either
            validate_certs=True,
            tls_context=self.tls_context() if self.start_tls else None,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )

    def tls_context(self) -> ssl.SSLContext:
        """Verifying context: the server certificate must chain to `ca_file` and name `host`."""
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


class InvalidNotification(ValueError):
    """A programming error: unknown template, or a link that is not a local path."""


async def queue_mail(db: AsyncSession, *, to: str, template: str, link_path: str) -> None:
    """Queue a notification in the caller's transaction (sent only if that transaction commits)."""
    if template not in TEMPLATES:
        raise InvalidNotification(f"unknown template {template!r}")
    if not link_path.startswith("/") or link_path.startswith("//") or "?" in link_path:
        raise InvalidNotification("link_path must be a local path without a query")
    db.add(OutboxMail(to_addr=to.strip(), template=template, link_path=link_path))
    await db.flush()


def compose(row: OutboxMail, *, public_url: str, sender: str | None = None) -> EmailMessage:
    """The generic message for an outbox row."""
    msg = EmailMessage()
    msg["To"] = row.to_addr
    if sender:
        msg["From"] = sender
    msg["Subject"] = SUBJECT
    msg["Date"] = formatdate(localtime=False)
    domain = public_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "jourpost"
    msg["Message-ID"] = f"<{row.id}@{domain}>"
    body = TEMPLATES[row.template] + "\n\n" + _FOOTER.format(link=f"{public_url}{row.link_path}")
    msg.set_content(body, charset="utf-8")
    return msg


def backoff(attempts: int) -> timedelta:
    """Delay before retry number `attempts` (1, 2, ...): 30 s doubling, at most an hour."""
    delay = timedelta(seconds=30 * 2 ** min(max(attempts - 1, 0), 12))
    return delay if delay < MAX_BACKOFF else MAX_BACKOFF


async def _claim_one(
    maker: async_sessionmaker[AsyncSession],
) -> tuple[bool, OutboxMail | None]:
    """Lease one due row in a short transaction of its own: (anything was due, the row we won).

    One row at a time, so a lease only has to outlast one SMTP conversation (bounded by the
    mailer's timeout), never a whole batch: a slow relay can no longer let a lease run out while
    the row is still waiting its turn, which is how another instance came to send it again.
    On PostgreSQL the candidate is locked with SKIP LOCKED (concurrent dispatchers take
    different rows); everywhere the conditional UPDATE is what decides who owns the row.
    """
    now = utcnow()
    async with maker() as db, db.begin():
        due = (
            select(OutboxMail.id)
            .where(
                OutboxMail.sent_at.is_(None),
                OutboxMail.next_attempt_at <= now,
                or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now),
            )
            .order_by(OutboxMail.next_attempt_at)
            .limit(1)
        )
        if db.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        row_id = await db.scalar(due)
        if row_id is None:
            return False, None
        won = await db.execute(
            update(OutboxMail)
            .where(
                OutboxMail.id == row_id,
                OutboxMail.sent_at.is_(None),
                or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now),
            )
            .values(claimed_until=now + LEASE, attempts=OutboxMail.attempts + 1)
        )
        if getattr(won, "rowcount", 0) != 1:
            return True, None  # another dispatcher won it between our SELECT and UPDATE
        return True, await db.get(OutboxMail, row_id)


async def dispatch_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    public_url: str,
    sender: str | None = None,
    limit: int = 100,
) -> int:
    """Send up to `limit` due outbox rows, one at a time; return how many were sent.

    Each row: lease it (attempts counts the tries), send it, then mark it sent only if our lease
    still holds (`claimed_until` unchanged); failures are retried later with backoff. Delivery is
    at least once; the Message-ID is the row id, so a duplicate is recognisable.
    """
    sent = 0
    for _ in range(limit):
        due, row = await _claim_one(sessionmaker)
        if not due:
            break
        if row is None:
            continue
        lease = row.claimed_until
        try:
            await mailer.send(compose(row, public_url=public_url, sender=sender))
        except Exception as exc:  # any failure: keep the row, retry with backoff
            log.warning("mail %s failed (attempt %d): %s", row.id, row.attempts, type(exc).__name__)
            async with sessionmaker() as db, db.begin():
                await db.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id == row.id, OutboxMail.claimed_until == lease)
                    .values(
                        last_error=type(exc).__name__[:200],
                        next_attempt_at=utcnow() + backoff(row.attempts),
                        claimed_until=None,
                    )
                )
            continue
        async with sessionmaker() as db, db.begin():
            marked = await db.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id, OutboxMail.sent_at.is_(None))
                .values(sent_at=utcnow(), claimed_until=None)
            )
        if getattr(marked, "rowcount", 0) == 1:
            sent += 1
        else:  # someone else sent it after our lease ran out: the Message-ID tells them apart
            log.warning("mail %s was sent by another dispatcher too", row.id)
    return sent


async def run_dispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    public_url: str,
    sender: str | None = None,
    interval: float = 30.0,
) -> None:
    """Dispatch every `interval` seconds until cancelled; errors are logged, never fatal."""
    while True:
        try:
            count = await dispatch_pending(
                sessionmaker, mailer, public_url=public_url, sender=sender
            )
            if count:
                log.info("sent %d notification(s)", count)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be briefly unreachable; try again later
            log.warning("mail dispatch failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def mailer_from(settings: Settings) -> SmtpMailer:
    """The SMTP mailer the settings describe (STARTTLS, CA file and AUTH when set)."""
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        start_tls=settings.smtp_starttls,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        ca_file=settings.smtp_ca_file or None,
    )


class _HasPortalState(Protocol):
    """What the dispatcher needs of the runtime container (portal.runtime.PortalState)."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Mailer | None


def start_dispatcher(
    state: _HasPortalState, *, interval: float = 30.0
) -> asyncio.Task[None] | None:
    """Start the outbox loop for the app's lifespan when mail is configured; None otherwise.

    Uses `state.mailer` when set (tests, other transports), else an SmtpMailer from the settings.
    """
    settings = state.settings
    if state.mailer is None:
        if not settings.smtp_host:
            return None
        state.mailer = mailer_from(settings)
    return asyncio.create_task(
        run_dispatcher(
            state.sessionmaker,
            state.mailer,
            public_url=settings.public_url,
            sender=settings.mail_from,
            interval=interval,
        ),
        name="jourpost-mail-dispatcher",
    )


async def stop_dispatcher(task: asyncio.Task[None] | None) -> None:
    """Cancel the outbox loop and wait for it (a send in flight is retried after its lease)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
