"""`/dev-mail`: the demo's mailbox — the notifications Jourpost would have e-mailed.

Only mounted in demo mode (portal/app.py), where no SMTP server is configured: a newcomer sees
what each person was told, with the link, instead of mail vanishing. The messages carry no
personal data by design (portal.notify.service), and the demo's persons are fictitious.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template
from sqlalchemy import select

from portal.notify.models import OutboxMail
from portal.notify.service import compose
from portal.web.deps import Db, OptionalPrincipal, Settings
from portal.web.render import render

SHOWN = 50
"""The newest messages shown."""


class DevMailPage(Controller):
    """The demo's mailbox (no login needed: it holds only generic notices to fictitious people)."""

    path = "/dev-mail"
    include_in_schema = False

    @get("/")
    async def mailbox(self, db: Db, settings: Settings, principal: OptionalPrincipal) -> Template:
        rows = await db.scalars(
            select(OutboxMail).order_by(OutboxMail.created_at.desc()).limit(SHOWN)
        )
        messages = [
            (row, compose(row, public_url=settings.public_url, sender=settings.mail_from))
            for row in rows
        ]
        return render(
            "notify/dev_mail.html",
            principal,
            messages=[
                {
                    "to": str(m["To"]),
                    "subject": str(m["Subject"]),
                    "body": m.get_content(),
                    "link": f"{settings.public_url}{row.link_path}",
                    "queued": row.created_at,
                }
                for row, m in messages
            ],
        )
