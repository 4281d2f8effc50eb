"""Placement register: the handler's pages (list, form, amend), the detail page (handlers and
the jour) and `/api/v1/placements`."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from portal.db.base import utcnow
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.paging import PAGE_SIZE, period
from portal.placements import access, queries, service
from portal.placements.content import PLACE_KINDS, SECTIONS, STATUS_LABELS
from portal.placements.schemas import (
    CreatedOut,
    PlacementIn,
    PlacementOut,
    PlacementSummaryOut,
    detail_out,
    draft_from_form,
    form_values,
    summary_out,
)
from portal.web.deps import CurrentUser, Db, Vault
from portal.web.params import PageLimit, PositiveInt, list_query, paged
from portal.web.render import render

AnyRequest = Request[Any, Any, Any]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _form_page(
    user: CurrentUser,
    *,
    action: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    base_version: int | None = None,
    placement_id: uuid.UUID | None = None,
    conflict: str | None = None,
) -> Template:
    return render(
        "placements/form.html", user, status_code=status, action=action, form=values,
        errors=errors, sections=SECTIONS, place_kinds=PLACE_KINDS, base_version=base_version,
        placement_id=placement_id, conflict=conflict,
    )  # fmt: skip


State = Literal["planned", "active", "ended"]
"""Status filters (portal.placements.content.STATUS_LABELS)."""
Basis = Literal["sol", "lvu", "lvm"]
"""Legal bases of a placement."""
BASES = {"sol": "SoL", "lvu": "LVU", "lvm": "LVM"}
"""The legal-basis filter's choices."""


def _filter(
    status: str | None, legal_basis: str | None, date_from: date | None, date_to: date | None
) -> queries.ListFilter:
    since, until = period(date_from, date_to)
    return queries.ListFilter(status, legal_basis, since, until)


class PlacementPages(Controller):
    """`/placements`: handlers keep the register; the jour reads one placement."""

    path = "/placements"
    include_in_schema = False

    @get("/")
    async def register(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[State | None] = None,
        legal_basis: FromQuery[Basis | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        """The register, 50 at a time, newest change first, with filters."""
        filters = _filter(status, legal_basis, date_from, date_to)
        page = await queries.list_own(db, vault, user, now=utcnow(), filters=filters,
                                      before=before)  # fmt: skip
        query = list_query(status=status, legal_basis=legal_basis, date_from=date_from,
                           date_to=date_to)  # fmt: skip
        return render(
            "placements/list.html", user, page=page, rows=page.rows, sections=SECTIONS,
            status_labels=STATUS_LABELS, query=query, bases=BASES,
        )  # fmt: skip

    @get("/new")
    async def new(self, user: CurrentUser) -> Template:
        access.require_keeper(user)
        return _form_page(user, action="/placements/new", values=form_values(), errors={})

    @post("/new")
    async def create(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Redirect:
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        try:
            placement_id = await service.create(
                db, vault, user, draft, now=utcnow(), errors=parse_errors
            )
        except InvalidInput as exc:
            return _form_page(
                user, action="/placements/new", values=form_values(form), errors=exc.errors,
                status=422,
            )  # fmt: skip
        return Redirect(f"/placements/{placement_id}?saved=1", status_code=303)

    @get("/{placement_id:uuid}")
    async def detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        placement_id: FromPath[uuid.UUID],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await self._detail(db, vault, user, placement_id, None, "Sparat." if saved else None)

    @get("/{placement_id:uuid}/versions/{number:int}")
    async def version(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        placement_id: FromPath[uuid.UUID],
        number: PositiveInt,
    ) -> Template:
        return await self._detail(db, vault, user, placement_id, number, None)

    async def _detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        placement_id: uuid.UUID,
        number: int | None,
        flash: str | None,
    ) -> Template:
        d = await queries.get(db, vault, user, placement_id, now=utcnow(), version=number)
        return render(
            "placements/detail.html", user, d=d, flash=flash, sections=SECTIONS,
            place_kinds=PLACE_KINDS, status_labels=STATUS_LABELS,
        )  # fmt: skip

    @get("/{placement_id:uuid}/amend")
    async def amend_form(
        self, db: Db, vault: Vault, user: CurrentUser, placement_id: FromPath[uuid.UUID]
    ) -> Template:
        d = await queries.get(db, vault, user, placement_id, now=utcnow())
        if not d.can_change:
            raise Forbidden("Bara kommunen som registrerade placeringen kan ändra den.")
        return _form_page(
            user, action=f"/placements/{placement_id}/amend", values=form_values(None, d.content),
            errors={}, base_version=d.summary.version, placement_id=placement_id,
        )  # fmt: skip

    @post("/{placement_id:uuid}/amend")
    async def amend(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        placement_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:  # fmt: skip
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        base = _int(form.get("base_version"))

        def again(errors: dict[str, str], status: int, conflict: str | None = None) -> Template:
            return _form_page(
                user, action=f"/placements/{placement_id}/amend", values=form_values(form),
                errors=errors, status=status, base_version=base, placement_id=placement_id,
                conflict=conflict,
            )  # fmt: skip

        try:
            await service.amend(
                db, vault, user, placement_id, draft, base_version=base,
                now=utcnow(), errors=parse_errors,
            )  # fmt: skip
        except InvalidInput as exc:
            return again(exc.errors, 422)
        except Conflict as exc:
            return again({}, 409, exc.message)
        return Redirect(f"/placements/{placement_id}?saved=1", status_code=303)


class PlacementApi(Controller):
    """The placement register for case systems: list, register, read, amend."""

    path = "/api/v1/placements"
    tags = ["placements"]  # noqa: RUF012

    @get("/", summary="List the municipality's placements")
    async def list_placements(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[State | None] = None,
        legal_basis: FromQuery[Basis | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
        limit: PageLimit = PAGE_SIZE,
    ) -> Response[list[PlacementSummaryOut]]:
        """The caller's municipality's register (all states), latest change first, `limit` at
        a time (keyset: `Link: <…>; rel="next"` while there is more, `X-Total-Count`),
        filtered by `status` (planned, active, ended), `legal_basis` and the day registered or
        changed (`date_from`, `date_to`). Handlers only (403 otherwise); the jour finds
        placements by personnummer through `POST /api/v1/lookup`. Audited, each page."""
        filters = _filter(status, legal_basis, date_from, date_to)
        page = await queries.list_own(
            db, vault, user, now=utcnow(), filters=filters, before=before, size=limit
        )
        query = list_query(status=status, legal_basis=legal_basis, date_from=date_from,
                           date_to=date_to, limit=limit)  # fmt: skip
        rows = [summary_out(r) for r in page.rows]
        return paged(page, rows, "/api/v1/placements", query)

    @post("/", summary="Register a placement")
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[PlacementIn]
    ) -> CreatedOut:
        """Register who is placed where under which legal basis (version 1). 422 with
        per-field errors for invalid input."""
        placement_id = await service.create(
            db, vault, user, data.draft(), now=utcnow(),
            organisation_id=data.organisation_id,
        )  # fmt: skip
        return CreatedOut(placement_id, 1)

    @get("/{placement_id:uuid}", summary="Read a placement")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, placement_id: FromPath[uuid.UUID]
    ) -> PlacementOut:
        """The current version with its history (audited). Another municipality's placement
        answers 404 exactly like a missing one (and the attempt is audited)."""
        d = await queries.get(db, vault, user, placement_id, now=utcnow())
        return detail_out(d)

    @get("/{placement_id:uuid}/versions/{number:int}", summary="Read an earlier version")
    async def read_version(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        placement_id: FromPath[uuid.UUID],
        number: PositiveInt,
    ) -> PlacementOut:
        """One version of the history (audited)."""
        d = await queries.get(db, vault, user, placement_id, now=utcnow(), version=number)
        return detail_out(d)

    @put("/{placement_id:uuid}", summary="Amend a placement")
    async def amend(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        placement_id: FromPath[uuid.UUID],
        data: JSONBody[PlacementIn],
    ) -> CreatedOut:
        """Save a new version: a correction, a move, a new legal basis or an end date
        (`ends_on`). `base_version` must be the current version (409 otherwise)."""
        number = await service.amend(
            db, vault, user, placement_id, data.draft(),
            base_version=data.base_version, now=utcnow(),
        )  # fmt: skip
        return CreatedOut(placement_id, number)
