"""Open an authenticated session for a demo person directly in the database.

Feature tests use this to act as a person without walking the identity provider each time; the
login flow itself is tested end to end in test_login.py against real providers.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from auth.sessions import cookie_name, new_token
from portal.db.base import utcnow
from portal.db.engine import engine_from_settings, make_sessionmaker
from portal.db.models import User, WebSession
from portal.pii import Vault
from portal.settings import Settings


async def open_session(settings: Settings, personnummer: str) -> str:
    """Insert an authenticated session for the user with this personnummer; return its token."""
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    engine = engine_from_settings(settings)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            user = await db.scalar(select(User).where(User.pnr_index == vault.index(personnummer)))
            if user is None:
                raise LookupError("no such demo user")
            token, key = new_token()
            now = utcnow()
            db.add(WebSession(id=key, user_id=user.id, authenticated_at=now, last_seen_at=now))
        return token
    finally:
        await engine.dispose()


def client_as(base_url: str, settings: Settings, personnummer: str) -> httpx.Client:
    """An httpx client logged in as the person, with a CSRF token ready for unsafe requests.

    Forms send the token as `_csrf_token`; API calls send it in the X-CSRFToken header
    (`client.headers` already carries it).
    """
    token = asyncio.run(open_session(settings, personnummer))
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    client.cookies.set(cookie_name(settings.https), token)
    client.get("/healthz")  # any safe request sets the csrftoken cookie
    csrf = client.cookies.get("csrftoken")
    if csrf:
        client.headers["X-CSRFToken"] = csrf
    return client
