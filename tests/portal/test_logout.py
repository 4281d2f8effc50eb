"""Logout at a shared jour workstation, logging in again, and what login starts may cost.

Issue 11: "Logga ut" must end the identity provider's single sign-on session too (RP-initiated
logout), the next login from that browser must ask for a fresh authentication even at a provider
that ignores the logout, logging in again must end the old server-side session, login starts are
limited per client address, and unfinished or expired sessions are purged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from auth.sessions import SessionPolicy, hash_token
from portal import jobs
from portal.account import service
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.models import WebSession
from portal.settings import SettingsError
from tests.conftest import make_settings
from tests.portal.conftest import RunningPortal, portal_at_oidc_provider, running_portal
from tests.portal.login import csrf_form, login, submit_idp_page
from tests.servers.forms import form_with_field, forms

ADA = "197512189882"
HANNA = "196901159803"


def _follow_to_idp_or_callback(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Follow redirects until the provider shows a page (200) or sends us to our callback."""
    for _ in range(10):
        location = response.headers.get("location", "")
        if response.status_code == 200 or "/auth/callback" in location:
            return response
        assert response.status_code in (302, 303), response.text
        response = client.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


def _logout(client: httpx.Client) -> httpx.Response:
    # Origin: as the browser names the page's origin (portal.web.origin checks it).
    origin = {"Origin": str(client.base_url)}
    r = client.post("/auth/logout", data=csrf_form(client), headers=origin)
    assert r.status_code == 303
    return r


def test_logout_ends_the_providers_session_and_the_next_person_must_authenticate(
    portal: RunningPortal,
) -> None:
    """Hanna logs out at the shared workstation; the next person is asked who they are."""
    browser, _ = login(portal.url, HANNA)
    assert "Hanna" in browser.get("/").text
    out = _logout(browser)
    location = out.headers["location"]
    assert location.startswith(f"{portal.url}/dev-idp/logout?")  # RP-initiated logout
    assert HANNA not in location and "id_token_hint" not in location  # this token names her
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["post_logout_redirect_uri"] == f"{portal.url}/?utloggad=1"
    back = browser.get(location)
    assert back.status_code == 303 and back.headers["location"] == f"{portal.url}/?utloggad=1"
    assert "Du är utloggad" in browser.get(back.headers["location"]).text

    page = _follow_to_idp_or_callback(browser, browser.get("/auth/login"))
    assert page.status_code == 200 and "personal_identity_number" in page.text  # it asks
    answer = submit_idp_page(browser, page, ADA)
    assert answer.status_code in (302, 303), answer.text
    home = browser.get("/").text
    assert "Ada" in home and "Hanna" not in home


def test_the_login_after_a_logout_asks_afresh_even_if_the_provider_kept_its_session(
    portal: RunningPortal,
) -> None:
    """A provider that ignores the logout (here: the browser never went there) still asks."""
    browser, _ = login(portal.url, HANNA)
    out = _logout(browser)  # the redirect to the provider's logout is not followed
    marker = [c for c in out.headers.get_list("set-cookie") if c.startswith("jp_fresh_login=")]
    assert marker and "HttpOnly" in marker[0] and HANNA not in marker[0]
    page = _follow_to_idp_or_callback(browser, browser.get("/auth/login"))
    assert page.status_code == 200 and "personal_identity_number" in page.text
    answer = submit_idp_page(browser, page, ADA)
    assert answer.status_code in (302, 303), answer.text
    assert "Ada" in browser.get("/").text
    # once someone has logged in afresh, the marker is gone: single sign-on works again
    assert browser.cookies.get("jp_fresh_login") is None
    again = _follow_to_idp_or_callback(browser, browser.get("/auth/login"))
    assert again.status_code in (302, 303) and "/auth/callback" in again.headers["location"]


def test_logging_in_again_ends_the_old_session(portal: RunningPortal) -> None:
    browser, _ = login(portal.url, HANNA)
    old = browser.cookies["jp_session"]
    start = browser.get("/auth/login")
    assert start.status_code in (302, 303)
    callback = _follow_to_idp_or_callback(browser, start)  # single sign-on at the provider
    assert browser.get(callback.headers["location"]).status_code in (302, 303)
    new = browser.cookies["jp_session"]
    assert new != old and "Hanna" in browser.get("/").text
    replay = httpx.get(f"{portal.url}/admin/users", cookies={"jp_session": old})
    assert replay.status_code in (302, 303)  # not Hanna's 403: the old session is gone
    assert replay.headers["location"].startswith("/auth/login")


async def _count(url: str, *where: object) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            return int(await db.scalar(select(func.count()).select_from(WebSession).where(*where)))
    finally:
        await engine.dispose()


def test_a_browser_starting_login_again_and_again_keeps_one_pending_row(
    portal: RunningPortal,
) -> None:
    url = portal.settings.database_url
    pending = WebSession.user_id.is_(None)
    before = asyncio.run(_count(url, pending))
    browser = httpx.Client(base_url=portal.url, follow_redirects=False)
    for _ in range(5):
        assert browser.get("/auth/login").status_code in (302, 303)
    assert asyncio.run(_count(url, pending)) == before + 1


def test_login_starts_are_limited_per_client_address(portal: RunningPortal) -> None:
    for _ in range(service.LOGIN_START_LIMIT):
        assert httpx.get(f"{portal.url}/auth/login").status_code in (302, 303)
    refused = httpx.get(f"{portal.url}/auth/login", headers={"accept": "text/html"})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= service.LOGIN_START_WINDOW.total_seconds()
    assert "För många inloggningsförsök" in refused.text and 'lang="sv"' in refused.text
    assert "set-cookie" not in refused.headers or "jp_session" not in refused.headers["set-cookie"]


def test_the_login_start_limit_is_a_setting(database_url: str, tmp_path: Path) -> None:
    """JOURPOST_LOGIN_START_LIMIT (an office behind one NAT address at a shift change needs
    more than the default): three starts, then 429; zero is refused at start-up."""
    with running_portal(tmp_path, database_url, login_start_limit=3) as portal:
        for _ in range(3):
            assert httpx.get(f"{portal.url}/auth/login").status_code in (302, 303)
        assert httpx.get(f"{portal.url}/auth/login").status_code == 429
    with pytest.raises(SettingsError, match="JOURPOST_LOGIN_START_LIMIT"):
        make_settings(tmp_path, database_url, login_start_limit=0)


async def _age(url: str, token_hashes: dict[str, dict[str, timedelta]]) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db, db.begin():
            for key, ages in token_hashes.items():
                values = {column: utcnow() - age for column, age in ages.items()}
                await db.execute(update(WebSession).where(WebSession.id == key).values(**values))
    finally:
        await engine.dispose()


async def _purge(url: str, policy: SessionPolicy) -> None:
    engine = make_engine(url)
    try:
        await jobs.run_once(make_sessionmaker(engine), session_policy=policy)
    finally:
        await engine.dispose()


async def _exists(url: str, key: str) -> bool:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await db.get(WebSession, key) is not None
    finally:
        await engine.dispose()


def test_the_periodic_job_purges_unfinished_ended_and_expired_sessions(
    portal: RunningPortal,
) -> None:
    url = portal.settings.database_url
    policy = SessionPolicy(
        idle=timedelta(minutes=portal.settings.session_idle_minutes),
        absolute=timedelta(hours=portal.settings.session_absolute_hours),
    )
    fresh_pending = httpx.Client(base_url=portal.url, follow_redirects=False)
    fresh_pending.get("/auth/login")
    old_pending = httpx.Client(base_url=portal.url, follow_redirects=False)
    old_pending.get("/auth/login")
    live, _ = login(portal.url, ADA)
    idle, _ = login(portal.url, HANNA)
    long_ago, _ = login(portal.url, HANNA)
    ended, _ = login(portal.url, HANNA)
    _logout(ended)
    keys = {
        name: hash_token(client.cookies["jp_session"])
        for name, client in [
            ("fresh_pending", fresh_pending),
            ("old_pending", old_pending),
            ("live", live),
            ("idle", idle),
            ("long_ago", long_ago),
        ]
    }
    asyncio.run(
        _age(
            url,
            {
                keys["old_pending"]: {"created_at": timedelta(minutes=11)},
                keys["idle"]: {"last_seen_at": policy.idle + timedelta(minutes=1)},
                keys["long_ago"]: {
                    "authenticated_at": policy.absolute + timedelta(minutes=1),
                    "last_seen_at": timedelta(0),
                },
            },
        )
    )
    ended_rows = WebSession.ended_at.is_not(None)
    assert asyncio.run(_count(url, ended_rows)) > 0
    asyncio.run(_purge(url, policy))
    gone = {name: not asyncio.run(_exists(url, key)) for name, key in keys.items()}
    assert gone == {
        "fresh_pending": False,
        "old_pending": True,
        "live": False,
        "idle": True,
        "long_ago": True,
    }
    assert asyncio.run(_count(url, ended_rows)) == 0  # used callbacks, logouts
    assert "Ada" in live.get("/").text  # the live session still works


def test_the_login_redirect_carries_no_request_parameters(portal: RunningPortal) -> None:
    """Pushed (RFC 9126): the browser's URL holds only the client and an opaque handle."""
    start = httpx.get(f"{portal.url}/auth/login")
    query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    assert set(query) == {"client_id", "request_uri"}


# -- the same at an independent provider (npm oidc-provider) ------------------------------------


@pytest.fixture
def portal_at_op(database_url: str, tmp_path: Path) -> Iterator[RunningPortal]:
    """The portal logging in at oidc-provider, which shows a login form when it asks."""
    with portal_at_oidc_provider(
        database_url,
        tmp_path,
        post_logout_redirect_uri="http://127.0.0.1:{port}/?utloggad=1",
        login_form=True,
    ) as portal:
        yield portal


def _op_login(browser: httpx.Client, page: httpx.Response, pnr: str) -> None:
    """Type the personnummer into oidc-provider's form and walk back through our callback.

    When another account was logged in there, the provider first ends that session with a page
    that submits itself (script); a browser runs it, the test posts the form the same way.
    """
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    response = browser.post(form.action, data={"personal_identity_number": pnr})
    for _ in range(15):
        location = response.headers.get("location", "")
        if response.status_code == 200 and "document.forms[0].submit()" in response.text:
            [auto] = forms(response.text, str(response.url))
            response = browser.post(auto.action, data=auto.fields)
            continue
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        if "/auth/callback" in location:
            assert browser.get(location).status_code in (302, 303)
            return
        response = browser.get(httpx.URL(str(response.url)).join(location))
    raise AssertionError("too many redirects")


def test_logout_at_oidc_provider_makes_the_next_person_authenticate(
    portal_at_op: RunningPortal,
) -> None:
    portal = portal_at_op
    browser = httpx.Client(base_url=portal.url, follow_redirects=False, timeout=30)
    page = _follow_to_idp_or_callback(browser, browser.get("/auth/login"))
    assert page.status_code == 200
    _op_login(browser, page, HANNA)
    assert "Handläggare" in browser.get("/").text

    out = _logout(browser)
    location = out.headers["location"]
    assert "/session/end?" in location and HANNA not in location
    assert "id_token_hint" in location  # this provider's ID token names nobody
    confirm = browser.get(location)
    assert confirm.status_code == 200, confirm.text[:300]
    [form] = forms(confirm.text, str(confirm.url))
    # "Yes, sign me out" sits outside the form (form="op.logoutForm"); a browser sends the
    # clicked button's name and value with the form's fields.
    done = browser.post(form.action, data={**form.fields, "logout": "yes"})
    assert done.status_code in (302, 303)
    assert done.headers["location"] == f"{portal.url}/?utloggad=1"
    assert "Du är utloggad" in browser.get(done.headers["location"]).text

    page = _follow_to_idp_or_callback(browser, browser.get("/auth/login"))
    assert page.status_code == 200 and "personal_identity_number" in page.text  # it asks
    _op_login(browser, page, ADA)
    home = browser.get("/").text
    assert "Administratör" in home and "Handläggare" not in home
