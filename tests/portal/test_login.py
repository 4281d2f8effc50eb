"""Login through the development identity provider, sessions, logout, revocation, no access."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from auth.sessions import hash_token
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import AuditEntry, WebSession
from portal.demo import DEMO_PERSONS
from tests.portal.conftest import RunningPortal
from tests.portal.login import csrf_form, login

STHLM = ZoneInfo("Europe/Stockholm")
ADA = "197512189882"
HANNA = "196901159803"
CLIENT_NOT_A_USER = "199204029780"


async def _audit_actions(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            rows = (await db.execute(select(AuditEntry.action, AuditEntry.outcome))).all()
            return [(a, o) for a, o in rows]
    finally:
        await engine.dispose()


async def _age_sessions(url: str, **delta: timedelta) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            values = {k: utcnow() - v for k, v in delta.items()}
            await db.execute(
                update(WebSession).where(WebSession.user_id.is_not(None)).values(**values)
            )
    finally:
        await engine.dispose()


def test_every_demo_person_lands_on_their_start_page(portal: RunningPortal) -> None:
    for person in DEMO_PERSONS:
        client, callback = login(portal.url, person.personnummer)
        assert callback.status_code in (302, 303), callback.text
        assert callback.headers["location"] == "/"
        start = client.get("/")
        assert start.status_code == 200
        assert f"Välkommen, {person.name}" in start.text
        assert person.role.label in start.text
        assert person.organisation in start.text
        assert start.headers["cache-control"] == "no-store"


def test_login_issues_a_new_session_and_a_hardened_cookie(portal: RunningPortal) -> None:
    client = httpx.Client(base_url=portal.url, follow_redirects=False)
    pre = client.get("/auth/login")
    pre_token = client.cookies["jp_session"]
    assert "httponly" in pre.headers["set-cookie"].lower()
    client2, callback = login(portal.url, HANNA)
    cookie = callback.headers["set-cookie"]
    assert re.search(r"jp_session=[^;]+", cookie)
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/" in cookie
    assert client2.cookies["jp_session"] != pre_token


def test_next_parameter_is_followed_only_within_the_site(portal: RunningPortal) -> None:
    _, ok = login(portal.url, ADA, next_path="/admin/users")
    assert ok.headers["location"] == "/admin/users"
    _, evil = login(portal.url, ADA, next_path="//evil.example/x")
    assert evil.headers["location"] == "/"


def test_authenticated_person_without_a_role_sees_no_access_and_is_audited(
    portal: RunningPortal,
) -> None:
    client, callback = login(portal.url, CLIENT_NOT_A_USER)
    assert callback.status_code == 403
    assert "Du har ingen behörighet i Jourpost" in callback.text
    assert client.get("/").text.count("Logga in") >= 1  # not logged in
    actions = asyncio.run(_audit_actions(portal.settings.database_url))
    assert ("login.no_access", "denied") in actions


def test_logout_ends_the_session_at_once(portal: RunningPortal) -> None:
    client, _ = login(portal.url, HANNA)
    token = client.cookies["jp_session"]
    r = client.post("/auth/logout", data=csrf_form(client))
    assert r.status_code == 303
    replay = httpx.get(f"{portal.url}/admin/users", cookies={"jp_session": token})
    assert replay.status_code in (302, 303)
    assert replay.headers["location"].startswith("/auth/login")


def test_revoked_role_stops_access_on_the_next_request(portal: RunningPortal) -> None:
    hanna, _ = login(portal.url, HANNA)
    assert "Handläggare" in hanna.get("/").text
    ada, _ = login(portal.url, ADA)
    users = ada.get("/admin/users").text
    hanna_link = re.search(r'href="(/admin/users/[0-9a-f-]+)">Hanna Hedlund<', users)
    assert hanna_link
    page = ada.get(hanna_link.group(1)).text
    revoke = re.search(r'action="(/admin/memberships/[0-9a-f-]+/revoke)"', page)
    assert revoke
    assert ada.post(revoke.group(1), data={**csrf_form(ada), "confirm": "yes"}).status_code == 303
    after = hanna.get("/")
    assert after.status_code == 403
    assert "Du har ingen behörighet i Jourpost" in after.text


@pytest.mark.parametrize(
    "age", [{"last_seen_at": timedelta(minutes=31)}, {"authenticated_at": timedelta(hours=13)}]
)
def test_idle_and_absolute_timeouts_end_the_session(
    portal: RunningPortal, age: dict[str, timedelta]
) -> None:
    client, _ = login(portal.url, ADA)
    assert client.get("/admin/users").status_code == 200
    asyncio.run(_age_sessions(portal.settings.database_url, **age))
    r = client.get("/admin/users")
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/auth/login")


async def _last_seen(url: str, token: str) -> datetime:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            seen = await db.scalar(
                select(WebSession.last_seen_at).where(WebSession.id == hash_token(token))
            )
            assert seen is not None
            return seen
    finally:
        await engine.dispose()


def test_a_request_touches_the_session_at_most_once_a_minute(portal: RunningPortal) -> None:
    client, _ = login(portal.url, ADA)
    token = client.cookies["jp_session"]
    url = portal.settings.database_url
    asyncio.run(_age_sessions(url, last_seen_at=timedelta(seconds=20)))
    before = asyncio.run(_last_seen(url, token))
    assert client.get("/admin/users").status_code == 200
    assert asyncio.run(_last_seen(url, token)) == before  # seen 20 s ago: not written again
    asyncio.run(_age_sessions(url, last_seen_at=timedelta(minutes=5)))
    aged = asyncio.run(_last_seen(url, token))
    assert client.get("/admin/users").status_code == 200
    touched = asyncio.run(_last_seen(url, token))
    assert touched > aged + timedelta(minutes=4)  # seen 5 min ago: touched with the request


def test_handler_is_refused_admin_pages_and_the_attempt_is_audited(portal: RunningPortal) -> None:
    client, _ = login(portal.url, HANNA)
    r = client.get("/admin/users")
    assert r.status_code == 403
    assert "behörighet" in r.text
    assert ("admin.access", "denied") in asyncio.run(_audit_actions(portal.settings.database_url))


def test_admin_adds_a_user_who_can_then_log_in(portal: RunningPortal) -> None:
    ada, _ = login(portal.url, ADA)
    bad = ada.post(
        "/admin/users",
        data={**csrf_form(ada), "personal_identity_number": "19780312-0000", "name": "X"},
    )
    assert bad.status_code == 422
    assert "Ange ett giltigt person- eller samordningsnummer" in bad.text
    assert 'aria-invalid="true"' in bad.text
    created = ada.post(
        "/admin/users",
        data={**csrf_form(ada), "personal_identity_number": "199204029780", "name": "Vera Vik"},
    )
    assert created.status_code == 303
    user_page = ada.get(created.headers["location"]).text
    org_id = re.search(r'<option value="([0-9a-f-]+)"[^>]*>Ljusdal</option>', user_page)
    assert org_id
    grant = ada.post(
        f"{created.headers['location']}/memberships",
        data={**csrf_form(ada), "organisation_id": org_id.group(1), "role": "handler"},
    )
    assert grant.status_code == 303
    wrong = ada.post(
        f"{created.headers['location']}/memberships",
        data={**csrf_form(ada), "organisation_id": org_id.group(1), "role": "jour_staff"},
    )
    assert wrong.status_code == 422
    client, callback = login(portal.url, "199204029780")
    assert callback.status_code in (302, 303)
    assert "Ljusdal" in client.get("/").text


async def test_https_portal_uses_host_prefixed_secure_cookies_and_hsts(
    portal: RunningPortal,
) -> None:
    """A production-mode portal on https, logging in at the running portal's dev IdP.

    The dev IdP checks the redirect URI already when the request is pushed (RFC 9126), so the
    relying party uses the callback registered there (the running portal's)."""
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from auth.oidc import OIDCProviderConfig, RelyingParty
    from portal.app import create_app

    settings = replace(
        portal.settings,
        mode="production",
        public_url="https://portal.test",
        dev_idp_enabled=False,
        oidc_issuer=f"{portal.url}/dev-idp",
    ).validate()
    rp = RelyingParty(
        OIDCProviderConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_uri=f"{portal.url}/auth/callback",
        )
    )
    app = create_app(settings, relying_party=rp)
    async with AsyncTestClient(app, base_url="https://portal.test") as client:
        start = await client.get("/auth/login", follow_redirects=False)
        assert start.status_code in (302, 303)
        assert start.headers["location"].startswith(f"{portal.url}/dev-idp/")
        cookies = start.headers.get_list("set-cookie")
        cookie = next(c for c in cookies if "jp_session" in c)
        assert cookie.startswith("__Host-jp_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        landing = await client.get("/")
        assert landing.headers["strict-transport-security"].startswith("max-age=")
        csrf = [c for c in cookies if "csrftoken" in c]
        assert csrf and csrf[0].startswith("__Host-csrftoken=") and "Secure" in csrf[0]
        # the CSP lets forms go to the identity provider's origin, nowhere else
        assert f"form-action 'self' {portal.url}" in landing.headers["content-security-policy"]


async def test_unreachable_identity_provider_is_a_503_not_a_refusal(
    portal: RunningPortal,
) -> None:
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from portal.app import create_app

    settings = replace(
        portal.settings, dev_idp_enabled=False, oidc_issuer="http://127.0.0.1:9/idp"
    ).validate()
    async with AsyncTestClient(create_app(settings)) as client:
        r = await client.get("/auth/login", headers={"accept": "text/html"})
        assert r.status_code == 503
        assert "Inloggningstjänsten svarar inte" in r.text


def test_page_forms_carry_a_working_csrf_field(portal: RunningPortal) -> None:
    """A browser posts the hidden field from the page (no header): the logout form must work."""
    from tests.servers.forms import forms

    client, _ = login(portal.url, HANNA)
    page = client.get("/")
    logout = next(f for f in forms(page.text, str(page.url)) if f.action.endswith("/auth/logout"))
    assert "_csrf_token" in logout.fields and "&lt;input" not in page.text
    r = client.post(logout.action, data=logout.fields)
    assert r.status_code == 303


def test_admin_sets_a_notification_address(portal: RunningPortal) -> None:
    ada, _ = login(portal.url, ADA)
    bad = ada.post(
        "/admin/users",
        data={
            **csrf_form(ada),
            "personal_identity_number": "199204029780",
            "name": "Vera Vik",
            "email": "inte en adress",
        },
    )
    assert bad.status_code == 422 and "Ange en giltig e-postadress" in bad.text
    created = ada.post(
        "/admin/users",
        data={
            **csrf_form(ada),
            "personal_identity_number": "199204029780",
            "name": "Vera Vik",
            "email": "vera@ljusdal.kommun.example",
        },
    )
    page = ada.get(created.headers["location"]).text
    assert 'value="vera@ljusdal.kommun.example"' in page
    changed = ada.post(f"{created.headers['location']}/email", data={**csrf_form(ada), "email": ""})
    assert changed.status_code == 303
    assert 'value=""' in ada.get(created.headers["location"]).text


def test_no_page_title_names_a_person(portal: RunningPortal) -> None:
    """Titles end up in browser history, bookmarks and window lists: no names there."""
    ada, _ = login(portal.url, ADA)
    users = ada.get("/admin/users").text
    link = re.search(r'href="(/admin/users/[0-9a-f-]+)">Hanna Hedlund<', users)
    assert link
    page = ada.get(link.group(1)).text
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title and "Hanna" not in title.group(1) and "Hedlund" not in title.group(1)
    assert "<h1>Hanna Hedlund</h1>" in page


def _set_registered_name(portal: RunningPortal, pnr: str, name: str) -> None:
    from portal.db.models import User
    from portal.pii import Vault

    s = portal.settings
    vault = Vault(s.keks, s.current_kek, s.blind_index_key)

    async def go() -> None:
        engine = make_engine(s.database_url)
        try:
            async with make_sessionmaker(engine)() as db, db.begin():
                user = await db.scalar(select(User).where(User.pnr_index == vault.index(pnr)))
                assert user is not None
                user.name_enc = vault.encrypt(name, f"users.name:{user.id}")
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_the_admins_name_is_kept_and_the_providers_shown_beside_it(portal: RunningPortal) -> None:
    _set_registered_name(portal, HANNA, "Hanna M. Hedlund")  # as the admin typed it
    hanna, _ = login(portal.url, HANNA)  # the provider says "Hanna Hedlund"
    assert "Välkommen, Hanna M. Hedlund" in hanna.get("/").text
    ada, _ = login(portal.url, ADA)
    link = re.search(
        r'href="(/admin/users/[0-9a-f-]+)">Hanna M. Hedlund<', ada.get("/admin/users").text
    )
    assert link is not None
    page = ada.get(link.group(1)).text
    assert "E-legitimationen angav namnet <strong>Hanna Hedlund</strong>" in page
    # Same name at the provider and here: no notice.
    _set_registered_name(portal, HANNA, "Hanna Hedlund")
    login(portal.url, HANNA)
    assert "E-legitimationen angav namnet" not in ada.get(link.group(1)).text


def test_removing_a_role_asks_first_and_times_are_local(portal: RunningPortal) -> None:
    ada, _ = login(portal.url, ADA)
    users = ada.get("/admin/users").text
    link = re.search(r'href="(/admin/users/[0-9a-f-]+)">Hanna Hedlund<', users)
    assert link is not None
    page = ada.get(link.group(1)).text
    revoke = re.search(r'action="(/admin/memberships/[0-9a-f-]+/revoke)"', page)
    assert revoke is not None
    asked = ada.post(revoke.group(1), data=csrf_form(ada))
    assert asked.status_code == 200 and "Ta bort rollen?" in asked.text
    assert "Handläggare" in asked.text and "Hanna Hedlund" in asked.text
    assert "Aktiv" in ada.get(link.group(1)).text  # nothing removed by the first post
    done = ada.post(revoke.group(1), data={**csrf_form(ada), "confirm": "yes"})
    assert done.status_code == 303
    after = ada.get(link.group(1)).text
    shown = re.search(r"Borttagen (\d{4}-\d\d-\d\d \d\d:\d\d)", after)
    assert shown is not None
    # Stockholm time, as every other time in the portal (it was UTC: an hour off in winter).
    local = datetime.strptime(shown.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=STHLM)
    assert abs(local - datetime.now(STHLM)) < timedelta(minutes=2)
    assert ada.post(revoke.group(1), data={**csrf_form(ada), "confirm": "yes"}).status_code == 409


def test_the_no_role_pages_offer_a_way_out(portal: RunningPortal) -> None:
    client, callback = login(portal.url, CLIENT_NOT_A_USER)
    assert callback.status_code == 403
    assert 'href="/auth/login?fresh=true"' in callback.text
    # The provider still has its session: a plain login would come straight back as the same
    # person; "Logga in som en annan person" makes it ask.
    from tests.portal.test_logout import _follow_to_idp_or_callback

    same = _follow_to_idp_or_callback(client, client.get("/auth/login"))
    assert same.status_code in (302, 303) and "/auth/callback" in same.headers["location"]
    other = _follow_to_idp_or_callback(client, client.get("/auth/login?fresh=true"))
    assert other.status_code == 200 and "personal_identity_number" in other.text

    hanna, _ = login(portal.url, HANNA)
    ada, _ = login(portal.url, ADA)
    users = ada.get("/admin/users").text
    link = re.search(r'href="(/admin/users/[0-9a-f-]+)">Hanna Hedlund<', users)
    assert link is not None
    revoke = re.search(
        r'action="(/admin/memberships/[0-9a-f-]+/revoke)"', ada.get(link.group(1)).text
    )
    assert revoke is not None
    ada.post(revoke.group(1), data={**csrf_form(ada), "confirm": "yes"})
    refused = hanna.get("/")
    assert refused.status_code == 403
    assert '<form method="post" action="/auth/logout">' in refused.text
    assert hanna.post("/auth/logout", data=csrf_form(hanna)).status_code == 303
