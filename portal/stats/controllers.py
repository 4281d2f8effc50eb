"""Statistics pages (/stats), their CSV and XLSX exports, the cost allocation, and the API.

Period keys and organisation ids in the URL are not personal data. Each municipality (its chair
included) sees only its own figures; the jour sees all its members. Exports are audited.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from auth.roles import Role
from portal.audit import service as audit
from portal.db.base import utcnow
from portal.errors import Forbidden, InvalidInput, NotFound
from portal.principal import Principal
from portal.stats import costs, periods, present, service
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


def _cost_args(s: Settings) -> dict[str, Any]:
    return {
        "population_percent": s.cost_population_percent,
        "annual_sek": s.cost_annual_sek,
        "populations": service.populations(),
    }


class CostPages(Controller):
    """`/stats/costs`: the invoice basis per period for the jour's unit head; period lock."""

    path = "/stats/costs"
    include_in_schema = False

    def _jour(self, user: Principal) -> uuid.UUID:
        jour = _jour_head_org(user)
        if jour is None:
            raise Forbidden("Kostnadsfördelningen visas för socialjourens enhetschef.")
        return jour

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
        jour = self._jour(user)
        kind = settings.cost_period
        errors: dict[str, str] = {}
        try:
            p = _period(period, kind)
        except InvalidInput as exc:
            errors, p = exc.errors, periods.of_kind(kind, utcnow())
        b = await costs.basis(db, vault, jour, p, **_cost_args(settings))
        return render(
            "stats/costs.html",
            user,
            status_code=422 if errors else 200,
            errors=errors,
            basis=b,
            closed=p.end <= utcnow(),
            choices=periods.recent(kind, utcnow(), 6),
            flash={"locked": "Perioden är låst."}.get(flash or ""),
        )

    @post("/lock")
    async def lock(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: Settings,
        vault: Vault,
        user: CurrentUser,
    ) -> Redirect:
        jour = self._jour(user)
        form = await request.form()
        p = periods.parse(str(form.get("period", "")))
        await costs.lock(db, vault, user, jour, p, now=utcnow(), **_cost_args(settings))
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
        jour = self._jour(user)
        p = _period(period, settings.cost_period)
        b = await costs.basis(db, vault, jour, p, **_cost_args(settings))
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
