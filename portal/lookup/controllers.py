"""Lookup by personnummer: the `/lookup` page (form posts) and `POST /api/v1/lookup`."""

from __future__ import annotations

from datetime import timedelta

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import JSONBody, URLEncodedBody
from litestar.response import Template

from portal.advisories import texts
from portal.assignments import records as assignment_labels
from portal.db.base import utcnow
from portal.errors import AuditNote, Forbidden, InvalidInput
from portal.lookup import service
from portal.lookup.schemas import LookupIn, LookupOut, lookup_out
from portal.placements import records as placement_labels
from portal.web.deps import CurrentUser, Db, Settings, Vault, provide_autocommit_db
from portal.web.render import render

# The lookup reads, then writes one statement (its audit entry): no transaction block on
# PostgreSQL, two round trips fewer (portal.web.deps.provide_autocommit_db, docs/advisories.md).
_AUTOCOMMIT = {"db": Provide(provide_autocommit_db)}


def _rate(settings: Settings) -> service.RateLimit:
    return service.RateLimit(
        settings.lookup_limit, timedelta(minutes=settings.lookup_window_minutes)
    )


class LookupPage(Controller):
    """`/lookup`: search form and results (the number is posted, never put in the URL)."""

    path = "/lookup"
    include_in_schema = False

    @get("/")
    async def form(self, user: CurrentUser) -> Template:
        if not service.may_look_up(user):
            raise Forbidden(audit=AuditNote("lookup", "denied"))
        return render("lookup/lookup.html", user, result=None, value="", errors={}, texts=texts)

    @post("/", dependencies=_AUTOCOMMIT)
    async def search(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        data: URLEncodedBody[LookupIn],
    ) -> Template:
        now = utcnow()
        try:
            result = await service.lookup(
                db, vault, user, data.personal_identity_number, now=now, rate=_rate(settings),
                name=data.name,
            )  # fmt: skip
        except InvalidInput as exc:
            return render(
                "lookup/lookup.html", user, status_code=422, result=None,
                value=data.personal_identity_number, name=data.name, errors=exc.errors,
                texts=texts,
            )  # fmt: skip
        return render(
            "lookup/lookup.html", user, result=result, value="", errors={}, now=now, texts=texts,
            placement_labels=placement_labels, assignment_labels=assignment_labels,
        )  # fmt: skip


class LookupApi(Controller):
    """`POST /api/v1/lookup`."""

    path = "/api/v1/lookup"
    tags = ["lookup"]  # noqa: RUF012

    @post("/", summary="Look a person up", status_code=200, dependencies=_AUTOCOMMIT)
    async def lookup(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        data: JSONBody[LookupIn],
    ) -> LookupOut:
        """Advisories (active and expired within 30 days), incident reports and decisions about
        the person that the caller may see; with `name` instead of a number, advisories,
        reports and placements whose subjects have every word of it (whole words, case and
        accents ignored; decisions and assignments are found by number only). Audited; an
        invalid number answers 422; more than `lookup_limit` lookups within
        `lookup_window_minutes` answer 429."""
        result = await service.lookup(
            db, vault, user, data.personal_identity_number, now=utcnow(), rate=_rate(settings),
            name=data.name,
        )  # fmt: skip
        return lookup_out(result)
