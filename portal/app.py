"""create_app(settings) -> Litestar: the only place the application is assembled.

Nothing is built at import time: the engine, the relying party and the mounted development
identity provider are created here from the settings, so tests build apps with their own
settings and several instances can run side by side.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.handlers import asgi
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler, Receive, Scope, Send

from auth.errors import ProviderUnavailable
from auth.roles import ROLE_LABELS, Role
from auth.sessions import SessionPolicy, cookie_name
from portal import chair_signing, jobs, paging
from portal.account.controllers import POST_LOGOUT_PATH, AccountController
from portal.admin.controllers import AdminController
from portal.advisories.controllers import AdvisoryApi, AdvisoryPages, JourPages
from portal.archive.controllers import ArchiveApi, ArchivePages
from portal.assignments.controllers import (
    AssignmentApi,
    AssignmentPages,
    HandoverApi,
    HandoverPages,
)
from portal.attachments.store import build_file_store
from portal.codelists.controllers import CodeGlossaryPage, CodeListApiController
from portal.db.engine import engine_from_settings, make_sessionmaker
from portal.decisions import signing
from portal.decisions.controllers import DecisionApi, DecisionPages, SignPages, VerifyPages
from portal.drafts.controllers import DraftController
from portal.errors import DomainError
from portal.health.controllers import HealthController
from portal.health.service import start_bucket_check
from portal.home.controllers import HomeController
from portal.logreview.controllers import LogReviewPages
from portal.logs import logging_config
from portal.lookup.controllers import LookupApi, LookupPage
from portal.metrics import Metrics, MetricsController, instrumented
from portal.notify.service import start_dispatcher, stop_dispatcher
from portal.pii import Vault
from portal.placements.controllers import PlacementApi, PlacementPages
from portal.police import signing as police_signing
from portal.police.controllers import (
    DelegationApi,
    DelegationPages,
    PoliceRequestApi,
    PoliceRequestPages,
)
from portal.reports.controllers import (
    ReportApiController,
    ReportPageController,
    old_report_urls,
)
from portal.retention.controllers import RetentionPages
from portal.rosters.controllers import RosterApi, RosterPages
from portal.runtime import PortalState
from portal.settings import Settings
from portal.stats.controllers import CostKeyApi, CostPages, StatsApi, StatsPages
from portal.timefmt import format_local
from portal.web import errors as web_errors
from portal.web.accesslog import access_log
from portal.web.deps import dependencies, resolve_one_at_a_time
from portal.web.forwarded import behind_proxies
from portal.web.headers import SecurityHeaders, build_csp
from portal.web.openapi import document_api
from portal.web.origin import same_origin_only
from portal.web.requests import MAX_FORM_PARTS, PortalRequest, parse_body_first
from storage import EncryptedObjectStore

if TYPE_CHECKING:
    from auth.oidc import RelyingParty
    from signing.pki import DevPki

PACKAGE = Path(__file__).parent
CSRF_EXEMPT = ("/dev-idp", "/dev-trust")  # mounted apps outside the portal's session
FEATURES = (
    "web",
    "stats",
    "archive",
    "retention",
    "home",
    "admin",
    "account",
    "rosters",
    "decisions",
    "reports",
    "advisories",
    "assignments",
    "lookup",
    "placements",
    "police",
    "logreview",
    "codelists",
    "notify",
)


def _template_dirs() -> list[Path | os.PathLike[Any] | str]:
    dirs = [PACKAGE / f / "templates" for f in FEATURES]
    found: list[Path | os.PathLike[Any] | str] = [d for d in dirs if d.is_dir()]
    return found


def _configure_jinja(engine: JinjaTemplateEngine, settings: Settings) -> None:
    def role_label(value: str) -> str:
        try:
            return ROLE_LABELS[Role(value)]
        except ValueError:
            return value

    engine.engine.globals["role_label"] = role_label
    # The page script warns two minutes before the idle timeout (static/js/session-timeout.js).
    engine.engine.globals["session_idle_seconds"] = settings.session_idle_minutes * 60
    engine.engine.filters["sthlm"] = format_local
    engine.engine.filters["num"] = paging.count_text
    engine.engine.autoescape = True
    # Templates are compiled once and kept; only development re-reads a changed file (the check
    # is two stat() calls per page otherwise).
    engine.engine.auto_reload = settings.mode == "development"


def _build_relying_party(settings: Settings) -> RelyingParty:
    from auth.claims import ClaimMapping
    from auth.oidc import OIDCProviderConfig, RelyingParty

    config = OIDCProviderConfig(
        issuer=settings.effective_oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret or None,
        redirect_uri=f"{settings.public_url}/auth/callback",
        post_logout_redirect_uri=f"{settings.public_url}{POST_LOGOUT_PATH}",
        accepted_acr=settings.oidc_accepted_acr,
        claim_mapping=ClaimMapping.preset(settings.oidc_claim_profile),
    )
    return RelyingParty(config)


def _dev_idp_handler(settings: Settings) -> ControllerRouterHandler:
    from auth.devidp import DevIdpClient, DevIdpConfig, create_dev_idp
    from portal.demo import DEMO_PERSONS

    idp = create_dev_idp(
        DevIdpConfig(
            issuer=f"{settings.public_url}/dev-idp",
            clients=[
                DevIdpClient(
                    client_id=settings.oidc_client_id,
                    client_secret=settings.oidc_client_secret,
                    redirect_uris=[f"{settings.public_url}/auth/callback"],
                    post_logout_redirect_uris=[f"{settings.public_url}{POST_LOGOUT_PATH}"],
                )
            ],
            persons=[(p.personnummer, p.given_name, p.family_name) for p in DEMO_PERSONS],
            key_path=str(Path(settings.data_dir) / "dev-idp-key.json"),
            production=settings.mode == "production",
        )
    )

    @asgi("/dev-idp", is_mount=True, copy_scope=True, include_in_schema=False)
    async def dev_idp(scope: Scope, receive: Receive, send: Send) -> None:
        await idp(scope, receive, send)

    return dev_idp


def _trust_services_handler(pki: DevPki) -> ControllerRouterHandler:
    """The dev CA's TSA, OCSP and CRLs at /dev-trust (demo and development only)."""
    from signing.trust_services import create_trust_services_app

    trust: Any = create_trust_services_app(pki)  # a plain ASGI callable (its own scope types)

    @asgi("/dev-trust", is_mount=True, copy_scope=True, include_in_schema=False)
    async def dev_trust(scope: Scope, receive: Receive, send: Send) -> None:
        await trust(scope, receive, send)

    return dev_trust


def _instrumented(settings: Settings, metrics: Metrics) -> EncryptedObjectStore:
    """The file store from the settings, its backend wrapped to count errors in `metrics`."""
    files = build_file_store(settings)
    files.store = instrumented(files.store, metrics)
    return files


def build_runtime(
    settings: Settings,
    *,
    relying_party: RelyingParty | None = None,
    object_store: EncryptedObjectStore | None = None,
) -> PortalState:
    """The long-lived objects of a portal instance (also used by CLI jobs, without the web).

    Features that send a logged-in user back to the identity provider register what finishes
    that step-up here (`step_ups`): the login callback dispatches on the pending purpose.
    """
    engine = engine_from_settings(settings)
    metrics = Metrics()
    state = PortalState(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        vault=Vault(settings.keks, settings.current_kek, settings.blind_index_key),
        policy=SessionPolicy(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
        ),
        relying_party=relying_party,
        object_store=object_store if object_store is not None else _instrumented(settings, metrics),
        metrics=metrics,
        principal_engine=(
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        ),
    )
    if settings.dev_idp_enabled:
        state.signing, state.dev_pki = chair_signing.dev_signing(settings)
    else:
        state.signing = chair_signing.configured_signing(settings)
    state.step_ups[signing.PURPOSE] = signing.step_up(state)
    state.step_ups[police_signing.PURPOSE] = police_signing.step_up(state)
    return state


def create_app(
    settings: Settings,
    *,
    relying_party: RelyingParty | None = None,
    object_store: EncryptedObjectStore | None = None,
) -> Litestar:
    """Assemble the portal for `settings` (already validated)."""
    state = build_runtime(settings, relying_party=relying_party, object_store=object_store)
    engine = state.engine

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if state.relying_party is None:
            state.relying_party = _build_relying_party(settings)
        # S3 may be down at start-up: the bucket is checked in the background (see /readyz).
        bucket_check = await start_bucket_check(state)
        dispatcher = start_dispatcher(state)  # e-mail outbox, only when smtp_host is set
        # reminders, anchors, session purge: one instance at a time runs each (portal.jobs)
        periodic = (
            jobs.start(
                state.sessionmaker,
                state.object_store.store,
                session_policy=state.policy,
                metrics=state.metrics,
                vault=state.vault,
                upload_max_age=timedelta(hours=settings.upload_max_age_hours),
            )
            if settings.run_periodic_jobs
            else None
        )
        try:
            yield
        finally:
            bucket_check.cancel()
            await asyncio.gather(bucket_check, return_exceptions=True)
            await jobs.stop(periodic)
            await stop_dispatcher(dispatcher)
            close = getattr(state.relying_party, "aclose", None)
            if close is not None:
                await close()
            await engine.dispose()

    handlers: list[ControllerRouterHandler] = [
        HealthController,
        MetricsController,
        AccountController,
        HomeController,
        AdminController,
        AdvisoryPages,
        AdvisoryApi,
        JourPages,
        AssignmentPages,
        AssignmentApi,
        HandoverPages,
        HandoverApi,
        LookupPage,
        LookupApi,
        PlacementPages,
        PlacementApi,
        PoliceRequestPages,
        PoliceRequestApi,
        DelegationPages,
        DelegationApi,
        RosterPages,
        RosterApi,
        LogReviewPages,
        DecisionPages,
        SignPages,
        VerifyPages,
        DecisionApi,
        ReportPageController,
        ReportApiController,
        old_report_urls,
        CodeListApiController,
        CodeGlossaryPage,
        DraftController,
        ArchivePages,
        ArchiveApi,
        RetentionPages,
        StatsPages,
        CostPages,
        StatsApi,
        CostKeyApi,
        create_static_files_router(
            path="/static", directories=[PACKAGE / "web" / "static"], include_in_schema=False
        ),
    ]
    if settings.dev_idp_enabled:
        handlers.append(_dev_idp_handler(settings))
        assert state.dev_pki is not None
        handlers.append(_trust_services_handler(state.dev_pki))
    if settings.mode == "demo":  # no SMTP in the demo: show what would have been mailed
        from portal.notify.controllers import DevMailPage

        handlers.append(DevMailPage)

    issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.effective_oidc_issuer))
    public_origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.public_url))
    form_targets = "" if issuer_origin == public_origin else f" {issuer_origin}"
    csp = build_csp(form_targets)
    csrf_cookie = "__Host-csrftoken" if settings.https else "csrftoken"

    app = Litestar(
        route_handlers=handlers,
        dependencies=dependencies(),
        exception_handlers={
            DomainError: web_errors.handle_domain_error,
            HTTPException: web_errors.handle_http_exception,
            ProviderUnavailable: web_errors.handle_provider_unavailable,
            Exception: web_errors.handle_unexpected,
        },
        csrf_config=CSRFConfig(
            secret=settings.secret_key.hex(),
            cookie_name=csrf_cookie,
            cookie_secure=settings.https,
            cookie_samesite="lax",
            header_name="X-CSRFToken",
            exclude=list(CSRF_EXEMPT),
        ),
        template_config=TemplateConfig(
            directory=_template_dirs(),
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _configure_jinja(engine, settings),
        ),
        openapi_config=OpenAPIConfig(
            title="Jourpost API",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            description="Säkert informationsutbyte mellan kommuner och socialjouren.",
        ),
        # Unsafe requests from another origin are refused before the CSRF check (portal.web.origin).
        middleware=[
            lambda app: same_origin_only(
                app, public_url=settings.public_url, exclude=CSRF_EXEMPT, csrf_header="X-CSRFToken"
            )
        ],
        # Bodies are parsed once, before the handler, by the guarded request class.
        request_class=PortalRequest,
        before_request=parse_body_first,
        multipart_form_part_limit=MAX_FORM_PARTS,
        lifespan=[lifespan],
        # Our own loggers at INFO; libraries (httpx logs every request URL) at WARNING; pyHanko
        # silenced (it logs the signer's name and personnummer); text or JSON (portal.logs).
        # Exceptions are logged by portal.web.errors (type only: messages may hold personal data).
        logging_config=logging_config(settings.log_format),
        state=State({"portal": state}),
        request_max_body_size=25 * 1024 * 1024,
    )
    resolve_one_at_a_time(app)
    # One access-log line, the request metrics and the security headers per request, router-made
    # 404/405 included (portal.web.accesslog, portal.web.headers).
    app.asgi_handler = access_log(
        app.asgi_handler, state.metrics, SecurityHeaders(csp=csp, hsts=settings.https)
    )
    # The client's address from X-Forwarded-For, only from trusted proxies (portal.web.forwarded).
    app.asgi_handler = behind_proxies(app.asgi_handler, settings.trusted_proxies)
    document_api(
        app.openapi_schema,
        session_cookie=cookie_name(settings.https),
        csrf_cookie=csrf_cookie,
    )
    return app
