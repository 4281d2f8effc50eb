"""Assignment and handover pages (`/assignments`, `/jour/handover`) and their JSON API."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from portal.assignments import access, queries, service
from portal.assignments.content import KINDS, STATUS
from portal.assignments.schemas import (
    AssignmentIn,
    AssignmentOut,
    AssignmentSummaryOut,
    CreatedOut,
    HandoverIn,
    HandoverNoteOut,
    OutcomeIn,
    WithdrawIn,
    content_line,
    detail_out,
    draft_from_form,
    form_values,
    note_out,
    summary_out,
    text,
)
from portal.db.base import utcnow
from portal.errors import InvalidInput
from portal.paging import PAGE_SIZE, period
from portal.timefmt import format_local
from portal.web.deps import CurrentUser, Db, Vault
from portal.web.params import PageLimit, list_query, paged
from portal.web.render import render

AnyRequest = Request[Any, Any, Any]
DEFAULT_DUE = timedelta(days=2)
"""The form's suggested deadline (a weekend from Friday afternoon)."""


Status = Literal["sent", "accepted", "done", "not_done", "withdrawn"]
"""Status filters (portal.assignments.content.STATUS)."""
Kind = Literal["visit", "call", "check", "other"]
"""Kinds of task (portal.assignments.content.KINDS)."""


def _filter(
    status: str | None, kind: str | None, date_from: date | None, date_to: date | None
) -> queries.SentFilter:
    since, until = period(date_from, date_to)
    return queries.SentFilter(status, kind, since, until)


def _labels() -> dict[str, Any]:
    return {"kinds": KINDS, "statuses": STATUS, "content_line": content_line}


class AssignmentPages(Controller):
    """`/assignments`: handlers send and follow assignments; the jour accepts and reports."""

    path = "/assignments"
    include_in_schema = False

    @get("/")
    async def listing(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[Status | None] = None,
        kind: FromQuery[Kind | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        """A handler's sent assignments (50 a page, filters), or the jour's open and recent."""
        now = utcnow()
        sender = bool(access.own_orgs(user))
        if not sender:
            rows = await queries.list_for_jour(db, vault, user, now=now)
            return render("assignments/list.html", user, rows=rows, now=now, sender=False,
                          page=None, **_labels())  # fmt: skip
        filters = _filter(status, kind, date_from, date_to)
        page = await queries.list_sent(db, vault, user, now=now, filters=filters, before=before)
        query = list_query(status=status, kind=kind, date_from=date_from, date_to=date_to)
        return render("assignments/list.html", user, rows=page.rows, page=page, now=now,
                      sender=True, query=query, **_labels())  # fmt: skip

    @get("/new")
    async def new(self, user: CurrentUser) -> Template:
        access.require_sender(user)
        values = form_values(None, format_local(utcnow() + DEFAULT_DUE, "%Y-%m-%dT%H:%M"))
        values["requester_name"] = user.name
        return render("assignments/form.html", user, form=values, errors={}, kinds=KINDS)

    @post("/new")
    async def create(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Redirect:
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        try:
            assignment_id = await service.create(
                db, vault, user, draft, now=utcnow(), errors=parse_errors
            )
        except InvalidInput as exc:
            return render(
                "assignments/form.html", user, status_code=422,
                form=form_values(draft, text(form, "due_at")), errors=exc.errors, kinds=KINDS,
            )  # fmt: skip
        return Redirect(f"/assignments/{assignment_id}?saved=1", status_code=303)

    async def _detail(
        self, db: Db, vault: Vault, user: CurrentUser, assignment_id: uuid.UUID, *,
        flash: str | None = None, errors: dict[str, str] | None = None, status: int = 200,
        typed: dict[str, str] | None = None,
    ) -> Template:  # fmt: skip
        now = utcnow()
        d = await queries.get(db, vault, user, assignment_id, now=now)
        return render(
            "assignments/detail.html", user, status_code=status, d=d, now=now, flash=flash,
            errors=errors or {}, typed=typed or {}, **_labels(),
        )  # fmt: skip

    @get("/{assignment_id:uuid}")
    async def detail(
        self, db: Db, vault: Vault, user: CurrentUser, assignment_id: FromPath[uuid.UUID],
        saved: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        return await self._detail(
            db, vault, user, assignment_id, flash="Sparat." if saved else None
        )

    @post("/{assignment_id:uuid}/accept")
    async def accept(
        self, db: Db, user: CurrentUser, assignment_id: FromPath[uuid.UUID]
    ) -> Redirect:
        await service.accept(db, user, assignment_id, now=utcnow())
        return Redirect(f"/assignments/{assignment_id}?saved=1", status_code=303)

    @post("/{assignment_id:uuid}/report")
    async def report(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        assignment_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:  # fmt: skip
        form = await request.form()
        outcome, note = text(form, "outcome"), text(form, "note")
        try:
            if outcome not in ("done", "not_done"):
                raise InvalidInput(errors={"outcome": "Välj om uppdraget blev utfört eller inte."})
            await service.report(
                db, vault, user, assignment_id,
                done=outcome == "done", note=note, now=utcnow(),
            )  # fmt: skip
        except InvalidInput as exc:
            return await self._detail(
                db, vault, user, assignment_id, errors=exc.errors, status=422,
                typed={"outcome": outcome, "note": note},
            )  # fmt: skip
        return Redirect(f"/assignments/{assignment_id}?saved=1", status_code=303)

    @post("/{assignment_id:uuid}/withdraw")
    async def withdraw(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        assignment_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:  # fmt: skip
        form = await request.form()
        reason = text(form, "reason")
        try:
            await service.withdraw(db, vault, user, assignment_id, reason=reason, now=utcnow())
        except InvalidInput as exc:
            return await self._detail(
                db, vault, user, assignment_id, errors=exc.errors, status=422,
                typed={"reason": reason},
            )  # fmt: skip
        return Redirect(f"/assignments/{assignment_id}?saved=1", status_code=303)


class HandoverPages(Controller):
    """`/jour/handover`: the outgoing shift's notes to the next, and their receipts."""

    path = "/jour/handover"
    include_in_schema = False

    async def _page(
        self, db: Db, vault: Vault, user: CurrentUser, *, errors: dict[str, str] | None = None,
        typed: str = "", status: int = 200, flash: str | None = None,
    ) -> Template:  # fmt: skip
        now = utcnow()
        notes = await queries.handover_notes(
            db, vault, user, since=now - queries.HANDOVER_PAGE, scope="page"
        )
        open_rows = await queries.list_for_jour(db, vault, user, now=now, open_only=True)
        return render(
            "assignments/handover.html", user, status_code=status, notes=notes,
            open_rows=open_rows, errors=errors or {}, typed=typed, flash=flash,
            shift_start=queries.shift_start(now), **_labels(),
        )  # fmt: skip

    @get("/")
    async def page(
        self, db: Db, vault: Vault, user: CurrentUser, saved: FromQuery[str | None] = None
    ) -> Template:
        return await self._page(db, vault, user, flash="Sparat." if saved else None)

    @post("/")
    async def write(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Redirect:
        form = await request.form()
        body = text(form, "body")
        try:
            await service.write_note(db, vault, user, body, now=utcnow())
        except InvalidInput as exc:
            return await self._page(db, vault, user, errors=exc.errors, typed=body, status=422)
        return Redirect("/jour/handover?saved=1", status_code=303)

    @post("/{note_id:uuid}/read")
    async def read(
        self, request: AnyRequest, db: Db, user: CurrentUser, note_id: FromPath[uuid.UUID]
    ) -> Redirect:
        form = await request.form()
        await service.acknowledge_note(db, user, note_id, now=utcnow())
        back = "/" if text(form, "back") == "start" else "/jour/handover"
        return Redirect(back, status_code=303)


class AssignmentApi(Controller):
    """Assignments: list, send, read, accept, report the outcome, withdraw."""

    path = "/api/v1/assignments"
    tags = ["assignments"]  # noqa: RUF012

    @get("/", summary="List assignments")
    async def list_assignments(
        self, db: Db, vault: Vault, user: CurrentUser,
        view: FromQuery[Literal["jour", "sent"] | None] = None,
        status: FromQuery[Status | None] = None,
        kind: FromQuery[Kind | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
        limit: PageLimit = PAGE_SIZE,
    ) -> Response[list[AssignmentSummaryOut]]:  # fmt: skip
        """`view=jour`: the jour's open assignments (by deadline) and those closed in the past
        week; `view=sent`: the municipality's own, newest first, `limit` at a time (keyset:
        `Link: <…>; rel="next"` while there is more, `X-Total-Count`), filtered by `status`,
        `kind` and the day sent (`date_from`, `date_to`). Default: `sent` for handlers, else
        `jour`.
        """
        now = utcnow()
        if view == "sent" or (view is None and access.own_orgs(user)):
            filters = _filter(status, kind, date_from, date_to)
            page = await queries.list_sent(
                db, vault, user, now=now, filters=filters, before=before, size=limit
            )
            query = list_query(view="sent", status=status, kind=kind, date_from=date_from,
                               date_to=date_to, limit=limit)  # fmt: skip
            rows = [summary_out(r) for r in page.rows]
            return paged(page, rows, "/api/v1/assignments", query)
        jour_rows = await queries.list_for_jour(db, vault, user, now=now)
        return Response([summary_out(r) for r in jour_rows])

    @post("/", summary="Send an assignment to the jour")
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[AssignmentIn]
    ) -> CreatedOut:
        """A task for the jour over a night or a weekend; it starts as `sent`."""
        assignment_id = await service.create(
            db, vault, user, data.draft(), now=utcnow(),
            organisation_id=data.organisation_id,
        )  # fmt: skip
        return CreatedOut(assignment_id)

    @get("/{assignment_id:uuid}", summary="Read an assignment")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, assignment_id: FromPath[uuid.UUID]
    ) -> AssignmentOut:
        """The assignment with its outcome (audited)."""
        d = await queries.get(db, vault, user, assignment_id, now=utcnow())
        return detail_out(d)

    @post("/{assignment_id:uuid}/accept", summary="Accept an assignment", status_code=204)
    async def accept(self, db: Db, user: CurrentUser, assignment_id: FromPath[uuid.UUID]) -> None:
        """The jour takes it on (`sent` → `accepted`); 409 in any other state."""
        await service.accept(db, user, assignment_id, now=utcnow())

    @post("/{assignment_id:uuid}/outcome", summary="Report the outcome", status_code=204)
    async def outcome(
        self, db: Db, vault: Vault, user: CurrentUser, assignment_id: FromPath[uuid.UUID],
        data: JSONBody[OutcomeIn],
    ) -> None:  # fmt: skip
        """`accepted` → `done` or `not_done`, with what was done or why not; 409 otherwise."""
        await service.report(
            db, vault, user, assignment_id,
            done=data.outcome == "done", note=data.note, now=utcnow(),
        )  # fmt: skip

    @post("/{assignment_id:uuid}/withdraw", summary="Withdraw an assignment", status_code=204)
    async def withdraw(
        self, db: Db, vault: Vault, user: CurrentUser, assignment_id: FromPath[uuid.UUID],
        data: JSONBody[WithdrawIn],
    ) -> None:  # fmt: skip
        """The sending municipality withdraws an open assignment, with a reason."""
        await service.withdraw(db, vault, user, assignment_id, reason=data.reason, now=utcnow())


class HandoverApi(Controller):
    """Shift handover notes of the jour."""

    path = "/api/v1/handover"
    tags = ["handover"]  # noqa: RUF012

    @get("/", summary="Handover notes")
    async def list_notes(self, db: Db, vault: Vault, user: CurrentUser) -> list[HandoverNoteOut]:
        """Notes written since the start of the previous shift (the ones the dashboard shows)."""
        now = utcnow()
        notes = await queries.handover_notes(
            db, vault, user, since=queries.previous_shift_start(now),
            scope="api",
        )  # fmt: skip
        return [note_out(n) for n in notes]

    @post("/", summary="Write a handover note")
    async def write(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[HandoverIn]
    ) -> CreatedOut:
        """The outgoing shift's note to the next one."""
        note_id = await service.write_note(
            db, vault, user, data.body, now=utcnow(), jour_id=data.jour_id
        )
        return CreatedOut(note_id)

    @post("/{note_id:uuid}/read", summary="Acknowledge a handover note", status_code=204)
    async def read(self, db: Db, user: CurrentUser, note_id: FromPath[uuid.UUID]) -> None:
        """The caller has read the note (idempotent)."""
        await service.acknowledge_note(db, user, note_id, now=utcnow())
