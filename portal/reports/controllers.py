"""Report pages (Swedish) and the JSON API under /api/v1/reports. Thin: parse, call, present."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.response import Redirect, Stream, Template

from portal.attachments.service import Upload
from portal.codelists import service as codelists
from portal.db.base import utcnow
from portal.drafts import service as drafts
from portal.errors import Forbidden, InvalidInput
from portal.reports import access, content, pdf, queries, service
from portal.reports.schemas import (
    SUBJECT_ROWS,
    URGENCIES,
    AcknowledgeInput,
    AddendumInput,
    AttachmentsCreated,
    AttachmentsIn,
    PersonOption,
    ReportInput,
    ReportOut,
    ReportSummary,
    field_id,
    parse_report_form,
)
from portal.timefmt import format_local
from portal.web.deps import CurrentUser, Db, Files, Sessions, Vault
from portal.web.downloads import send_bytes, stream_opened
from portal.web.render import render


def _pdf_response(report: ReportOut, body: bytes) -> Response[bytes]:
    return send_bytes(body, name=pdf.file_name(report), content_type="application/pdf")


PageSize = Annotated[int, QueryParameter(ge=1, le=200)]
"""Reports per API page."""
Show = Literal["all", "unacknowledged", "unread"]
"""List filters (portal.reports.queries.SHOW)."""
BOX_PAGES = {
    "inbox": ("reports/inbox.html", "/reports/inbox"),
    "sent": ("reports/sent.html", "/reports/sent"),
}


class ReportApiController(Controller):
    """JSON API for case systems: write, list, read, acknowledge, addenda, PDF."""

    path = "/api/v1/reports"
    tags = ["Händelserapporter"]  # noqa: RUF012

    @post("", summary="Skriv en händelserapport")
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[ReportInput]
    ) -> ReportOut:
        now = utcnow()
        report_id = await service.create_report(db, vault, user, data, now=now)
        return await queries.open_report(db, vault, user, report_id, now=now)

    @get("", summary="Inkorg (box=inbox) eller skickade (box=sent)")
    async def list_reports(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        box: FromQuery[Literal["inbox", "sent"]] = "inbox",
        show: FromQuery[Show] = "all",
        before: FromQuery[str | None] = None,
        limit: PageSize = queries.PAGE_SIZE,
    ) -> Response[list[ReportSummary]]:
        """Newest first, `limit` at a time (keyset paging): the `Link: <…>; rel="next"` header
        gives the next page while there is one. `X-Total-Count` counts the filtered list."""
        page = await queries.list_box(db, vault, user, box, show=show, before=before, size=limit)
        headers = {"X-Total-Count": str(page.total)}
        if page.next_cursor:
            query = urlencode(
                {"box": box, "show": show, "limit": limit, "before": page.next_cursor}
            )
            headers["Link"] = f'</api/v1/reports?{query}>; rel="next"'
        return Response(page.rows, headers=headers)

    @get("/{report_id:uuid}", summary="Läs en rapport (markeras som läst, loggas)")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, report_id: FromPath[uuid.UUID]
    ) -> ReportOut:
        return await queries.open_report(db, vault, user, report_id, now=utcnow())

    @get("/{report_id:uuid}/follow-up-candidates", summary="Handläggare som kan ta över")
    async def candidates(
        self, db: Db, vault: Vault, user: CurrentUser, report_id: FromPath[uuid.UUID]
    ) -> list[PersonOption]:
        return await queries.follow_up_candidates(db, vault, user, report_id)

    @post("/{report_id:uuid}/acknowledge", status_code=200, summary="Kvittera rapporten")
    async def acknowledge(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[AcknowledgeInput],
    ) -> ReportOut:
        now = utcnow()
        await service.acknowledge(db, user, report_id, data.follow_up_owner_id, now=now)
        return await queries.open_report(db, vault, user, report_id, now=now)

    @post("/{report_id:uuid}/addenda", summary="Lägg till ett tillägg")
    async def addendum(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[AddendumInput],
    ) -> ReportOut:
        now = utcnow()
        await service.add_addendum(db, vault, user, report_id, data.text, now=now)
        return await queries.open_report(db, vault, user, report_id, now=now)

    @post("/{report_id:uuid}/attachments", summary="Bifoga filer (multipart, fältet attachments)")
    async def attach(
        self,
        db: Db,
        files: Files,
        sessions: Sessions,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        data: MultipartBody[AttachmentsIn],
    ) -> AttachmentsCreated:
        uploads = [Upload(f.file, f.filename) for f in data.attachments]
        ids = await service.add_attachments(
            db, sessions, files, vault, user, report_id, uploads, now=utcnow()
        )
        return AttachmentsCreated(ids)

    @get("/{report_id:uuid}/attachments/{attachment_id:uuid}", summary="Hämta en bifogad fil")
    async def attachment(
        self,
        db: Db,
        files: Files,
        sessions: Sessions,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:
        return await _file(db, files, sessions, vault, user, report_id, attachment_id)

    @get(
        "/{report_id:uuid}/pdf",
        summary="Rapporten som PDF/A (nedladdningen loggas)",
        media_type="application/pdf",
    )
    async def download(
        self, db: Db, vault: Vault, user: CurrentUser, report_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        report = await queries.report_for_download(db, vault, user, report_id)
        return _pdf_response(report, await pdf.render(report))


async def _file(
    db: Db,
    files: Files,
    sessions: Sessions,
    vault: Vault,
    user: CurrentUser,
    report_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> Stream:
    opened = await queries.open_attachment(
        db, sessions, files, vault, user, report_id, attachment_id
    )
    return stream_opened(opened)


async def _form_fields(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    form = await request.form()
    return {k: [v for v in form.getall(k) if isinstance(v, str)] for k in form}


DRAFT_KEY = "report-new"
"""The report form's draft (portal.drafts): kept across a session timeout."""


def _night_defaults(user: CurrentUser) -> dict[str, str]:
    """What the form can know already: the event and the assessment happened about now, and the
    one writing is usually the one who assessed (all editable)."""
    now = format_local(utcnow(), "%Y-%m-%dT%H:%M")
    jour = next((m.org_name for m in user.memberships if m.org_kind == "jour"), "")
    return {
        "occurred_at": now,
        "assessment.assessed_at": now,
        "assessment.assessed_by": f"{user.name}, {jour}" if jour else user.name,
    }


class ReportPageController(Controller):
    """`/reports`: the report form, the unit inbox, the jour's sent list, the report page."""

    path = "/reports"
    include_in_schema = False

    async def _form_page(
        self,
        db: Db,
        user: CurrentUser,
        *,
        values: dict[str, str] | None = None,
        actions: list[str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
        draft_saved_at: datetime | None = None,
        flash: str | None = None,
    ) -> Template:
        version = await codelists.current_version(db)
        return render(
            "reports/new.html",
            user,
            status_code=status,
            draft_key=DRAFT_KEY,
            draft_saved_at=draft_saved_at,
            flash=flash,
            groups=await queries.form_units(db, user),
            lists=await codelists.load(db, version),
            urgencies=URGENCIES,
            rows=range(SUBJECT_ROWS),
            values=values or {},
            checked=set(actions or []),
            errors=errors or {},
            fid=field_id,
        )

    @get("/")
    async def start(self, user: CurrentUser) -> Redirect:
        """The jour lands on its sent reports, a handler on the unit inbox."""
        target = "sent" if access.scope_of(user).jours else "inbox"
        return Redirect(f"/reports/{target}", status_code=303)

    @get("/new")
    async def new(
        self, db: Db, vault: Vault, user: CurrentUser, draft: FromQuery[str | None] = None
    ) -> Template:
        """The form; after a session timeout it starts from the writer's saved draft."""
        if not access.scope_of(user).jours:
            raise Forbidden()
        saved = await drafts.load(db, vault, user.user_id, DRAFT_KEY, now=utcnow())
        if saved is None:
            flash = "Utkastet är slängt." if draft == "discarded" else None
            return await self._form_page(db, user, values=_night_defaults(user), flash=flash)
        fields = saved.fields
        values = {k: v for k, v in fields.items() if isinstance(v, str)}
        actions = fields.get("actions", [])
        return await self._form_page(
            db,
            user,
            values=values,
            actions=[actions] if isinstance(actions, str) else actions,
            draft_saved_at=saved.saved_at,
        )

    @post("/new")
    async def create(
        self, request: Request[Any, Any, Any], db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Redirect:
        parsed = parse_report_form(await _form_fields(request))
        try:
            report_id = await service.create_report(
                db,
                vault,
                user,
                parsed.data,
                now=utcnow(),
                pre_errors=parsed.errors,
            )
        except InvalidInput as exc:
            return await self._form_page(
                db,
                user,
                values=dict(parsed.values),
                actions=parsed.actions,
                errors=exc.errors,
                status=422,
            )
        await drafts.discard(db, user.user_id, DRAFT_KEY)
        return Redirect(f"/reports/{report_id}?sent=1", status_code=303)

    async def _box_page(
        self, db: Db, vault: Vault, user: CurrentUser, box: str, show: str, before: str | None
    ) -> Template:
        page = await queries.list_box(db, vault, user, box, show=show, before=before)
        template, here = BOX_PAGES[box]
        return render(
            template, user, page=page, rows=page.rows, show=show, fmt=content.local_time,
            here=here,
        )  # fmt: skip

    @get("/inbox")
    async def inbox(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        show: FromQuery[Show] = "all",
        before: FromQuery[str | None] = None,
    ) -> Template:
        return await self._box_page(db, vault, user, "inbox", show, before)

    @get("/sent")
    async def sent(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        show: FromQuery[Show] = "all",
        before: FromQuery[str | None] = None,
    ) -> Template:
        return await self._box_page(db, vault, user, "sent", show, before)

    async def _detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        *,
        flash: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        report = await queries.open_report(db, vault, user, report_id, now=utcnow())
        candidates = (
            await queries.follow_up_candidates(db, vault, user, report_id)
            if report.can_acknowledge
            else []
        )
        return render(
            "reports/detail.html",
            user,
            status_code=status,
            r=report,
            candidates=candidates,
            me=user.user_id,
            fmt=content.local_time,
            flash=flash,
            errors=errors or {},
            values=values or {},
            fid=field_id,
        )

    @get("/{report_id:uuid}")
    async def detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        sent: FromQuery[str | None] = None,
        acknowledged: FromQuery[str | None] = None,
        saved: FromQuery[str | None] = None,
    ) -> Template:
        flash = (
            "Rapporten är skickad."
            if sent
            else "Rapporten är kvitterad."
            if acknowledged
            else "Tillägget är sparat."
            if saved
            else None
        )
        return await self._detail(db, vault, user, report_id, flash=flash)

    @post("/{report_id:uuid}/acknowledge")
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        fields = await _form_fields(request)
        raw = (fields.get("follow_up_owner_id") or [""])[0].strip()
        try:
            owner = uuid.UUID(raw) if raw else None
        except ValueError:
            owner = uuid.UUID(int=0)  # matches nobody: the service answers with a field error
        try:
            await service.acknowledge(db, user, report_id, owner, now=utcnow())
        except InvalidInput as exc:
            return await self._detail(db, vault, user, report_id, errors=exc.errors, status=422)
        return Redirect(f"/reports/{report_id}?acknowledged=1", status_code=303)

    @post("/{report_id:uuid}/addenda")
    async def addendum(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        fields = await _form_fields(request)
        text = (fields.get("text") or [""])[0]
        try:
            await service.add_addendum(db, vault, user, report_id, text, now=utcnow())
        except InvalidInput as exc:
            return await self._detail(
                db, vault, user, report_id, errors=exc.errors, values={"text": text}, status=422
            )
        return Redirect(f"/reports/{report_id}?saved=1", status_code=303)

    @post("/{report_id:uuid}/attachments")
    async def attach(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        sessions: Sessions,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        form = await request.form()
        uploads = [
            Upload(f.file, f.filename)
            for f in form.getall("attachments", [])
            if isinstance(f, UploadFile) and f.filename
        ]
        try:
            await service.add_attachments(
                db,
                sessions,
                files,
                vault,
                user,
                report_id,
                uploads,
                now=utcnow(),
            )
        except InvalidInput as exc:
            return await self._detail(db, vault, user, report_id, errors=exc.errors, status=422)
        return Redirect(f"/reports/{report_id}", status_code=303)

    @get("/{report_id:uuid}/attachments/{attachment_id:uuid}")
    async def attachment(
        self,
        db: Db,
        files: Files,
        sessions: Sessions,
        vault: Vault,
        user: CurrentUser,
        report_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:
        return await _file(db, files, sessions, vault, user, report_id, attachment_id)

    @get("/{report_id:uuid}/pdf")
    async def download(
        self, db: Db, vault: Vault, user: CurrentUser, report_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        report = await queries.report_for_download(db, vault, user, report_id)
        return _pdf_response(report, await pdf.render(report))


OLD_PAGES = {"": "", "ny": "new", "inkorg": "inbox", "skickade": "sent"}
"""Pages of the old Swedish report URLs (`/rapporter/<old>`) and their English names."""
OLD_SUBPAGES = {"kvittera": "acknowledge", "tillagg": "addenda", "bilagor": "attachments"}
"""Parts below `/rapporter/{id}/` that were renamed (`pdf` kept its name)."""


def english_path(old: str) -> str | None:
    """The English report path for the part of an old URL after `/rapporter`; None when the
    old URL never existed (so it is a 404, like any unknown path)."""
    parts = [p for p in old.split("/") if p]
    if len(parts) <= 1 and (parts[0] if parts else "") in OLD_PAGES:
        page = OLD_PAGES[parts[0] if parts else ""]
        return f"/reports/{page}" if page else "/reports"
    try:
        report_id = uuid.UUID(parts[0])
    except ValueError:
        return None
    rest = parts[1:]
    if not rest:
        return f"/reports/{report_id}"
    sub = "pdf" if rest[0] == "pdf" else OLD_SUBPAGES.get(rest[0])
    if sub is None or len(rest) > 2 or (len(rest) == 2 and sub != "attachments"):
        return None
    if len(rest) == 2:
        try:
            return f"/reports/{report_id}/attachments/{uuid.UUID(rest[1])}"
        except ValueError:
            return None
    return f"/reports/{report_id}/{sub}"


@route(
    ["/rapporter", "/rapporter/{old:path}"],
    http_method=[HttpMethod.GET, HttpMethod.POST],
    include_in_schema=False,
)
async def old_report_urls(request: Request[Any, Any, Any], old: FromPath[str] = "") -> Redirect:
    """The Swedish report URLs before issue 13 (bookmarks, e-mail links, forms in open tabs):
    a permanent redirect that keeps the method and the query string (308)."""
    target = english_path(old)
    if target is None:
        raise NotFoundException()
    query = request.url.query
    return Redirect(f"{target}?{query}" if query else target, status_code=308)
