"""Log review page: filters posted (a personnummer never goes in a URL), CSV on request."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Template

from portal.db.base import utcnow
from portal.errors import BadCursor, Forbidden, InvalidInput
from portal.logreview import service
from portal.paging import PAGE_SIZE, Page
from portal.timefmt import format_local, parse_local
from portal.web.deps import CurrentUser, Db, Vault
from portal.web.render import render

SEARCH_FIELDS = ("org_id", "since", "until", "user_id", "personal_identity_number", "format")
"""The review form's fields: the next page posts them again (in the body, never a URL)."""


class LogReviewPages(Controller):
    """`/logs`: who read which records of the organisation."""

    path = "/logs"
    include_in_schema = False

    async def _page(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        form: dict[str, str],
        page: Page[service.LogRow] | None,
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        orgs = service.reviewable_orgs(user)
        if not orgs:
            raise Forbidden()
        names = {m.org_id: m.org_name for m in user.memberships if m.org_id in orgs}
        people = await service.users_of(db, vault, orgs)
        return render(
            "logreview/review.html",
            user,
            status_code=status,
            orgs=sorted(names.items(), key=lambda kv: kv[1]),
            people=people,
            form=form,
            page=page,
            rows=page.rows if page else None,
            hidden=[(k, form.get(k, "")) for k in SEARCH_FIELDS],
            errors=errors,
            LOG_TIME=service.LOG_TIME,
        )

    @get("/")
    async def form(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        now = utcnow()
        defaults = {
            "since": format_local(now - timedelta(days=30), "%Y-%m-%dT%H:%M"),
            "until": format_local(now + timedelta(minutes=1), "%Y-%m-%dT%H:%M"),
        }
        return await self._page(db, vault, user, defaults, None, {})

    @post("/")
    async def search(
        self, request: Request[Any, Any, Any], db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Response[str]:
        form = {k: str(v) for k, v in (await request.form()).items() if k != "_csrf_token"}
        errors: dict[str, str] = {}
        try:
            org_id = uuid.UUID(form.get("org_id", ""))
        except ValueError:
            errors["org_id"] = "Välj organisation."
        try:
            since = parse_local(form.get("since", ""))
            until = parse_local(form.get("until", ""))
        except ValueError:
            errors["since"] = "Ange period."
        user_id = None
        if form.get("user_id"):
            try:
                user_id = uuid.UUID(form["user_id"])
            except ValueError:
                errors["user_id"] = "Välj användare."
        if errors:
            return await self._page(db, vault, user, form, None, errors, 422)
        csv = form.get("format") == "csv"
        try:
            page = await service.review(
                db,
                vault,
                user,
                org_id=org_id,
                since=since,
                until=until,
                user_id=user_id,
                personnummer=form.get("personal_identity_number", ""),
                before=None if csv else form.get("before") or None,
                size=service.MAX_ROWS if csv else PAGE_SIZE,
            )
        except BadCursor:
            raise  # 400: the page's own links never make one
        except InvalidInput as exc:
            return await self._page(db, vault, user, form, None, exc.errors, 422)
        if csv and page.next_cursor:  # never a CSV cut short without saying so
            too_many = (
                f"Perioden har {page.total} händelser, fler än {service.MAX_ROWS} ryms inte i "
                "en CSV-fil. Välj en kortare period eller en användare."
            )
            return await self._page(db, vault, user, form, None, {"since": too_many}, 422)
        if csv:
            stamp = datetime.now().strftime("%Y%m%d-%H%M")
            return Response(
                service.to_csv(page.rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="loggkontroll-{stamp}.csv"'},
            )
        return await self._page(db, vault, user, form, page, {})
