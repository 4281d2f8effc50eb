"""The start page: what this person can do now, per role."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import FromQuery
from litestar.response import Template

from auth.roles import Role
from portal.assignments.content import KINDS as ASSIGNMENT_KINDS
from portal.db.base import utcnow
from portal.decisions.rules import KINDS
from portal.decisions.signing import pending_for
from portal.errors import AuditNote, NoAccess
from portal.home.night import age, is_jour, night
from portal.web.deps import Db, OptionalPrincipal, Settings, Vault, provide_autocommit_db
from portal.web.render import render

SIGNING_ROLES = (Role.CHAIR, Role.SUBSTITUTE)

# Reads, then at most one write: the night dashboard's audit append (one statement on
# PostgreSQL). Without a transaction block there: no BEGIN and COMMIT round trips
# (portal.web.deps.provide_autocommit_db; docs/night-shift.md).
_AUTOCOMMIT = {"db": Provide(provide_autocommit_db)}


class HomeController(Controller):
    """`/`: a landing page before login, the role start page after."""

    include_in_schema = False

    @get("/", dependencies=_AUTOCOMMIT)
    async def start(
        self,
        db: Db,
        principal: OptionalPrincipal,
        settings: Settings,
        vault: Vault,
        utloggad: FromQuery[str | None] = None,
    ) -> Template:
        if principal is None:
            return render(
                "home/landing.html",
                None,
                demo=settings.dev_idp_enabled,
                flash="Du är utloggad." if utloggad else None,
            )
        if not principal.memberships:
            raise NoAccess(audit=AuditNote("access.no_role", "denied"))
        # Only a chair's or substitute's card lists what waits for their signature.
        signs = any(m.role in SIGNING_ROLES for m in principal.memberships)
        to_sign = await pending_for(db, principal) if signs else []
        dashboard = None
        if is_jour(principal):
            dashboard = await night(db, vault, principal, now=utcnow())
        return render(
            "home/start.html",
            principal,
            to_sign=[
                {"id": d.id, "act": KINDS[d.kind].act, "oral_decision_at": d.oral_decision_at}
                for d in to_sign
            ],
            night=dashboard,
            age=age,
            assignment_kinds=ASSIGNMENT_KINDS,
        )
