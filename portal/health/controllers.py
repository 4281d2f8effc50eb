"""Liveness and readiness probes for the load balancer and operators."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.response import Response

from portal.health.service import readiness
from portal.web.deps import Runtime
from portal.web.errors import RETRY_AFTER_SECONDS


class HealthController(Controller):
    """`/healthz`: the process answers (nothing else is touched, so a database outage never
    restarts instances). `/readyz`: 200 when the database answers at the schema this code needs
    ("degraded" in the body when the object store doesn't), 503 otherwise; within a few seconds
    whatever hangs (see portal.health.service).
    """

    include_in_schema = True
    tags = ["drift"]  # noqa: RUF012

    @get("/healthz", summary="Processen lever")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="Databas (rätt schemaversion) nås; objektlagringens läge")
    async def readyz(self, runtime: Runtime) -> Response[dict[str, Any]]:
        result = await readiness(runtime)
        return Response(
            {"status": result.status, "checks": result.checks()},
            status_code=200 if result.ready else 503,
            headers=None if result.ready else {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
