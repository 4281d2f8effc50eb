"""Browser login through the OpenID provider, and logout."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromQuery
from litestar.response import Redirect

from auth.sessions import cookie_name, hash_token
from portal.account import service
from portal.db.models import WebSession
from portal.decisions import signing
from portal.errors import NotAuthenticated
from portal.web.deps import Db, portal_state
from portal.web.principal import resolve_principal
from portal.web.state import PortalState


def _session_cookie(ps: PortalState, value: str, *, max_age: int | None = None) -> Cookie:
    """HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET), Secure on https."""
    return Cookie(
        key=cookie_name(ps.settings.https),
        value=value,
        path="/",
        httponly=True,
        secure=ps.settings.https,
        samesite="lax",
        max_age=max_age,
    )


class AccountController(Controller):
    """`/auth/login` → identity provider → `/auth/callback`; `POST /auth/logout`."""

    path = "/auth"
    include_in_schema = False

    @get("/login")
    async def login(self, db: Db, state: State, next: FromQuery[str | None] = None) -> Redirect:
        ps = portal_state(state)
        assert ps.relying_party is not None
        token, url = await service.begin_login(db, ps.relying_party, next_path=next)
        return Redirect(url, cookies=[_session_cookie(ps, token, max_age=600)])

    @get("/callback")
    async def callback(self, request: Request[Any, Any, Any], db: Db, state: State) -> Redirect:
        ps = portal_state(state)
        assert ps.relying_party is not None
        token = request.cookies.get(cookie_name(ps.settings.https))
        params = dict(request.query_params)
        session = await db.get(WebSession, hash_token(token)) if token else None
        if signing.has_pending_signature(session):
            # The chair comes back from the step-up authentication for a signature.
            principal = await resolve_principal(db, token, ps.policy, ps.vault)
            if principal is None:
                raise NotAuthenticated()
            request.scope["state"]["principal"] = principal
            decision_id = await signing.complete(
                db, ps.vault, ps.relying_party, ps.signing, ps.object_store, principal, params
            )
            return Redirect(f"/decisions/{decision_id}/sign")
        result = await service.complete_login(
            db, ps.relying_party, ps.vault, token=token, params=params
        )
        return Redirect(result.next_path, cookies=[_session_cookie(ps, result.token)])

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any], db: Db, state: State) -> Redirect:
        ps = portal_state(state)
        await service.logout(db, request.cookies.get(cookie_name(ps.settings.https)))
        return Redirect(
            "/?utloggad=1", status_code=303, cookies=[_session_cookie(ps, "", max_age=0)]
        )
