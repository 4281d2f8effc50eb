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
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

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
    """aiosmtplib over SMTP; STARTTLS and login only when configured."""

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
    password: str | None = None
    """Password for `username`."""
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
            start_tls=self.start_tls,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )


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


async def _claim(maker: async_sessionmaker[AsyncSession], limit: int) -> list[OutboxMail]:
    """Take a lease on up to `limit` due rows; a row leased by another worker is skipped."""
    now = utcnow()
    claimed: list[OutboxMail] = []
    async with maker() as db, db.begin():
        candidates = (
            await db.scalars(
                select(OutboxMail.id)
                .where(
                    OutboxMail.sent_at.is_(None),
                    OutboxMail.next_attempt_at <= now,
                    or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now),
                )
                .order_by(OutboxMail.next_attempt_at)
                .limit(limit)
            )
        ).all()
    for row_id in candidates:
        async with maker() as db, db.begin():
            # Conditional update: only one worker can win the lease on a row.
            won = await db.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.id == row_id,
                    OutboxMail.sent_at.is_(None),
                    or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now),
                )
                .values(claimed_until=now + LEASE)
            )
            if getattr(won, "rowcount", 0) == 1:
                row = await db.get(OutboxMail, row_id)
                assert row is not None
                claimed.append(row)
    return claimed


async def dispatch_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    public_url: str,
    sender: str | None = None,
    limit: int = 100,
) -> int:
    """Send the due outbox rows; return how many were sent. Failures are retried later."""
    sent = 0
    for row in await _claim(sessionmaker, limit):
        try:
            await mailer.send(compose(row, public_url=public_url, sender=sender))
        except Exception as exc:  # any failure: keep the row, retry with backoff
            attempts = row.attempts + 1
            log.warning("mail %s failed (attempt %d): %s", row.id, attempts, type(exc).__name__)
            async with sessionmaker() as db, db.begin():
                await db.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id == row.id)
                    .values(
                        attempts=attempts,
                        last_error=type(exc).__name__[:200],
                        next_attempt_at=utcnow() + backoff(attempts),
                        claimed_until=None,
                    )
                )
            continue
        async with sessionmaker() as db, db.begin():
            await db.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id)
                .values(sent_at=utcnow(), attempts=row.attempts + 1, claimed_until=None)
            )
        sent += 1
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


class _HasPortalState(Protocol):
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    mailer: Any


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
        state.mailer = SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
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
