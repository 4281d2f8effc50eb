"""Browser login through the OpenID provider, and logout."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromQuery
from litestar.response import Redirect
from sqlalchemy import update

from auth.errors import ProviderUnavailable
from auth.sessions import cookie_name
from portal.account import service
from portal.db.base import utcnow
from portal.db.models import WebSession
from portal.errors import NotAuthenticated
from portal.web import errors as web_errors
from portal.web.deps import (
    CurrentUser,
    Db,
    OptionalPrincipal,
    RelyingParty,
    Sessions,
    Settings,
    StepUps,
    Vault,
)

POST_LOGOUT_PATH = "/?utloggad=1"
"""Where the identity provider sends the browser after logout (registered there as
`<public_url>/?utloggad=1`)."""
FRESH_LOGIN_SECONDS = 12 * 3600
"""How long a logout makes the next login from that browser ask for a fresh authentication:
at least a provider's single sign-on session; the marker goes at the next login anyway."""


def _session_cookie(settings: Settings, value: str, *, max_age: int | None = None) -> Cookie:
    """HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET), Secure on https."""
    return Cookie(
        key=cookie_name(settings.https),
        value=value,
        path="/",
        httponly=True,
        secure=settings.https,
        samesite="lax",
        max_age=max_age,
    )


def _fresh_login_cookie(settings: Settings, *, on: bool) -> Cookie:
    """The marker "someone logged out in this browser": a constant value, names nobody."""
    return Cookie(
        key="__Host-jp_fresh_login" if settings.https else "jp_fresh_login",
        value="1" if on else "",
        path="/",
        httponly=True,
        secure=settings.https,
        samesite="lax",
        max_age=FRESH_LOGIN_SECONDS if on else 0,
    )


def _limiter(state: State, settings: Settings) -> service.LoginStartLimiter:
    """The instance's limiter (its limit, JOURPOST_LOGIN_START_LIMIT, and window; the counts
    are in the database). Benches put one with a huge limit in the app state."""
    limiter = state.get("login_start_limiter")
    if not isinstance(limiter, service.LoginStartLimiter):
        limiter = service.LoginStartLimiter(limit=settings.login_start_limit)
        state["login_start_limiter"] = limiter
    return limiter


class AccountController(Controller):
    """`/auth/login` → identity provider → `/auth/callback`; `POST /auth/logout`."""

    path = "/auth"
    include_in_schema = False

    @get("/login")
    async def login(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        state: State,
        sessions: Sessions,
        vault: Vault,
        settings: Settings,
        relying_party: RelyingParty,
        next: FromQuery[str | None] = None,
        fresh: FromQuery[bool] = False,
    ) -> Response[Any]:
        """Start a login; `fresh=true` (or a logout in this browser) makes the provider ask anew
        instead of reusing its own session: the next person at a shared computer."""
        # Counted in a transaction of its own, committed before the identity provider is asked:
        # the count holds even when this request fails, and no instance waits on its row.
        async with sessions() as counting, counting.begin():
            wait = await _limiter(state, settings).retry_after(
                counting, vault, request.client.host if request.client else ""
            )
        if wait is not None:
            return _too_many_starts(request, wait)
        token, url = await service.begin_login(
            db,
            relying_party,
            next_path=next,
            previous_token=request.cookies.get(cookie_name(settings.https)),
            fresh=fresh or bool(request.cookies.get(_fresh_login_cookie(settings, on=True).key)),
        )
        return Redirect(url, cookies=[_session_cookie(settings, token, max_age=600)])

    @get("/callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: Settings,
        vault: Vault,
        relying_party: RelyingParty,
        step_ups: StepUps,
        principal: OptionalPrincipal,
    ) -> Redirect:
        """The identity provider's answer: a login, or a logged-in user's step-up (dispatched
        on the pending purpose to the feature that asked for it, e.g. signing a decision)."""
        token = request.cookies.get(cookie_name(settings.https))
        params = dict(request.query_params)
        purpose = await service.pending_step_up(db, token, step_ups)
        if purpose is not None:
            if principal is None:
                raise NotAuthenticated()
            return Redirect(await step_ups[purpose](db, principal, params))
        result = await service.complete_login(db, relying_party, vault, token=token, params=params)
        cookies = [_session_cookie(settings, result.token), _fresh_login_cookie(settings, on=False)]
        return Redirect(result.next_path, cookies=cookies)

    @post("/keepalive", status_code=204)
    async def keepalive(self, db: Db, user: CurrentUser) -> None:
        """ "Fortsätt vara inloggad": the session's idle clock starts again (never past its
        absolute limit). 401 when the session has already ended."""
        await db.execute(
            update(WebSession).where(WebSession.id == user.session_id).values(last_seen_at=utcnow())
        )

    @post("/logout", status_code=303)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: Settings,
        vault: Vault,
        relying_party: RelyingParty,
    ) -> Redirect:
        """End our session, then the provider's (RP-initiated logout) when it offers that."""
        token = request.cookies.get(cookie_name(settings.https))
        id_token = await service.logout(db, vault, token)
        target = POST_LOGOUT_PATH
        if token:
            # Provider unreachable: logged out here; the fresh-login marker makes it ask next time.
            with contextlib.suppress(ProviderUnavailable):
                target = await relying_party.end_session_url(id_token) or target
        cookies = [_session_cookie(settings, "", max_age=0), _fresh_login_cookie(settings, on=True)]
        return Redirect(target, status_code=303, cookies=cookies)


def _too_many_starts(request: Request[Any, Any, Any], wait: int) -> Response[Any]:
    title = "För många inloggningsförsök"
    detail = (
        "Det har startats för många inloggningar från din adress på kort tid. "
        f"Vänta {wait} sekunder och försök sedan igen."
    )
    if web_errors.wants_json(request):
        response: Response[Any] = web_errors.problem(429, title, detail, request.url.path)
    else:
        response = web_errors.page(request, 429, title, detail)
    response.headers["Retry-After"] = str(wait)
    return response
