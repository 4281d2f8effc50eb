"""Archive pages (/archive), the archive API (/api/v1/archive) and the streamed e-archive export.

Searches post their filters (a personnummer never goes in a URL). Record pages run the integrity
check on open. Exports are streamed zips (E-ARK SIP); every exported record is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Stream, Template

from portal.archive import export, service
from portal.db.base import utcnow
from portal.errors import BadCursor, Forbidden, InvalidInput, NotFound
from portal.paging import MAX_PAGE_SIZE, PAGE_SIZE, Page
from portal.principal import Principal
from portal.retention import service as retention
from portal.timefmt import STOCKHOLM
from portal.web.deps import CurrentUser, Db, Files, Sessions, Settings, Signing, Vault
from portal.web.downloads import stream_file
from portal.web.render import render

ALL_KINDS = tuple(service.KINDS)
SEARCH_FIELDS = ("organisation_id", "date_from", "date_to", "personal_identity_number")
"""The search form's fields besides the types: the next page posts them again."""
HOLD_FLASH = {
    "held": "Spärren är lagd.",
    "released": "Spärren är hävd.",
}


def _orgs(user: Principal) -> list[tuple[uuid.UUID, str]]:
    allowed = service.archive_orgs(user)
    if not allowed:
        raise Forbidden("Arkivet är till för arkivarier och registratorer.")
    names = {m.org_id: m.org_name for m in user.memberships if m.org_id in allowed}
    return sorted(names.items(), key=lambda kv: kv[1])


def _day(text: str, field_name: str, errors: dict[str, str]) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors[field_name] = "Ange datum som ÅÅÅÅ-MM-DD."
        return None


def _start(d: date | None) -> datetime | None:
    return datetime.combine(d, time(), STOCKHOLM) if d else None


def _end(d: date | None) -> datetime | None:
    return datetime.combine(d + timedelta(days=1), time(), STOCKHOLM) if d else None


@dataclass
class SearchIn:
    """Archive search (API)."""

    organisation_id: uuid.UUID | None = None
    """Whose archive (default: the user's first)."""
    types: list[str] = field(default_factory=lambda: list(ALL_KINDS))
    """advisory, report, decision, roster."""
    date_from: date | None = None
    """First day (Stockholm)."""
    date_to: date | None = None
    """Last day, inclusive."""
    personal_identity_number: str = ""
    """Records about this person (optional)."""
    before: str | None = None
    """The cursor of the page to show (`next_cursor` of the previous answer); first page if
    none."""
    limit: int = PAGE_SIZE
    """Records per page, 1–200."""


@dataclass
class RecordRef:
    """One record to export."""

    type: str
    """advisory | report | decision | roster."""
    id: uuid.UUID
    """Its id."""


@dataclass
class ExportIn:
    """Records to export as one package."""

    records: list[RecordRef]
    """What goes in the package."""


async def _search(
    db: Db, vault: Vault, user: Principal, data: SearchIn
) -> tuple[uuid.UUID, Page[service.Hit]]:
    orgs = _orgs(user)
    org_id = data.organisation_id or orgs[0][0]
    if org_id not in dict(orgs):
        raise NotFound()
    kinds = [k for k in data.types if k in service.KINDS]
    if not kinds:
        raise InvalidInput(errors={"types": "Välj minst en handlingstyp."})
    if not 1 <= data.limit <= MAX_PAGE_SIZE:
        raise InvalidInput(errors={"limit": f"Ange 1–{MAX_PAGE_SIZE} handlingar per sida."})
    page = await service.search(
        db,
        vault,
        user,
        org_id=org_id,
        kinds=kinds,
        since=_start(data.date_from),
        until=_end(data.date_to),
        personnummer=data.personal_identity_number,
        before=data.before,
        size=data.limit,
    )
    return org_id, page


NOTHING_SELECTED = "Välj minst en handling att exportera."


async def _check_refs(
    db: Db, vault: Vault, user: Principal, refs: list[tuple[str, uuid.UUID]]
) -> None:
    if not refs:
        raise InvalidInput(errors={"records": NOTHING_SELECTED})
    for kind, rid in refs:
        await service.load(db, vault, user, kind, rid)  # NotFound (audited) when not theirs


def _roots(signing: Signing) -> list[Any]:
    return list(signing.trust_roots) if signing else []


def _stream(
    files: Files,
    sessions: Sessions,
    settings: Settings,
    signing: Signing,
    vault: Vault,
    user: Principal,
    refs: list[tuple[str, uuid.UUID]],
    archivist: str,
) -> Stream:
    roots = _roots(signing)
    records = export.load_records(
        sessions,
        vault,
        files,
        refs,
        trust_roots=roots,
        actor=user.actor(),
    )
    package = uuid.uuid4()
    body = export.stream_sip(
        records,
        files,
        label=f"Jourpost, {len(refs)} handlingar",
        archivist=export.archivist_for(settings, archivist),
        package_id=package,
    )
    return Stream(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="jourpost-sip-{package}.zip"'},
    )


class ArchivePages(Controller):
    """`/archive`: search, open with an integrity check, export."""

    path = "/archive"
    include_in_schema = False

    def _page(self, user: Principal, **context: Any) -> Template:
        status = context.pop("status", 200)
        context.setdefault("errors", {})
        context.setdefault("form", {})
        context.setdefault("page", None)
        return render(
            "archive/search.html",
            user,
            status_code=status,
            orgs=_orgs(user),
            kinds=service.KINDS,
            **context,
        )

    @get("/")
    async def form(self, user: CurrentUser) -> Template:
        return self._page(user, form={"types": list(ALL_KINDS)})

    @post("/search")
    async def search(
        self, request: Request[Any, Any, Any], db: Db, vault: Vault, user: CurrentUser
    ) -> Template:
        return await self._search_page(await request.form(), db, vault, user)

    async def _search_page(
        self, raw: Any, db: Db, vault: Vault, user: Principal, problem: dict[str, str] | None = None
    ) -> Template:
        """The search page for the submitted search, with `problem` shown (422) when given."""
        form: dict[str, Any] = {
            k: str(v) for k, v in raw.items() if k not in ("_csrf_token", "types")
        }
        form["types"] = [str(t) for t in raw.getall("types")] if "types" in raw else []
        errors: dict[str, str] = {}
        since = _day(form.get("date_from", ""), "date_from", errors)
        until = _day(form.get("date_to", ""), "date_to", errors)
        org: uuid.UUID | None = None
        try:
            org = (
                uuid.UUID(form.get("organisation_id", "")) if form.get("organisation_id") else None
            )
        except ValueError:
            errors["organisation_id"] = "Välj organisation."
        if errors:
            return self._page(user, form=form, errors=errors, status=422)
        search = SearchIn(
            org,
            form["types"],
            since,
            until,
            form.get("personal_identity_number", ""),
            before=form.get("before") or None,
        )
        try:
            _, page = await _search(db, vault, user, search)
        except BadCursor:
            raise  # 400: the page's own links never make one
        except InvalidInput as exc:
            return self._page(user, form=form, errors=exc.errors, status=422)
        hidden = [(k, form.get(k, "")) for k in SEARCH_FIELDS] + [
            ("types", t) for t in form["types"]
        ]
        if problem:
            return self._page(user, form=form, page=page, hidden=hidden, errors=problem, status=422)
        return self._page(user, form=form, page=page, hidden=hidden)

    async def _record_page(
        self,
        db: Db,
        files: Files,
        signing: Signing,
        vault: Vault,
        user: Principal,
        kind: str,
        record_id: uuid.UUID,
        **context: Any,
    ) -> Template:
        """The record page (opened, integrity-checked and audited on every showing), with its
        legal hold: in full with place/lift for the owner's archivists, a line for others."""
        rec, integrity = await service.open_record(
            db, vault, files, user, kind, record_id, trust_roots=_roots(signing)
        )
        return render(
            "archive/record.html",
            user,
            status_code=context.pop("status", 200),
            record=rec,
            integrity=integrity,
            kinds=service.KINDS,
            signing_time=service.signing_time,
            hold=await retention.record_hold(db, vault, kind, record_id),
            may_hold=rec.owner_org_id in service.archive_orgs(user),
            errors=context.pop("errors", {}),
            form=context.pop("form", {}),
            **context,
        )

    @get("/records/{kind:str}/{record_id:uuid}")
    async def record(
        self,
        db: Db,
        files: Files,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        kind: FromPath[str],
        record_id: FromPath[uuid.UUID],
        flash: FromQuery[str | None] = None,
    ) -> Template:
        return await self._record_page(
            db, files, signing, vault, user, kind, record_id, flash=HOLD_FLASH.get(flash or "")
        )

    @post("/records/{kind:str}/{record_id:uuid}/hold")
    async def hold(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        kind: FromPath[str],
        record_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """Place a legal hold from the record page: retention's one rule (the owner's archivist,
        a reason, not held already; the store's holds; `retention.hold` audited)."""
        _orgs(user)  # 403 for anyone but an archivist
        reason = str((await request.form()).get("reason", ""))
        try:
            await retention.place_hold(
                db,
                vault,
                files.store,
                actor_orgs=service.archive_orgs(user),
                actor=user.actor(),
                record_type=kind,
                record_id=record_id,
                reason=reason,
            )
        except InvalidInput as exc:
            return await self._record_page(
                db, files, signing, vault, user, kind, record_id,
                status=422, errors=exc.errors, form={"reason": reason},
            )  # fmt: skip
        return Redirect(f"/archive/records/{kind}/{record_id}?flash=held#sparr", status_code=303)

    @post("/records/{kind:str}/{record_id:uuid}/hold/lift")
    async def lift(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        vault: Vault,
        user: CurrentUser,
        kind: FromPath[str],
        record_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        """First post: a page asking to confirm; the confirming post lifts (as the retention
        page does)."""
        _orgs(user)
        allowed = service.archive_orgs(user)
        hold = await retention.liftable_hold(
            db, vault, actor_orgs=allowed, record_type=kind, record_id=record_id
        )
        page = f"/archive/records/{kind}/{record_id}"
        if (await request.form()).get("confirm") != "yes":
            return render(
                "retention/lift.html",
                user,
                hold=hold,
                label=service.KINDS.get(kind, kind),
                action=f"{page}/hold/lift",
                back=f"{page}#sparr",
            )
        await retention.lift_hold(
            db, files.store, actor_orgs=allowed, actor=user.actor(), hold_id=hold.id, now=utcnow()
        )
        return Redirect(f"{page}?flash=released#sparr", status_code=303)

    @get("/records/{kind:str}/{record_id:uuid}/files/{number:int}")
    async def download(
        self,
        db: Db,
        files: Files,
        vault: Vault,
        user: CurrentUser,
        kind: FromPath[str],
        record_id: FromPath[uuid.UUID],
        number: FromPath[int],
    ) -> Stream:
        f = await service.open_file(db, vault, user, kind, record_id, number)
        return stream_file(
            service.read_file(files, f),
            name=f.name,
            content_type=f.content_type,
            size=f.stored.size,
        )

    @post("/export", status_code=200)
    async def export_selected(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        sessions: Sessions,
        settings: Settings,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
    ) -> Stream | Template:
        raw = await request.form()
        if "ref" not in raw:  # nothing ticked: the results again, with the problem on the page
            return await self._search_page(raw, db, vault, user, {"records": NOTHING_SELECTED})
        refs: list[tuple[str, uuid.UUID]] = []
        for value in raw.getall("ref") if "ref" in raw else []:
            kind, _, rid = str(value).partition(":")
            try:
                refs.append((kind, uuid.UUID(rid)))
            except ValueError:
                raise NotFound() from None
        await _check_refs(db, vault, user, refs)
        return _stream(files, sessions, settings, signing, vault, user, refs, _orgs(user)[0][1])


class ArchiveApi(Controller):
    """JSON API for case and e-archive systems."""

    path = "/api/v1/archive"
    tags = ["Arkiv"]  # noqa: RUF012

    @post(
        "/search", summary="Sök i organisationens arkiv (personnummer i kroppen, aldrig i URL:en)"
    )
    async def search(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[SearchIn]
    ) -> dict[str, Any]:
        org_id, page = await _search(db, vault, user, data)
        return {
            "organisation_id": str(org_id),
            "total": page.total,
            "first": page.first,
            "next_cursor": page.next_cursor,
            "records": [
                {
                    "type": h.kind,
                    "id": str(h.id),
                    "title": h.title,
                    "date": h.date.isoformat(),
                    "status": h.status,
                }
                for h in page.rows
            ],
        }

    @get("/records/{kind:str}/{record_id:uuid}", summary="En handling med integritetskontroll")
    async def record(
        self,
        db: Db,
        files: Files,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        kind: FromPath[str],
        record_id: FromPath[uuid.UUID],
    ) -> dict[str, Any]:
        rec, integrity = await service.open_record(
            db, vault, files, user, kind, record_id, trust_roots=_roots(signing)
        )
        return {
            "type": rec.kind,
            "id": str(rec.id),
            "title": rec.title,
            "date": rec.date.isoformat(),
            "content": [{"label": k, "value": v} for k, v in rec.facts],
            "versions": [{"what": w, "at": t.isoformat(), "by": b} for w, t, b in rec.versions],
            "receipts": [{"what": w, "at": t.isoformat(), "by": b} for w, t, b in rec.receipts],
            "files": [
                {
                    "name": c.name,
                    "sha256": c.sha256,
                    "size": c.size,
                    "ok": c.ok,
                    "problem": c.problem,
                }
                for c in integrity.files
            ],
            "signature": integrity.signature,
            "integrity_ok": integrity.ok,
            "checked_at": utcnow().isoformat(),
        }

    @post(
        "/export",
        status_code=200,
        summary="Exportera handlingar som E-ARK SIP (FGS Paketstruktur 2.0), zip",
    )
    async def export(
        self,
        db: Db,
        files: Files,
        sessions: Sessions,
        settings: Settings,
        signing: Signing,
        vault: Vault,
        user: CurrentUser,
        data: JSONBody[ExportIn],
    ) -> Stream:
        refs = [(r.type, r.id) for r in data.records]
        await _check_refs(db, vault, user, refs)
        return _stream(files, sessions, settings, signing, vault, user, refs, _orgs(user)[0][1])
