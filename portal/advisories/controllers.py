"""Advisory pages (the handler's list and form, the detail page, the jour's night view) and
`/api/v1/advisories`, the advisory flow for case systems (JSON; files as multipart)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Redirect, Stream, Template

from portal.advisories import access, queries, service, texts
from portal.advisories.content import DEFAULT_VALIDITY, LEGAL_BASES, AdvisoryDraft
from portal.advisories.schemas import (
    AcknowledgeIn,
    AdvisoryIn,
    AdvisoryOut,
    AdvisorySummaryOut,
    AmendIn,
    AttachmentsCreatedOut,
    AttachmentsIn,
    CreatedOut,
    ReconfirmIn,
    WithdrawIn,
    detail_out,
    draft_from_form,
    form_values,
    summary_out,
    uploads_from_form,
)
from portal.attachments.files import MAX_FILE_BYTES
from portal.attachments.service import StorageUnavailable, Upload
from portal.db.base import utcnow
from portal.errors import Conflict, Forbidden, InvalidInput
from portal.paging import PAGE_SIZE, period
from portal.timefmt import STOCKHOLM, format_local
from portal.web.deps import CurrentUser, Db, Files, Sessions, Vault
from portal.web.downloads import stream_opened
from portal.web.params import PageLimit, PositiveInt, list_query, paged
from portal.web.render import render

AnyRequest = Request[Any, Any, Any]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _form_again(
    user: CurrentUser,
    form: Any,
    draft: AdvisoryDraft,
    *,
    errors: dict[str, str],
    status: int,
    storage_down: bool = False,
) -> Template:
    """The new-advisory form again, filled in with what was posted."""
    values = form_values(None, draft)
    values["valid_until"] = form.get("valid_until", "")
    return _form_page(
        user,
        action="/advisories/new",
        values=values,
        errors=errors,
        status=status,
        storage_down=storage_down,
    )


SentStatus = Literal["all", "active", "expiring", "expired", "withdrawn"]
"""Filters of the handler's list (portal.advisories.queries.SENT_STATUSES)."""
LegalBasis = Literal["none", "sol", "lvu", "lvm"]
"""Legal bases (portal.advisories.content.LEGAL_BASES)."""


def _sent_filter(
    status: str,
    unit: uuid.UUID | None,
    legal_basis: str | None,
    date_from: date | None,
    date_to: date | None,
) -> queries.SentFilter:
    since, until = period(date_from, date_to)
    return queries.SentFilter(status, unit, legal_basis, since, until)


def _aware(since: datetime | None) -> datetime | None:
    """A `since` filter as given; without a zone it is Stockholm time, as on every page."""
    if since is None or since.tzinfo is not None:
        return since
    return since.replace(tzinfo=STOCKHOLM)


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
    storage_down: bool = False,
) -> Template:
    return render(
        "advisories/form.html",
        user,
        status_code=status,
        storage_down=storage_down,
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
    async def sent(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[SentStatus] = "all",
        unit: FromQuery[uuid.UUID | None] = None,
        legal_basis: FromQuery[LegalBasis | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        """The municipality's advisories, 50 at a time, newest first, with filters."""
        now = utcnow()
        filters = _sent_filter(status, unit, legal_basis, date_from, date_to)
        page = await queries.list_sent(db, vault, user, now=now, filters=filters, before=before)
        query = list_query(status=status, unit=unit, legal_basis=legal_basis, date_from=date_from,
                       date_to=date_to)  # fmt: skip
        units = await queries.sender_units(db, user)
        return render(
            "advisories/list.html", user, page=page, rows=page.rows, now=now, texts=texts,
            query=query, statuses=queries.SENT_STATUSES, units=units, legal_bases=LEGAL_BASES,
        )  # fmt: skip

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
            return _form_again(user, form, draft, errors=exc.errors, status=422)
        except StorageUnavailable:
            # The files could not be stored and nothing was saved, but what the person typed
            # must not be lost: the form comes back filled in (only the files must be chosen
            # again: a browser never pre-fills a file field).
            return _form_again(user, form, draft, errors={}, status=503, storage_down=True)
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

    @get("/{advisory_id:uuid}")
    async def detail(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        saved: FromQuery[str | None] = None,
    ) -> Template:
        return await self._detail(db, vault, user, advisory_id, None, "Sparat." if saved else None)

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
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

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
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

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
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

    @post("/{advisory_id:uuid}/acknowledge")
    async def acknowledge(
        self, request: AnyRequest, db: Db, user: CurrentUser, advisory_id: FromPath[uuid.UUID]
    ) -> Redirect:
        form = await request.form()
        await service.acknowledge(
            db, user, advisory_id, version=_int(form.get("version")), now=utcnow()
        )
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

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
        return Redirect(f"/advisories/{advisory_id}?saved=1", status_code=303)

    @get("/{advisory_id:uuid}/attachments/{attachment_id:uuid}")
    async def download(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:  # fmt: skip
        opened = await queries.open_attachment(
            db, sessions, files, vault, user, advisory_id, attachment_id
        )
        return stream_opened(opened)


class JourPages(Controller):
    """`/jour/advisories`: the night view of active advisories of every member municipality."""

    path = "/jour"
    include_in_schema = False

    @get("/advisories")
    async def night_view(
        self, db: Db, vault: Vault, user: CurrentUser, before: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
    ) -> Template:  # fmt: skip
        """The active advisories of every member municipality, 50 at a time, newest first;
        `since` (the night dashboard's "Visa alla"): only those new or changed since then."""
        now = utcnow()
        since = _aware(since)
        page = await queries.list_for_jour(db, vault, user, now=now, before=before, since=since)
        return render(
            "advisories/night.html",
            user,
            page=page,
            rows=page.rows,
            now=now,
            shift_start=queries.shift_start(now),
            since=since,
            query=list_query(since=queries.since_param(since) if since else None),
            texts=texts,
        )


class AdvisoryApi(Controller):
    """Advisories: list, create, read, amend, re-confirm, withdraw, acknowledge, files."""

    path = "/api/v1/advisories"
    tags = ["advisories"]  # noqa: RUF012

    @get("/", summary="List advisories")
    async def list_advisories(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        view: FromQuery[Literal["jour", "sent"] | None] = None,
        status: FromQuery[SentStatus] = "all",
        unit: FromQuery[uuid.UUID | None] = None,
        legal_basis: FromQuery[LegalBasis | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
        limit: PageLimit = PAGE_SIZE,
        since: FromQuery[datetime | None] = None,
    ) -> Response[list[AdvisorySummaryOut]]:
        """`view=jour`: active advisories to the jour; `view=sent`: the municipality's own.

        Default: `jour` for jour staff, `sent` otherwise. Other roles get 403. Both page
        newest first, `limit` at a time (keyset): `Link: <…>; rel="next"` gives the next page
        while there is one and `X-Total-Count` counts the (filtered) list; `sent` filters by
        `status` (all, active, expiring, expired, withdrawn), `unit`, `legal_basis` and the
        day posted (`date_from`, `date_to`, Stockholm days, inclusive). `jour` takes `since`
        (ISO 8601; without a zone, Stockholm time): only the advisories posted or changed since
        then that have not expired, most recently changed first (the night dashboard's "new or
        changed this shift").
        """
        now = utcnow()
        if view == "jour" or (view is None and access.is_jour_reader(user)):
            since = _aware(since)
            page = await queries.list_for_jour(
                db, vault, user, now=now, before=before, size=limit, since=since
            )
            query = list_query(
                view="jour", limit=limit, since=queries.since_param(since) if since else None
            )
            return paged(page, [summary_out(r) for r in page.rows], "/api/v1/advisories", query)
        filters = _sent_filter(status, unit, legal_basis, date_from, date_to)
        page = await queries.list_sent(
            db, vault, user, now=now, filters=filters, before=before, size=limit
        )
        query = list_query(view="sent", status=status, unit=unit, legal_basis=legal_basis,
                       date_from=date_from, date_to=date_to, limit=limit)  # fmt: skip
        return paged(page, [summary_out(r) for r in page.rows], "/api/v1/advisories", query)

    @post("/", summary="Post an advisory")
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[AdvisoryIn]
    ) -> CreatedOut:
        """Post to the municipality's jour; attach files afterwards with POST .../attachments."""
        advisory_id = await service.create(
            db, vault, user, data, now=utcnow(),
            organisation_id=data.organisation_id,
        )  # fmt: skip
        return CreatedOut(advisory_id, 1)

    @get("/{advisory_id:uuid}", summary="Read an advisory")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID]
    ) -> AdvisoryOut:
        """The current version with history, acknowledgements and files (audited)."""
        d = await queries.get(db, vault, user, advisory_id, now=utcnow())
        return detail_out(d)

    @get("/{advisory_id:uuid}/versions/{number:int}", summary="Read an earlier version")
    async def read_version(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        number: PositiveInt,
    ) -> AdvisoryOut:
        """One version of the history (audited)."""
        return detail_out(
            await queries.get(db, vault, user, advisory_id, now=utcnow(), version=number)
        )

    @put("/{advisory_id:uuid}", summary="Amend an advisory")
    async def amend(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[AmendIn],
    ) -> CreatedOut:  # fmt: skip
        """New version with the full new content; 409 if `base_version` is not the current one."""
        number = await service.amend(
            db, vault, user, advisory_id, data,
            base_version=data.base_version, now=utcnow(),
        )  # fmt: skip
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/reconfirm", summary="Re-confirm an advisory")
    async def reconfirm(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[ReconfirmIn],
    ) -> CreatedOut:  # fmt: skip
        """New version with unchanged content and a new expiry (default 14 days ahead)."""
        number = await service.reconfirm(
            db, vault, user, advisory_id, base_version=data.base_version,
            now=utcnow(), valid_until=data.valid_until,
        )  # fmt: skip
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/withdraw", summary="Withdraw an advisory", status_code=204)
    async def withdraw(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[WithdrawIn],
    ) -> None:  # fmt: skip
        """Withdraw with a reason; it leaves the jour's view."""
        await service.withdraw(
            db, vault, user, advisory_id, reason=data.reason,
            base_version=data.base_version, now=utcnow(),
        )  # fmt: skip

    @post("/{advisory_id:uuid}/acknowledge", summary="Acknowledge an advisory")
    async def acknowledge(
        self,
        db: Db,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        data: JSONBody[AcknowledgeIn],
    ) -> CreatedOut:
        """The jour's receipt of the current version (idempotent)."""
        number = await service.acknowledge(
            db, user, advisory_id, version=data.version, now=utcnow()
        )
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/attachments", summary="Attach files")
    async def attach(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        data: MultipartBody[AttachmentsIn],
    ) -> AttachmentsCreatedOut:  # fmt: skip
        """Multipart field `attachments` (one or more PDF, PNG or JPEG; at most 20 MB each)."""
        uploads = [Upload(f.file, f.filename) for f in data.attachments]
        ids = await service.add_attachments(db, sessions, files, vault, user, advisory_id, uploads)
        return AttachmentsCreatedOut(ids)

    @get("/{advisory_id:uuid}/attachments/{attachment_id:uuid}", summary="Download a file")
    async def download(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:  # fmt: skip
        """The decrypted file, streamed (audited)."""
        opened = await queries.open_attachment(
            db, sessions, files, vault, user, advisory_id, attachment_id
        )
        return stream_opened(opened)
