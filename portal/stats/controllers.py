"""Statistics pages (/stats), their CSV and XLSX exports, the cost allocation, and the API.

Period keys and organisation ids in the URL are not personal data. Each municipality (its chair
included) sees only its own figures; the jour sees all its members. Exports are audited.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromQuery, JSONBody
from litestar.response import Redirect, Template

from auth.roles import Role
from portal.audit import service as audit
from portal.db.base import utcnow
from portal.errors import Forbidden, InvalidInput, NotFound
from portal.principal import Principal
from portal.stats import costs, periods, present, service
from portal.stats.schemas import CostKeyIn, CostKeyOut
from portal.web.deps import CurrentUser, Db, Settings, Vault
from portal.web.render import render


def _org(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


def _period(raw: str | None, kind: str = "year") -> periods.Period:
    if not raw:
        return periods.of_kind(kind, utcnow())
    return periods.parse(raw)


async def _view(
    db: Db, settings: Settings, user: Principal, org: str | None, period: str | None
) -> tuple[service.Scope, list[service.Scope], periods.Period, present.View]:
    scope, allowed = await service.resolve_scope(db, user, _org(org))
    p = _period(period)
    stats = await service.compute(db, scope, p)
    threshold = settings.stats_suppress_below if scope.suppress else None
    return scope, allowed, p, present.view(stats, threshold)


def _scope_id(scope: service.Scope) -> uuid.UUID:
    return scope.municipality_id or scope.jour_id


def _choices(now: Any) -> list[periods.Period]:
    return (
        periods.recent("year", now, 3)
        + periods.recent("tertial", now, 6)
        + periods.recent("quarter", now, 8)
    )


def _filename(scope: service.Scope, p: periods.Period, ext: str) -> str:
    name = scope.name.lower().translate(str.maketrans("åäö ", "aao-"))
    return f"statistik-{name}-{p.key}.{ext}"


class StatsPages(Controller):
    """`/stats`: key figures, tables and charts for a municipality or the whole jour."""

    path = "/stats"
    include_in_schema = False

    @get("/")
    async def page(
        self,
        db: Db,
        settings: Settings,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
        org: FromQuery[str | None] = None,
    ) -> Template:
        try:
            scope, allowed, p, v = await _view(db, settings, user, org, period)
        except InvalidInput as exc:
            scope, allowed = await service.resolve_scope(db, user, _org(org))
            return render(
                "stats/stats.html",
                user,
                status_code=422,
                errors=exc.errors,
                view=None,
                scope=scope,
                scopes=allowed,
                choices=_choices(utcnow()),
                period_key=period or "",
                charts={},
                is_jour_head=_jour_head_org(user) is not None,
            )
        charts = {t.name: present.bar_chart(t) for t in v.tables}
        return render(
            "stats/stats.html",
            user,
            errors={},
            view=v,
            scope=scope,
            scope_id=str(_scope_id(scope)),
            scopes=allowed,
            choices=_choices(utcnow()),
            period_key=p.key,
            charts=charts,
            is_jour_head=_jour_head_org(user) is not None,
        )

    @get("/export.csv")
    async def export_csv(
        self,
        db: Db,
        settings: Settings,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
        org: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        scope, _, p, v = await _view(db, settings, user, org, period)
        await _audit_export(db, user, scope, p, "csv")
        return Response(
            present.to_csv(v).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_filename(scope, p, "csv")}"'},
        )

    @get("/export.xlsx")
    async def export_xlsx(
        self,
        db: Db,
        settings: Settings,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
        org: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        scope, _, p, v = await _view(db, settings, user, org, period)
        await _audit_export(db, user, scope, p, "xlsx")
        return Response(
            present.to_xlsx(v),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(scope, p, "xlsx")}"'
            },
        )


async def _audit_export(
    db: Db, user: Principal, scope: service.Scope, p: periods.Period, fmt: str
) -> None:
    await audit.record(
        db,
        "stats.export",
        actor=user.actor(_scope_id(scope)),
        owner_org_id=_scope_id(scope),
        object_type="statistics",
        object_id=p.key,
        details={"format": fmt, "suppressed": scope.suppress},
    )


def _jour_head_org(user: Principal) -> uuid.UUID | None:
    return next(
        (m.org_id for m in user.memberships if m.role == Role.JOUR_HEAD and m.org_kind == "jour"),
        None,
    )


def _jour(user: Principal) -> uuid.UUID:
    jour = _jour_head_org(user)
    if jour is None:
        raise Forbidden("Kostnadsfördelningen visas för socialjourens enhetschef.")
    return jour


async def _key(db: Db, vault: Vault, settings: Settings, jour: uuid.UUID) -> costs.Key:
    return await costs.key_for(db, vault, jour, costs.default_key(settings))


KEY_FLASH = {
    "locked": "Perioden är låst.",
    "key": "Fördelningsnyckeln är sparad. Låsta perioder behåller nyckeln de låstes med.",
}


class CostPages(Controller):
    """`/stats/costs`: the invoice basis per period for the jour's unit head; the jour's cost
    key; period lock."""

    path = "/stats/costs"
    include_in_schema = False

    async def _page(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: Principal,
        period: str | None,
        **context: Any,
    ) -> Template:
        jour = _jour(user)
        key = await _key(db, vault, settings, jour)
        errors: dict[str, str] = context.pop("errors", {})
        try:
            p = _period(period, key.period)
        except InvalidInput as exc:
            errors, p = {**errors, **exc.errors}, periods.of_kind(key.period, utcnow())
        b = await costs.basis(db, vault, jour, p, key=key, populations=service.populations())
        return render(
            "stats/costs.html",
            user,
            status_code=context.pop("status", 422 if errors else 200),
            errors=errors,
            basis=b,
            key=key,
            key_form=context.pop("key_form", None) or _key_form(key),
            kinds=periods.KINDS,
            closed=p.end <= utcnow(),
            choices=periods.recent(key.period, utcnow(), 6),
            **context,
        )

    @get("/")
    async def page(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
        flash: FromQuery[str | None] = None,
    ) -> Template:
        return await self._page(db, settings, vault, user, period, flash=KEY_FLASH.get(flash or ""))

    @post("/key")
    async def set_key(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
    ) -> Template | Redirect:
        jour = _jour(user)
        form = {k: str(v) for k, v in (await request.form()).items() if k != "_csrf_token"}
        period = form.get("period") or None
        try:
            new = costs.parse_key(
                form.get("population_percent", ""),
                form.get("annual_sek", ""),
                form.get("invoicing_period", ""),
            )
        except InvalidInput as exc:
            return await self._page(
                db, settings, vault, user, period, errors=exc.errors, status=422, key_form=form
            )
        await costs.set_key(
            db, vault, user, jour, new, default=costs.default_key(settings), now=utcnow()
        )
        after = f"period={period}&" if period else ""
        return Redirect(f"/stats/costs?{after}flash=key", status_code=303)

    @post("/lock")
    async def lock(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
    ) -> Redirect:
        jour = _jour(user)
        form = await request.form()
        p = periods.parse(str(form.get("period", "")))
        key = await _key(db, vault, settings, jour)
        await costs.lock(
            db, vault, user, jour, p, now=utcnow(), key=key, populations=service.populations()
        )
        return Redirect(f"/stats/costs?period={p.key}&flash=locked", status_code=303)

    @get("/export.csv")
    async def export_csv(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        jour = _jour(user)
        key = await _key(db, vault, settings, jour)
        p = _period(period, key.period)
        b = await costs.basis(db, vault, jour, p, key=key, populations=service.populations())
        await audit.record(
            db,
            "costs.export",
            actor=user.actor(jour),
            owner_org_id=jour,
            object_type="cost_period",
            object_id=p.key,
        )
        return Response(
            costs.to_csv(b).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="fakturaunderlag-{p.key}.csv"'},
        )


def _key_form(key: costs.Key) -> dict[str, str]:
    return {
        "population_percent": str(key.population_percent),
        "annual_sek": str(key.annual_sek),
        "invoicing_period": key.period,
    }


def _key_out(jour: uuid.UUID, key: costs.Key) -> CostKeyOut:
    return CostKeyOut(
        str(jour), key.population_percent, key.annual_sek, key.period, key.own, key.updated_at
    )


class CostKeyApi(Controller):
    """`/api/v1/stats/cost-key`: the unit head's jour's cost-allocation key."""

    path = "/api/v1/stats/cost-key"
    tags = ["Statistik"]  # noqa: RUF012

    @get("", summary="Jourens fördelningsnyckel för kostnaderna (egen eller standard)")
    async def read(self, db: Db, settings: Settings, vault: Vault, user: CurrentUser) -> CostKeyOut:
        jour = _jour(user)
        return _key_out(jour, await _key(db, vault, settings, jour))

    @put("", summary="Ändra jourens fördelningsnyckel (loggas med gamla och nya värden)")
    async def change(
        self,
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
        data: JSONBody[CostKeyIn],
    ) -> CostKeyOut:
        """The jour's unit head only; locked periods keep the key they were locked with."""
        jour = _jour(user)
        new = costs.parse_key(data.population_percent, data.annual_sek, data.invoicing_period)
        key = await costs.set_key(
            db, vault, user, jour, new, default=costs.default_key(settings), now=utcnow()
        )
        return _key_out(jour, key)


class StatsApi(Controller):
    """`/api/v1/stats`: the same figures as the page (suppressed for political audiences)."""

    path = "/api/v1/stats"
    tags = ["Statistik"]  # noqa: RUF012

    @get("", summary="Statistik för en kommun eller hela jouren och en period")
    async def stats(
        self,
        db: Db,
        settings: Settings,
        user: CurrentUser,
        period: FromQuery[str | None] = None,
        org: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        scope, _, p, v = await _view(db, settings, user, org, period)
        return {"organisation_id": str(_scope_id(scope)), "period": p.key, **asdict(v)}
