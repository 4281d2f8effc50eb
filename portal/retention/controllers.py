"""`/retention`: the archivist's culling list (a dry run), the culling itself, and legal holds."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from portal import paging
from portal.archive.service import archive_orgs
from portal.db.base import utcnow
from portal.errors import DomainError, Forbidden, InvalidInput, NotFound
from portal.principal import Principal
from portal.retention import service
from portal.web.deps import CurrentUser, Db, Files, Sessions, Settings, Vault
from portal.web.render import render

FLASH = {
    "held": "Handlingen är spärrad för gallring.",
    "released": "Spärren är hävd.",
}


def _org(user: Principal, raw: str | None) -> tuple[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    allowed = archive_orgs(user)
    if not allowed:
        raise Forbidden("Gallring sköts av arkivarier och registratorer.")
    names = sorted(
        {m.org_id: m.org_name for m in user.memberships if m.org_id in allowed}.items(),
        key=lambda kv: kv[1],
    )
    if not raw:
        return names[0][0], names
    try:
        org = uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None
    if org not in allowed:
        raise NotFound()
    return org, names


def _type(raw: str | None, counts: dict[str, service.Counts]) -> str:
    """The record type whose list is shown: the one asked for, else the first with records whose
    time is up (else the first type)."""
    if raw:
        if raw not in service.TYPES:
            raise DomainError("Okänd handlingstyp. Välj en av flikarna på sidan.")
        return raw
    return next((t for t in service.TYPES if counts[t].due), service.TYPES[0])


class RetentionPages(Controller):
    """Culling list, run, holds."""

    path = "/retention"
    include_in_schema = False

    async def _page(
        self,
        db: Db,
        files: Files,
        settings: Settings,
        vault: Vault,
        user: Principal,
        org: uuid.UUID,
        orgs: list[tuple[uuid.UUID, str]],
        record_type: str | None = None,
        before: str | None = None,
        holds_before: str | None = None,
        **extra: Any,
    ) -> Template:
        rules = service.load_rules(settings.retention_rules or None)
        now = utcnow()
        counts = await service.plan_counts(db, rules, now=now, org_id=org)
        shown = _type(record_type, counts)
        cursor = paging.decode(before)
        rows, more = await service.plan_page(
            db,
            vault,
            files.store,
            rules,
            shown,
            now=now,
            org_id=org,
            after=cursor.key if cursor else None,
        )
        page = paging.page_of(
            rows, more=more, cursor=cursor, key=lambda c: c.key, total=counts[shown].due
        )
        holds_cursor = paging.decode(holds_before, "holds")
        holds = await service.hold_page(
            db, vault, org_id=org, actor=user.actor(org), cursor=holds_cursor
        )
        return render(
            "retention/retention.html",
            user,
            status_code=extra.pop("status", 200),
            page=page,
            counts=counts,
            cullable=sum(n.cullable for n in counts.values()),
            shown=shown,
            rules=rules,
            holds=holds,
            # Each list's pager keeps the other list's place.
            plan_query={"before": before} if cursor else {},
            holds_query={"holds": holds_before} if holds_cursor else {},
            org=org,
            orgs=orgs,
            labels=service.TYPE_LABELS,
            errors=extra.pop("errors", {}),
            form=extra.pop("form", {}),
            **extra,
        )

    @get("/")
    async def page(
        self,
        db: Db,
        files: Files,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        org: FromQuery[str | None] = None,
        flash: FromQuery[str | None] = None,
        type: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
        holds: FromQuery[str | None] = None,
    ) -> Template:
        org_id, orgs = _org(user, org)
        return await self._page(
            db,
            files,
            settings,
            vault,
            user,
            org_id,
            orgs,
            type,
            before,
            holds,
            flash=FLASH.get(flash or ""),
        )

    @post("/run")
    async def run(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        sessions: Sessions,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
    ) -> Template:
        form = await request.form()
        org_id, orgs = _org(user, str(form.get("org", "")))
        if form.get("confirm") != "on":
            return await self._page(
                db,
                files,
                settings,
                vault,
                user,
                org_id,
                orgs,
                status=422,
                errors={"confirm": "Bekräfta att du har gått igenom listan."},
            )
        rules = service.load_rules(settings.retention_rules or None)
        result = await service.cull(
            sessions,
            vault,
            files.store,
            rules,
            now=utcnow(),
            actor=user.actor(org_id),
            org_id=org_id,
        )
        return await self._page(db, files, settings, vault, user, org_id, orgs, result=result)

    @post("/holds")
    async def hold(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
    ) -> Template | Redirect:
        form = {k: str(v) for k, v in (await request.form()).items()}
        org_id, orgs = _org(user, form.get("org"))
        try:
            record_id = uuid.UUID(form.get("record_id", "").strip())
        except ValueError:
            return await self._page(
                db,
                files,
                settings,
                vault,
                user,
                org_id,
                orgs,
                status=422,
                form=form,
                errors={"record_id": "Ange handlingens id (finns på handlingens sida i arkivet)."},
            )
        try:
            await service.place_hold(
                db,
                vault,
                files.store,
                actor_orgs=archive_orgs(user),
                actor=user.actor(org_id),
                record_type=form.get("record_type", ""),
                record_id=record_id,
                reason=form.get("reason", ""),
            )
        except InvalidInput as exc:
            return await self._page(
                db,
                files,
                settings,
                vault,
                user,
                org_id,
                orgs,
                status=422,
                form=form,
                errors=exc.errors,
            )
        return Redirect(f"/retention?org={org_id}&flash=held", status_code=303)

    @post("/holds/{hold_id:uuid}/lift")
    async def lift(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        files: Files,
        vault: Vault,
        user: CurrentUser,
        hold_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        """First post: a page asking to confirm; the confirming post lifts."""
        _org(user, None)  # 403 for anyone but an archivist
        allowed = archive_orgs(user)
        hold = await service.active_hold(db, vault, actor_orgs=allowed, hold_id=hold_id)
        back = f"/retention?org={hold.organisation_id}"
        if (await request.form()).get("confirm") != "yes":
            return render(
                "retention/lift.html",
                user,
                hold=hold,
                label=service.TYPE_LABELS.get(hold.record_type, hold.record_type),
                action=f"/retention/holds/{hold_id}/lift",
                back=back,
            )
        await service.lift_hold(
            db,
            files.store,
            actor_orgs=allowed,
            actor=user.actor(),
            hold_id=hold_id,
            now=utcnow(),
        )
        return Redirect(f"{back}&flash=released", status_code=303)
