"""Liveness and readiness probes for the load balancer and operators."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.response import Response
from sqlalchemy import text

from portal.web.deps import portal_state


class HealthController(Controller):
    """`/healthz`: the process answers. `/readyz`: the database and the object store answer."""

    include_in_schema = True
    tags = ["drift"]  # noqa: RUF012

    @get("/healthz", summary="Processen lever")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="Databas och objektlagring nås")
    async def readyz(self, state: State) -> Response[dict[str, Any]]:
        ps = portal_state(state)
        checks: dict[str, str] = {}
        try:
            async with ps.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:  # any failure means not ready; the type is enough for operators
            checks["database"] = "unavailable"
        try:
            await ps.object_store_ping()
            checks["object_store"] = "ok"
        except Exception:
            checks["object_store"] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )
