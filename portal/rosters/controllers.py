"""Roster pages and API: thin handlers over portal.rosters.service."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Template

from auth.roles import Permission
from portal.errors import InvalidInput, NotFound
from portal.rosters import service
from portal.rosters.schemas import FUNCTIONS, EntryIn, OnCallOut, RosterIn, RosterVersionOut
from portal.timefmt import format_local, parse_local
from portal.web.deps import CurrentUser, Db, Vault
from portal.web.render import render

ROWS = 6


def _rows_from_form(
    form: dict[str, Any],
) -> tuple[list[EntryIn], dict[str, str], list[dict[str, str]]]:
    """Parse the table form; return entries, field errors and the raw rows to redisplay."""
    entries: list[EntryIn] = []
    errors: dict[str, str] = {}
    raw_rows: list[dict[str, str]] = []
    for i in range(ROWS):
        row = {
            k: str(form.get(f"entries-{i}-{k}", "")).strip()
            for k in ("user_id", "function", "valid_from", "valid_to", "phone", "position")
        }
        raw_rows.append(row)
        if not row["user_id"]:
            continue
        try:
            entries.append(
                EntryIn(
                    user_id=uuid.UUID(row["user_id"]),
                    function=row["function"],
                    valid_from=parse_local(row["valid_from"]),
                    valid_to=parse_local(row["valid_to"]),
                    phone=row["phone"],
                    position=int(row["position"] or "1"),
                )
            )
        except ValueError:
            errors[f"entries-{i}-valid_from"] = (
                f"Rad {i + 1}: ange start, slut och ordning korrekt."
            )
    return entries, errors, raw_rows


class RosterPages(Controller):
    """Swedish pages: the jour's on-call view, a municipality's versions, the new-version form."""

    path = "/rosters"
    include_in_schema = False

    @get("/on-call")
    async def on_call(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        rows = await service.on_call_now(db, vault, user)
        return render("rosters/on_call.html", user, rows=rows, functions=FUNCTIONS)

    @get("/municipalities/{municipality_id:uuid}")
    async def versions(
        self, db: Db, vault: Vault, user: CurrentUser, municipality_id: FromPath[uuid.UUID]
    ) -> Template:
        versions = await service.list_versions(db, vault, user, municipality_id)
        visible = await service.visible_municipalities(db, user)
        return render(
            "rosters/versions.html",
            user,
            versions=versions,
            municipality=visible[municipality_id],
            municipality_id=municipality_id,
            can_keep=municipality_id in user.orgs_with(Permission.KEEP_ROSTER),
            functions=FUNCTIONS,
        )

    async def _form(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        municipality_id: FromPath[uuid.UUID],
        rows: list[dict[str, str]],
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        if municipality_id not in user.orgs_with(Permission.KEEP_ROSTER):
            raise NotFound()
        visible = await service.visible_municipalities(db, user)
        people = await service.candidates(db, vault, municipality_id)
        return render(
            "rosters/form.html",
            user,
            status_code=status,
            municipality=visible[municipality_id],
            municipality_id=municipality_id,
            people=people,
            rows=rows,
            errors=errors,
            functions=FUNCTIONS,
        )

    @get("/municipalities/{municipality_id:uuid}/new")
    async def new(
        self, db: Db, vault: Vault, user: CurrentUser, municipality_id: FromPath[uuid.UUID]
    ) -> Template:
        rows: list[dict[str, str]] = []
        if municipality_id in user.orgs_with(Permission.KEEP_ROSTER):
            versions = await service.list_versions(db, vault, user, municipality_id)
            if versions:
                rows = [
                    {
                        "user_id": str(e.user_id),
                        "function": e.function,
                        "valid_from": format_local(e.valid_from, "%Y-%m-%dT%H:%M"),
                        "valid_to": format_local(e.valid_to, "%Y-%m-%dT%H:%M"),
                        "phone": e.phone,
                        "position": str(e.position),
                    }
                    for e in versions[0].entries
                ]
        rows += [{} for _ in range(ROWS - len(rows))]
        return await self._form(db, vault, user, municipality_id, rows[:ROWS], {})

    @post("/municipalities/{municipality_id:uuid}")
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        vault: Vault,
        user: CurrentUser,
        municipality_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        form = dict(await request.form())
        entries, errors, raw = _rows_from_form(form)
        if not errors:
            try:
                vid = await service.create_version(
                    db, vault, user, RosterIn(municipality_id, entries)
                )
            except InvalidInput as exc:
                errors = exc.errors
            else:
                return Redirect(f"/rosters/versions/{vid}", status_code=303)
        return await self._form(db, vault, user, municipality_id, raw, errors, status=422)

    @get("/versions/{version_id:uuid}")
    async def version(
        self, db: Db, vault: Vault, user: CurrentUser, version_id: FromPath[uuid.UUID]
    ) -> Template:
        v = await service.get_version(db, vault, user, version_id)
        jours = user.orgs_with(Permission.READ_ROSTERS)
        return render(
            "rosters/version.html",
            user,
            v=v,
            functions=FUNCTIONS,
            can_ack=bool(jours) and not any(a.jour_id in jours for a in v.acknowledgements),
        )

    @post("/versions/{version_id:uuid}/ack")
    async def ack(self, db: Db, user: CurrentUser, version_id: FromPath[uuid.UUID]) -> Redirect:
        await service.acknowledge(db, user, version_id)
        return Redirect(f"/rosters/versions/{version_id}", status_code=303)


class RosterApi(Controller):
    """JSON API for case systems: read and post rosters, acknowledge versions."""

    path = "/api/v1/rosters"
    tags = ["ordförandejour"]  # noqa: RUF012

    @get("/on-call", summary="Vem jouren ringer nu, per kommun")
    async def on_call(self, db: Db, vault: Vault, user: CurrentUser) -> list[OnCallOut]:
        return await service.on_call_now(db, vault, user)

    @get("/municipalities/{municipality_id:uuid}/versions", summary="En kommuns listversioner")
    async def versions(
        self, db: Db, vault: Vault, user: CurrentUser, municipality_id: FromPath[uuid.UUID]
    ) -> list[RosterVersionOut]:
        return await service.list_versions(db, vault, user, municipality_id)

    @post("/", summary="Lägg in en ny version av kommunens lista", status_code=201)
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[RosterIn]
    ) -> RosterVersionOut:
        vid = await service.create_version(db, vault, user, data)
        return await service.get_version(db, vault, user, vid)

    @get("/versions/{version_id:uuid}", summary="En listversion")
    async def version(
        self, db: Db, vault: Vault, user: CurrentUser, version_id: FromPath[uuid.UUID]
    ) -> RosterVersionOut:
        return await service.get_version(db, vault, user, version_id)

    @post(
        "/versions/{version_id:uuid}/acknowledgements", summary="Jouren kvitterar", status_code=204
    )
    async def ack(self, db: Db, user: CurrentUser, version_id: FromPath[uuid.UUID]) -> None:
        await service.acknowledge(db, user, version_id)
