"""The Litestar adapter of the simulator: routes, cookies, headers, templates.

The app works at any mount point: every URL it prints is built from the configured issuer, and
routes match on the path below the mount (Litestar's `asgi(..., is_mount=True)` strips it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Response, get, post
from litestar.enums import MediaType

from auth.devidp.config import DevIdpConfig
from auth.devidp.keys import load_or_create_keys
from auth.devidp.provider import Answer, DevProvider

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "devidp_session"


class DevIdpRefused(RuntimeError):
    """The simulator must not be built with this configuration (production, or disabled)."""


def create_dev_idp(config: DevIdpConfig) -> Litestar:
    """The simulator as an ASGI app; raises DevIdpRefused in production or when disabled."""
    if config.production:
        raise DevIdpRefused("the development identity provider is refused in production mode")
    if not config.enabled:
        raise DevIdpRefused("the development identity provider is not enabled")
    if not config.clients:
        raise ValueError("the development identity provider needs at least one client")
    provider = DevProvider(config, load_or_create_keys(config.key_path))
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    issuer = urlsplit(provider.issuer)
    cookie_path = issuer.path or "/"
    secure = issuer.scheme == "https"
    form_action = " ".join(["'self'", *provider.form_targets()])
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"form-action {form_action}; frame-ancestors 'none'"
    )
    stylesheet = (TEMPLATES / "style.css").read_text("utf-8")

    def respond(answer: Answer) -> Response[Any]:
        headers = {"Cache-Control": "no-store", **answer.headers}
        if answer.page is not None:
            html = env.get_template(answer.page).render(**answer.context)
            headers.update({"Content-Security-Policy": csp, "X-Frame-Options": "DENY"})
            response: Response[Any] = Response(
                html, status_code=answer.status, media_type=MediaType.HTML, headers=headers
            )
        elif answer.json is not None:
            response = Response(
                answer.json, status_code=answer.status, media_type=MediaType.JSON, headers=headers
            )
        else:
            response = Response(
                b"", status_code=answer.status, media_type=MediaType.TEXT, headers=headers
            )
        if answer.set_session:
            response.set_cookie(
                SESSION_COOKIE,
                answer.set_session,
                path=cookie_path,
                httponly=True,
                secure=secure,
                samesite="lax",
            )
        if answer.clear_session:
            response.delete_cookie(SESSION_COOKIE, path=cookie_path)
        return response

    async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    @get("/.well-known/openid-configuration", sync_to_thread=False)
    def discovery() -> Response[Any]:
        return respond(Answer(200, {"Cache-Control": "max-age=300"}, json=provider.discovery()))

    @get("/jwks", sync_to_thread=False)
    def jwks() -> Response[Any]:
        return respond(Answer(200, {"Cache-Control": "max-age=300"}, json=provider.jwks()))

    @get("/style.css", sync_to_thread=False)
    def style() -> Response[str]:
        return Response(
            stylesheet, media_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    @get("/authorize", sync_to_thread=False)
    def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
        params = {k: v for k, v in request.query_params.items()}
        return respond(provider.authorize(params, request.cookies.get(SESSION_COOKIE)))

    @post("/authorize", status_code=200)
    async def login(request: Request[Any, Any, Any]) -> Response[Any]:
        return respond(provider.login(await form_of(request)))

    @post("/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await form_of(request)
        return respond(provider.token(form, request.headers.get("authorization")))

    @post("/par", status_code=201)
    async def par(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await form_of(request)
        return respond(provider.par(form, request.headers.get("authorization")))

    @get("/logout", sync_to_thread=False)
    def logout_get(request: Request[Any, Any, Any]) -> Response[Any]:
        params = {k: v for k, v in request.query_params.items()}
        return respond(provider.logout(params, request.cookies.get(SESSION_COOKIE)))

    @post("/logout", status_code=200)
    async def logout_post(request: Request[Any, Any, Any]) -> Response[Any]:
        form = await form_of(request)
        return respond(provider.logout(form, request.cookies.get(SESSION_COOKIE)))

    @get("/userinfo", sync_to_thread=False)
    def userinfo_get(request: Request[Any, Any, Any]) -> Response[Any]:
        return respond(provider.userinfo(request.headers.get("authorization")))

    @post("/userinfo", status_code=200, sync_to_thread=False)
    def userinfo_post(request: Request[Any, Any, Any]) -> Response[Any]:
        return respond(provider.userinfo(request.headers.get("authorization")))

    return Litestar(
        route_handlers=[
            discovery,
            jwks,
            style,
            authorize,
            login,
            token,
            par,
            logout_get,
            logout_post,
            userinfo_get,
            userinfo_post,
        ],
        openapi_config=None,
    )
