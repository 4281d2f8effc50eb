"""Decision pages and API: thin handlers over portal.decisions.service."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Redirect, Stream, Template

from auth.roles import Permission
from portal.audit import service as audit
from portal.db.base import utcnow
from portal.decisions import service
from portal.decisions import signing as signatures
from portal.decisions.rules import KINDS, reported_at_next_meeting
from portal.decisions.schemas import DecisionIn, DecisionOut
from portal.errors import InvalidInput
from portal.paging import PAGE_SIZE, period
from portal.rosters import service as rosters
from portal.timefmt import format_local, parse_local
from portal.web.deps import CurrentUser, Db, Files, RelyingParty, Signing, Vault
from portal.web.downloads import send_bytes, stream_file
from portal.web.params import PageLimit, list_query, paged
from portal.web.render import render

log = logging.getLogger("jourpost.decisions")

ListStatus = Literal[
    "all", "draft", "awaiting_signature", "signed", "delivered", "lifted", "cancelled", "to_report"
]
"""Status filters of the list (portal.decisions.service.LIST_FILTERS)."""
Kind = Literal["lvu6", "lvm13", "lvu11"]
"""Decision kinds (portal.decisions.rules.KINDS)."""


def _filter(
    status: str,
    kind: str | None,
    municipality: uuid.UUID | None,
    date_from: date | None,
    date_to: date | None,
) -> service.DecisionFilter:
    since, until = period(date_from, date_to)
    return service.DecisionFilter(status, kind, municipality, since, until)


FIELDS = (
    "kind",
    "municipality_id",
    "oral_decision_at",
    "decision_maker_id",
    "subject_personal_identity_number",
    "subject_name",
    "facts",
    "grounds",
    "placement",
    "revision",
)


def _from_form(form: dict[str, str]) -> DecisionIn:
    """Parse the page form; malformed ids and times become field errors."""
    errors: dict[str, str] = {}
    ids: dict[str, uuid.UUID] = {}
    for name, message in (
        ("municipality_id", "Välj kommun."),
        ("decision_maker_id", "Välj beslutsfattare."),
    ):
        try:
            ids[name] = uuid.UUID(form.get(name, ""))
        except ValueError:
            errors[name] = message
    oral: datetime | None = None
    try:
        oral = parse_local(form.get("oral_decision_at", ""))
    except ValueError:
        errors["oral_decision_at"] = "Ange datum och klockslag för det muntliga beslutet."
    if errors:
        raise InvalidInput(errors=errors)
    assert oral is not None
    return DecisionIn(
        kind=form.get("kind", ""),
        municipality_id=ids["municipality_id"],
        oral_decision_at=oral,
        decision_maker_id=ids["decision_maker_id"],
        subject_personal_identity_number=form.get("subject_personal_identity_number", ""),
        subject_name=form.get("subject_name", ""),
        facts=form.get("facts", ""),
        grounds=form.get("grounds", ""),
        placement=form.get("placement", ""),
        revision=int(form["revision"]) if form.get("revision", "").isdigit() else None,
    )


@dataclass(frozen=True, slots=True)
class DecisionMakers:
    """Who may decide for one municipality, for the form's grouped list."""

    municipality_id: uuid.UUID
    """The municipality."""
    municipality: str
    """Its name."""
    people: list[tuple[uuid.UUID, str, str, bool]]
    """(user id, name, role, on call now) of its chairs and substitutes."""


class DecisionPages(Controller):
    """Swedish pages: the list, the drafting form, a decision, its PDF."""

    path = "/decisions"
    include_in_schema = False

    @get("/")
    async def index(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[ListStatus] = "all",
        kind: FromQuery[Kind | None] = None,
        municipality: FromQuery[uuid.UUID | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
    ) -> Template:
        """The decisions the user may see, 50 at a time, newest oral decision first."""
        filters = _filter(status, kind, municipality, date_from, date_to)
        page = await service.list_page(db, vault, user, filters=filters, before=before)
        rows = page.rows
        return render(
            "decisions/list.html",
            user,
            page=page,
            rows=rows,
            to_report=[d for d in rows if reported_at_next_meeting(d.status)],
            can_draft=bool(user.orgs_with(Permission.DRAFT_DECISIONS)),
            query=list_query(
                status=status,
                kind=kind,
                municipality=municipality,
                date_from=date_from,
                date_to=date_to,
            ),
            statuses=service.LIST_FILTERS,
            kinds=[(k, f"{v.act} – {v.title}") for k, v in KINDS.items()],
            municipalities=await service.list_municipalities(db, user),
        )

    async def _form(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        form: dict[str, str],
        errors: dict[str, str],
        *,
        action: str,
        status: int = 200,
    ) -> Template:
        municipalities = sorted(
            (await rosters.visible_municipalities(db, user)).items(), key=lambda kv: kv[1]
        )
        on_call = {
            o.municipality_id: o.on_call[0].user_id
            for o in await rosters.on_call_now(db, vault, user)
            if o.on_call
        }
        groups = [
            DecisionMakers(
                mid,
                name,
                [
                    (pid, pname, role, pid == on_call.get(mid))
                    for pid, pname, role in await rosters.candidates(db, vault, mid)
                ],
            )
            for mid, name in municipalities
        ]
        chosen = form.get("municipality_id", "")
        if chosen and not form.get("decision_maker_id"):  # the one on call, preselected
            for g in groups:
                if str(g.municipality_id) == chosen and g.municipality_id in on_call:
                    form = {**form, "decision_maker_id": str(on_call[g.municipality_id])}
        return render(
            "decisions/form.html",
            user,
            status_code=status,
            form=form,
            errors=errors,
            kinds=KINDS,
            municipalities=municipalities,
            groups=groups,
            action=action,
        )

    @get("/new")
    async def new(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        service.require_drafter(user)
        # The oral decision was usually taken minutes ago: start from now (Stockholm time).
        start = {"oral_decision_at": format_local(utcnow(), "%Y-%m-%dT%H:%M")}
        return await self._form(db, vault, user, start, {}, action="/decisions")

    @post("/")
    async def create(
        self, request: Request[Any, Any, Any], db: Db, vault: Vault, user: CurrentUser
    ) -> Template | Redirect:
        service.require_drafter(user)
        form = {k: str(v) for k, v in (await request.form()).items() if k in FIELDS}
        try:
            new_id = await service.create_draft(db, vault, user, _from_form(form))
        except InvalidInput as exc:
            return await self._form(
                db, vault, user, form, exc.errors, action="/decisions", status=422
            )
        return Redirect(f"/decisions/{new_id}", status_code=303)

    @get("/{decision_id:uuid}")
    async def show(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Template:
        d = await service.get(db, vault, user, decision_id)
        is_drafter = bool(user.orgs_with(Permission.DRAFT_DECISIONS))
        return render(
            "decisions/show.html",
            user,
            d=d,
            is_drafter=is_drafter,
            is_signer=d.decision_maker_id == user.user_id,
        )

    @get("/{decision_id:uuid}/edit")
    async def edit(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Template:
        service.require_drafter(user)
        d = await service.get(db, vault, user, decision_id)
        form = {
            "kind": d.kind,
            "municipality_id": str(d.municipality_id),
            "oral_decision_at": format_local(d.oral_decision_at, "%Y-%m-%dT%H:%M"),
            "decision_maker_id": str(d.decision_maker_id),
            "subject_personal_identity_number": d.subject_personal_identity_number or "",
            "subject_name": d.subject_name,
            "facts": d.facts,
            "grounds": d.grounds,
            "placement": d.placement,
            "revision": str(d.revision),
        }
        return await self._form(db, vault, user, form, {}, action=f"/decisions/{decision_id}")

    @post("/{decision_id:uuid}")
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        vault: Vault,
        user: CurrentUser,
        decision_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        service.require_drafter(user)
        form = {k: str(v) for k, v in (await request.form()).items() if k in FIELDS}
        try:
            await service.update_draft(db, vault, user, decision_id, _from_form(form))
        except InvalidInput as exc:
            return await self._form(
                db, vault, user, form, exc.errors, action=f"/decisions/{decision_id}", status=422
            )
        return Redirect(f"/decisions/{decision_id}", status_code=303)

    @post("/{decision_id:uuid}/submit")
    async def submit(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Redirect:
        await service.submit_for_signature(db, vault, user, decision_id)
        return Redirect(f"/decisions/{decision_id}", status_code=303)

    @post("/{decision_id:uuid}/close")
    async def close(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        vault: Vault,
        user: CurrentUser,
        decision_id: FromPath[uuid.UUID],
    ) -> Redirect:
        form = await request.form()
        await service.close(
            db,
            vault,
            user,
            decision_id,
            to=str(form.get("to", "")),
            reason=str(form.get("reason", "")),
        )
        return Redirect(f"/decisions/{decision_id}", status_code=303)

    @get("/{decision_id:uuid}/document.pdf")
    async def pdf(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        data = await service.document_pdf(db, vault, user, decision_id)
        return send_bytes(data, name="beslut.pdf", content_type="application/pdf", inline=True)


async def _signed_pdf_download(
    db: Db, files: Files, user: CurrentUser, decision_id: uuid.UUID
) -> Stream:
    """The stored signed PDF as a download (page and API alike)."""
    chunks = await signatures.signed_pdf(db, files, user, decision_id)
    return stream_file(chunks, name="beslut-signerat.pdf", content_type="application/pdf")


class SignPages(Controller):
    """The chair's phone pages: read the decision, sign it, get the signed PDF."""

    path = "/decisions"
    include_in_schema = False

    @get("/{decision_id:uuid}/sign")
    async def sign_page(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Template:
        d = await service.get(db, vault, user, decision_id)
        return render(
            "decisions/sign.html",
            user,
            d=d,
            is_signer=d.decision_maker_id == user.user_id,
            reference=service.short_reference(d.id),
            jour_phone=await service.jour_phone(db, d.id),
        )

    @post("/{decision_id:uuid}/sign")
    async def sign(
        self,
        db: Db,
        relying_party: RelyingParty,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        decision_id: FromPath[uuid.UUID],
    ) -> Redirect:
        url = await signatures.begin(db, vault, relying_party, signing, user, decision_id)
        return Redirect(url, status_code=303)

    @get("/{decision_id:uuid}/signed.pdf")
    async def signed_pdf(
        self, db: Db, files: Files, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Stream:
        return await _signed_pdf_download(db, files, user, decision_id)


MAX_VERIFY_UPLOAD = 20 * 1024 * 1024


@dataclass
class VerifyUpload:
    """The verification form."""

    file: UploadFile | None = None
    """The PDF to check."""


class VerifyPages(Controller):
    """Upload a signed PDF and see the same report as `jourpost verify`."""

    path = "/verify"
    include_in_schema = False

    @get("/")
    async def form(self, user: CurrentUser) -> Template:
        return render("decisions/verify.html", user, report=None, error=None)

    @post("/")
    async def check(
        self,
        db: Db,
        signing: Signing,
        user: CurrentUser,
        data: MultipartBody[VerifyUpload],
    ) -> Template:
        from signing.errors import SigningError
        from signing.verify import verify_pdf

        content = await data.file.read() if data.file is not None else b""
        if not content.startswith(b"%PDF-") or len(content) > MAX_VERIFY_UPLOAD:
            return render(
                "decisions/verify.html",
                user,
                status_code=422,
                report=None,
                error="Välj en PDF-fil (högst 20 MB).",
            )
        roots = list(signing.trust_roots) if signing else []
        try:
            report = (await verify_pdf(content, trust_roots=roots)).to_json()
        except Exception as exc:  # any file gets a verdict (SigningError: unreadable PDF)
            if not isinstance(exc, SigningError):
                log.warning("verify page: %s while verifying an upload", type(exc).__name__)
            report = {"valid": False, "modified_after_signing": False, "signatures": []}
        await audit.record(
            db,
            "verify.upload",
            actor=user.actor(),
            details={"sha256": hashlib.sha256(content).hexdigest(), "valid": report["valid"]},
        )
        return render("decisions/verify.html", user, report=report, error=None)


class DecisionApi(Controller):
    """JSON API for decisions."""

    path = "/api/v1/decisions"
    tags = ["ordförandebeslut"]  # noqa: RUF012

    @get("/", summary="Beslut som användaren får se")
    async def index(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        status: FromQuery[ListStatus] = "all",
        kind: FromQuery[Kind | None] = None,
        municipality: FromQuery[uuid.UUID | None] = None,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        before: FromQuery[str | None] = None,
        limit: PageLimit = PAGE_SIZE,
    ) -> Response[list[DecisionOut]]:
        """Newest oral decision first, `limit` at a time (keyset paging): `Link: <…>;
        rel="next"` gives the next page while there is one, `X-Total-Count` counts the filtered
        list. Filters: `status` (a status, or `to_report`: every decision the committee is told
        of), `kind`, `municipality`, the day of the oral decision (`date_from`, `date_to`,
        Stockholm days, inclusive)."""
        filters = _filter(status, kind, municipality, date_from, date_to)
        page = await service.list_page(db, vault, user, filters=filters, before=before, size=limit)
        query = list_query(status=status, kind=kind, municipality=municipality, date_from=date_from,
                       date_to=date_to, limit=limit)  # fmt: skip
        return paged(page, page.rows, "/api/v1/decisions", query)

    @post("/", summary="Dokumentera ett muntligt beslut (utkast)", status_code=201)
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[DecisionIn]
    ) -> DecisionOut:
        new_id = await service.create_draft(db, vault, user, data)
        return await service.get(db, vault, user, new_id)

    @get("/{decision_id:uuid}", summary="Ett beslut")
    async def show(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> DecisionOut:
        return await service.get(db, vault, user, decision_id)

    @put("/{decision_id:uuid}", summary="Ändra ett utkast (med revision)")
    async def update(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        decision_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn],
    ) -> DecisionOut:
        await service.update_draft(db, vault, user, decision_id, data)
        return await service.get(db, vault, user, decision_id)

    @get(
        "/{decision_id:uuid}/signed.pdf",
        summary="Det undertecknade beslutet (PAdES-B-LTA, PDF/A-2b)",
        description=(
            "Den undertecknade PDF-filen som den lagrats: kontrolleras mot sin SHA-256 medan den "
            "läses, och hämtningen loggas. 404 om beslutet inte är undertecknat ännu eller inte "
            "syns för användaren. Verifieras offline med `jourpost verify`."
        ),
        media_type="application/pdf",
        response_description="PDF-filen (application/pdf)",
    )
    async def signed_pdf(
        self, db: Db, files: Files, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> Stream:
        return await _signed_pdf_download(db, files, user, decision_id)

    @post("/{decision_id:uuid}/submit", summary="Skicka för underskrift", status_code=200)
    async def submit(
        self, db: Db, vault: Vault, user: CurrentUser, decision_id: FromPath[uuid.UUID]
    ) -> DecisionOut:
        await service.submit_for_signature(db, vault, user, decision_id)
        return await service.get(db, vault, user, decision_id)
