"""Police-assistance requests: the jour's pages (list, form with the legal-basis check, the
request and its life), the chair's approval, the signed PDF, `/api/v1/police-requests`, and the
delegation matrix `/api/v1/delegation/{municipality_id}`."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from litestar.response import Redirect, Stream, Template

from portal.chair_signing import SigningUnavailable
from portal.db.base import utcnow
from portal.errors import InvalidInput
from portal.paging import PAGE_SIZE, period
from portal.police import access, delegation, queries, rules, service
from portal.police import signing as signatures
from portal.police.schemas import (
    ApprovalOut,
    CheckOut,
    CreatedOut,
    DelegationIn,
    DelegationOut,
    DetailOut,
    PoliceRequestIn,
    SummaryOut,
    TransitionIn,
    check_out,
    detail_out,
    draft_from_form,
    form_values,
    summary_out,
)
from portal.web.deps import (
    CurrentUser,
    Db,
    Files,
    Metrics,
    RelyingParty,
    Sessions,
    Signing,
    Vault,
)
from portal.web.downloads import stream_file
from portal.web.params import PageLimit, list_query, paged
from portal.web.render import render

AnyRequest = Request[Any, Any, Any]


async def _pdf(db: Db, files: Files, user: CurrentUser, request_id: uuid.UUID) -> Stream:
    chunks = await queries.signed_pdf(db, files, user, request_id)
    return stream_file(chunks, name="handrackning-signerad.pdf", content_type="application/pdf")


Status = Literal[
    "awaiting_chair", "signed", "sent", "granted", "refused", "executed", "not_found", "revoked"
]
"""Status filters (portal.police.rules.STATUSES)."""
Act = Literal["lvu", "lvm"]
"""The act a request is made under (portal.police.rules.ACTS)."""


def _filter(
    status: str | None,
    act: str | None,
    municipality: uuid.UUID | None,
    date_from: date | None,
    date_to: date | None,
) -> queries.ListFilter:
    since, until = period(date_from, date_to)
    return queries.ListFilter(status, act, municipality, since, until)


class PoliceRequestPages(Controller):
    """`/police-requests`: make, follow and (chair) decide requests for police assistance."""

    path = "/police-requests"
    include_in_schema = False

    @get("/")
    async def index(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[Status | None] = None,
        act: FromQuery[Act | None] = None,
        municipality: FromQuery[uuid.UUID | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        """The requests, 50 at a time, newest first, with filters."""
        filters = _filter(status, act, municipality, date_from, date_to)
        page = await queries.list_visible(db, vault, user, filters=filters, before=before)
        return render(
            "police/list.html", user, page=page, rows=page.rows,
            can_create=bool(access.jour_orgs(user)),
            query=list_query(status=status, act=act, municipality=municipality,
                             date_from=date_from, date_to=date_to),
            statuses=rules.STATUSES, acts=rules.ACTS,
            municipalities=await queries.list_municipalities(db, user),
        )  # fmt: skip

    async def _form(
        self, db: Db, user: CurrentUser, values: dict[str, str], errors: dict[str, str],
        *, status: int = 200, check: service.Assessment | None = None,
        unavailable: str | None = None,
    ) -> Template:  # fmt: skip
        """The form, filled in with `values` (portal.police.schemas.form_values: every field,
        the warning confirmation included), on every render and re-render alike."""
        if not values.get("submission_key") or "submission_key" in errors:
            # A form without a key of its own, or whose key made another request already
            # (sent, then edited after going back), gets a fresh one: sent again, it makes a
            # request. Every other answer keeps the key, so a retry that crosses the first
            # attempt still makes one request (docs/police-requests.md, "Sent twice").
            values = {**values, "submission_key": service.new_submission_key()}
        return render(
            "police/form.html", user, status_code=status, form=values, errors=errors,
            check=check, members=await access.members(db, user), acts=rules.ACTS,
            purposes=rules.PURPOSES, unavailable=unavailable,
        )  # fmt: skip

    @get("/new")
    async def new(self, db: Db, user: CurrentUser) -> Template:
        access.require_jour(user)
        return await self._form(db, user, form_values(), {})

    @post("/new")
    async def create(
        self,
        request: AnyRequest,
        db: Db,
        files: Files,
        metrics: Metrics,
        sessions: Sessions,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
    ) -> Template | Redirect:
        form = await request.form()
        draft, parse_errors = draft_from_form(form)
        values = form_values(form)
        now = utcnow()
        if form.get("step") == "check":
            try:
                found = await service.check_only(db, vault, user, draft, now=now)
            except InvalidInput as exc:
                return await self._form(db, user, values, exc.errors, status=422)
            return await self._form(db, user, values, {}, check=found)
        try:
            made = await service.create(
                db, vault, signing, files, user, draft, sessions=sessions, now=now,
                errors=parse_errors, key=service.submission_key(values["submission_key"]),
                track=metrics.track_signing,
            )  # fmt: skip
        except InvalidInput as exc:
            if exc.audit is not None:  # a blocked request stays on record
                await service.record_blocked(db, user, exc.audit)
            return await self._form(db, user, values, exc.errors, status=422)
        except SigningUnavailable as exc:
            # TSA, OCSP or the store down: nothing was made, but what the worker typed must not
            # be lost. The form comes back filled in (a confirmed warning still confirmed), with
            # the same key, to send again with one click.
            return await self._form(
                db, user, values, {}, status=503, unavailable=exc.message
            )  # fmt: skip
        return Redirect(f"/police-requests/{made.request_id}?saved=1", status_code=303)

    @get("/{request_id:uuid}")
    async def detail(
        self, db: Db, vault: Vault, user: CurrentUser, request_id: FromPath[uuid.UUID],
        saved: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        d = await queries.get(db, vault, user, request_id)
        return render(
            "police/detail.html", user, d=d, flash="Sparat." if saved else None,
            purposes=rules.PURPOSES,
        )  # fmt: skip

    @post("/{request_id:uuid}/status")
    async def status(
        self, request: AnyRequest, db: Db, vault: Vault, user: CurrentUser,
        request_id: FromPath[uuid.UUID],
    ) -> Redirect:  # fmt: skip
        form = await request.form()
        revision = form.get("revision")
        await service.transition(
            db, vault, user, request_id, str(form.get("status", "")),
            note=str(form.get("note", "")),
            revision=int(revision) if isinstance(revision, str) and revision.isdigit()
            and len(revision) < 10 else None, now=utcnow(),
        )  # fmt: skip
        return Redirect(f"/police-requests/{request_id}?saved=1", status_code=303)

    @post("/{request_id:uuid}/approve")
    async def approve(
        self,
        db: Db,
        relying_party: RelyingParty,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        request_id: FromPath[uuid.UUID],
    ) -> Redirect:
        """The chair decides: off to the identity provider; signed when it answers."""
        url = await signatures.begin(db, vault, relying_party, signing, user, request_id)
        return Redirect(url, status_code=303)

    @get("/{request_id:uuid}/signed.pdf")
    async def signed_pdf(
        self, db: Db, files: Files, user: CurrentUser, request_id: FromPath[uuid.UUID]
    ) -> Stream:
        return await _pdf(db, files, user, request_id)


class PoliceRequestApi(Controller):
    """Requests for police assistance (handräckning) and their life."""

    path = "/api/v1/police-requests"
    tags = ["police-requests"]  # noqa: RUF012

    @get("/", summary="List requests")
    async def list_requests(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[Status | None] = None,
        act: FromQuery[Act | None] = None,
        municipality: FromQuery[uuid.UUID | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
        limit: PageLimit = PAGE_SIZE,
    ) -> Response[list[SummaryOut]]:
        """The caller's jour's requests (jour staff) or their municipality's (handlers,
        chairs), newest first, `limit` at a time (keyset): `Link: <…>; rel="next"` while there
        is more, `X-Total-Count`; filters `status`, `act`, `municipality`, `date_from`,
        `date_to` (Stockholm days, inclusive). Audited, each page."""
        filters = _filter(status, act, municipality, date_from, date_to)
        page = await queries.list_visible(
            db, vault, user, filters=filters, before=before, size=limit
        )
        query = list_query(status=status, act=act, municipality=municipality,
                           date_from=date_from, date_to=date_to, limit=limit)  # fmt: skip
        rows = [summary_out(r) for r in page.rows]
        return paged(page, rows, "/api/v1/police-requests", query)

    @post("/check", summary="Check the legal basis", status_code=200)
    async def check(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[PoliceRequestIn]
    ) -> CheckOut:
        """The legal-basis check alone (only `personal_identity_number` and `act` are read):
        `blocked` when the person is placed under SoL (or under the other act), `warning` when
        nothing is registered, `allowed` for a registered LVU/LVM placement. Audited as a
        person lookup (by blind index)."""
        found = await service.check_only(db, vault, user, data.draft(), now=utcnow())
        return check_out(found)

    @post(
        "/",
        summary="Make a request",
        status_code=201,
        responses={
            200: ResponseSpec(
                CreatedOut,
                description="Idempotency-Key already used by the caller: the request it made",
            )
        },
    )
    async def create(
        self,
        db: Db,
        files: Files,
        metrics: Metrics,
        sessions: Sessions,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        data: JSONBody[PoliceRequestIn],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="A one-time key of this request (8-64 characters of letters, "
                "digits and ._:~+/=-), e.g. a UUID. Sent again with the same key (a retry "
                "after a timeout), the request already made is answered (200, same body) and "
                "no second one is made.",
            ),
        ] = None,
    ) -> Response[CreatedOut]:
        """Check and record the request. Blocked by the check: 422 with the explanation on
        `act` (audited); a warning not confirmed: 422 on `confirm_unregistered`. Under the
        jour's delegation the request is signed at once (`signed`); where the municipality's
        delegation matrix says the chair decides, it is `awaiting_chair`. With an
        `Idempotency-Key` the caller already used: 200 with the request it made (even when
        the two calls raced), 422 on `submission_key` if this body asks for something else."""
        made = await service.create(
            db, vault, signing, files, user, data.draft(), sessions=sessions, now=utcnow(),
            key=service.submission_key(idempotency_key), track=metrics.track_signing,
        )  # fmt: skip
        d = await queries.get(db, vault, user, made.request_id)
        return Response(
            CreatedOut(made.request_id, d.summary.status), status_code=200 if made.repeated else 201
        )

    @get("/{request_id:uuid}", summary="Read a request")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, request_id: FromPath[uuid.UUID]
    ) -> DetailOut:
        """The request, what the check said, and its life (audited)."""
        return detail_out(await queries.get(db, vault, user, request_id))

    @post("/{request_id:uuid}/status", summary="Record the next step", status_code=200)
    async def status(
        self, db: Db, vault: Vault, user: CurrentUser, request_id: FromPath[uuid.UUID],
        data: JSONBody[TransitionIn],
    ) -> DetailOut:  # fmt: skip
        """sent → granted | refused → executed | not_found; revoked until executed. Jour staff
        only; 409 for a step that can't follow the current one. Audited with its time."""
        await service.transition(
            db, vault, user, request_id, data.status, note=data.note, revision=data.revision,
            now=utcnow(),
        )  # fmt: skip
        return detail_out(await queries.get(db, vault, user, request_id))

    @post("/{request_id:uuid}/approve", summary="Decide as chair", status_code=200)
    async def approve(
        self,
        db: Db,
        relying_party: RelyingParty,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        request_id: FromPath[uuid.UUID],
    ) -> ApprovalOut:
        """The municipality's chair decides a request awaiting them: this starts the identity
        check (step-up) that the signature requires; nothing is signed yet. Send the chair's
        browser to `identity_provider_url`; when the provider answers, the request is signed
        in the verified chair's name. 403 for anyone but a chair of the municipality, 409 when
        it does not await the chair."""
        url = await signatures.begin(db, vault, relying_party, signing, user, request_id)
        return ApprovalOut(url)

    @get(
        "/{request_id:uuid}/signed.pdf",
        summary="Download the signed request",
        media_type="application/pdf",
        response_description="PDF-filen (application/pdf)",
    )
    async def signed_pdf(
        self, db: Db, files: Files, user: CurrentUser, request_id: FromPath[uuid.UUID]
    ) -> Stream:
        """The signed PDF/A (PAdES) for the police, as stored; audited. 404 until signed."""
        return await _pdf(db, files, user, request_id)


class DelegationPages(Controller):
    """`/delegation`: the administrator's view and edit of every municipality's matrix."""

    path = "/delegation"
    include_in_schema = False

    @get("/")
    async def index(
        self, db: Db, user: CurrentUser, saved: FromQuery[str | None] = None
    ) -> Template:
        rows = await delegation.overview(db, user)
        return render(
            "police/delegation.html", user, rows=rows, matters=delegation.MATTERS,
            deciders=delegation.DECIDERS, flash="Sparat." if saved else None,
        )  # fmt: skip

    @post("/{municipality_id:uuid}")
    async def change(
        self, request: AnyRequest, db: Db, user: CurrentUser, municipality_id: FromPath[uuid.UUID]
    ) -> Redirect:
        form = await request.form()
        wanted = {m: str(form.get(m, "")) for m in delegation.MATTERS if form.get(m) is not None}
        await delegation.set_rules(db, user, municipality_id, wanted, now=utcnow())
        return Redirect("/delegation?saved=1", status_code=303)


class DelegationApi(Controller):
    """The delegation matrix (FR-A5) per municipality."""

    path = "/api/v1/delegation"
    tags = ["delegation"]  # noqa: RUF012

    @get("/{municipality_id:uuid}", summary="Read a municipality's delegation matrix")
    async def read(
        self, db: Db, user: CurrentUser, municipality_id: FromPath[uuid.UUID]
    ) -> DelegationOut:
        """Who decides what: `jour` (the jour under delegation) or `chair`."""
        return DelegationOut(await delegation.matrix(db, user, municipality_id))

    @put("/{municipality_id:uuid}", summary="Change a municipality's delegation matrix")
    async def change(
        self, db: Db, user: CurrentUser, municipality_id: FromPath[uuid.UUID],
        data: JSONBody[DelegationIn],
    ) -> DelegationOut:  # fmt: skip
        """Administrators only; audited with the old and new values."""
        return DelegationOut(
            await delegation.set_rules(db, user, municipality_id, data.rules, now=utcnow())
        )
