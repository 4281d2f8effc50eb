"""Advisory pages: the handler's list and form, the detail page, and the jour's night view."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from portal.advisories import access, queries, service, texts
from portal.advisories.content import DEFAULT_VALIDITY, LEGAL_BASES
from portal.advisories.schemas import draft_from_form, form_values, uploads_from_form
from portal.attachments.files import MAX_FILE_BYTES, content_disposition
from portal.attachments.service import OpenedFile
from portal.db.base import utcnow
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.timefmt import format_local
from portal.web.deps import CurrentUser, Db, Files, Sessions, Vault
from portal.web.params import PositiveInt
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
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    base_version: int | None = None,
    advisory_id: FromPath[uuid.UUID] | None = None,
    conflict: str | None = None,
) -> Template:
    return render(
        "advisories/form.html",
        user,
        status_code=status,
        action=action,
        form=values,
        errors=errors,
        legal_bases=LEGAL_BASES,
        base_version=base_version,
        advisory_id=advisory_id,
        conflict=conflict,
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
        texts=texts,
    )


class AdvisoryPages(Controller):
    """`/advisories`: handlers post and follow their advisories; everyone allowed reads one."""

    path = "/advisories"
    include_in_schema = False

    @get("/")
    async def sent(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        now = utcnow()
        rows = await queries.list_sent(db, vault, user, now=now)
        return render("advisories/list.html", user, rows=rows, now=now, texts=texts)

    @get("/new")
    async def new(self, user: CurrentUser) -> Template:
        access.require_sender(user)
        values = form_values(None, None)
        values["valid_until"] = format_local(utcnow() + DEFAULT_VALIDITY, "%Y-%m-%dT%H:%M")
        return _form_page(user, action="/advisories/new", values=values, errors={})

    @post("/new")
    async def create(
        self,
        request: AnyRequest,
        db: Db,
        files: Files,
        sessions: Sessions,
        vault: Vault,
        user: CurrentUser,
    ) -> Template | Redirect:
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        try:
            advisory_id = await service.create(
                db, vault, user, draft, now=utcnow(), uploads=uploads_from_form(form),
                files=files, sessions=sessions, errors=parse_errors,
            )  # fmt: skip
        except InvalidInput as exc:
            values = form_values(None, draft)
            values["valid_until"] = form.get("valid_until", "")
            return _form_page(
                user, action="/advisories/new", values=values, errors=exc.errors, status=422
            )
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @get("/{advisory_id:uuid}")
    async def detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        sparad: FromQuery[str | None] = None,
    ) -> Template:
        return await self._detail(db, vault, user, advisory_id, None, "Sparat." if sparad else None)

    @get("/{advisory_id:uuid}/versions/{number:int}")
    async def version(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        number: PositiveInt,
    ) -> Template:
        return await self._detail(db, vault, user, advisory_id, number, None)

    async def _detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        number: int | None,
        flash: str | None,
    ) -> Template:
        now = utcnow()
        d = await queries.get(db, vault, user, advisory_id, now=now, version=number)
        # Back to the list the viewer works from: a handler's own (withdrawn ones included),
        # else the jour's active list.
        back = (
            ("/advisories", "Aviseringar")
            if access.own_orgs(user)
            else (
                "/jour/advisories",
                "Aktiva aviseringar",
            )
        )
        return render(
            "advisories/detail.html", user, d=d, now=now, texts=texts, flash=flash, back=back
        )

    @get("/{advisory_id:uuid}/amend")
    async def amend_form(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID]
    ) -> Template:
        d = await queries.get(db, vault, user, advisory_id, now=utcnow())
        if d.summary.status != "active":
            raise Conflict("Aviseringen är återkallad och kan inte ändras.")
        if not d.can_change:
            raise Forbidden("Bara kommunen som skickade aviseringen kan ändra den.")
        return _form_page(
            user,
            action=f"/advisories/{advisory_id}/amend",
            values=form_values(d.content, None),
            errors={},
            base_version=d.summary.version,
            advisory_id=advisory_id,
        )

    @post("/{advisory_id:uuid}/amend")
    async def amend(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:  # fmt: skip
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        base = _int(form.get("base_version"))

        def again(errors: dict[str, str], status: int, conflict: str | None = None) -> Template:
            values = form_values(None, draft)
            values["valid_until"] = form.get("valid_until", "")
            return _form_page(
                user, action=f"/advisories/{advisory_id}/amend", values=values, errors=errors,
                status=status, base_version=base, advisory_id=advisory_id, conflict=conflict,
            )  # fmt: skip

        if parse_errors:
            return again(parse_errors, 422)
        try:
            await service.amend(
                db, vault, user, advisory_id, draft, base_version=base, now=utcnow()
            )
        except InvalidInput as exc:
            return again(exc.errors, 422)
        except Conflict as exc:
            return again({}, 409, exc.message)
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @post("/{advisory_id:uuid}/reconfirm")
    async def reconfirm(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
    ) -> Redirect:  # fmt: skip
        form = await request.form()
        await service.reconfirm(
            db, vault, user, advisory_id,
            base_version=_int(form.get("base_version")), now=utcnow(),
        )  # fmt: skip
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @post("/{advisory_id:uuid}/withdraw")
    async def withdraw(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
    ) -> Redirect:  # fmt: skip
        form = await request.form()
        await service.withdraw(
            db, vault, user, advisory_id, reason=str(form.get("reason", "")),
            base_version=_int(form.get("base_version")), now=utcnow(),
        )  # fmt: skip
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @post("/{advisory_id:uuid}/acknowledge")
    async def acknowledge(
        self, request: AnyRequest, db: Db, user: CurrentUser, advisory_id: FromPath[uuid.UUID]
    ) -> Redirect:
        form = await request.form()
        await service.acknowledge(
            db, user, advisory_id, version=_int(form.get("version")), now=utcnow()
        )
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @post("/{advisory_id:uuid}/attachments")
    async def attach(
        self, request: AnyRequest, db: Db, files: Files, sessions: Sessions, vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
    ) -> Redirect:  # fmt: skip
        form = await request.form()
        await service.add_attachments(
            db,
            sessions,
            files,
            vault,
            user,
            advisory_id,
            uploads_from_form(form),
        )
        return Redirect(f"/advisories/{advisory_id}?sparad=1", status_code=303)

    @get("/{advisory_id:uuid}/attachments/{attachment_id:uuid}")
    async def download(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:  # fmt: skip
        opened = await queries.open_attachment(
            db, sessions, files, vault, user, advisory_id, attachment_id
        )
        return download_response(opened)


def download_response(opened: OpenedFile) -> Stream:
    """A streamed download that the browser saves rather than renders."""
    return Stream(
        opened.chunks,
        media_type=opened.view.content_type,
        headers={
            "Content-Disposition": content_disposition(opened.view.name, opened.view.content_type),
            "Content-Length": str(opened.view.size),
        },
    )


class JourPages(Controller):
    """`/jour/advisories`: the night view of active advisories of every member municipality."""

    path = "/jour"
    include_in_schema = False

    @get("/advisories")
    async def night_view(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        now = utcnow()
        rows = await queries.list_for_jour(db, vault, user, now=now)
        return render(
            "advisories/night.html",
            user,
            rows=rows,
            now=now,
            shift_start=queries.shift_start(now),
            texts=texts,
        )
