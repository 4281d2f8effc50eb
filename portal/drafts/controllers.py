"""`POST /drafts/{form_key}` (the page script saves a form), `POST /drafts/{form_key}/discard`.

Not in the API schema: these serve the portal's own pages (CSRF header or field required, as on
every unsafe request). The draft is the caller's own; there is no way to read another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, post
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect

from portal.db.base import utcnow
from portal.drafts import service
from portal.web.deps import CurrentUser, Db, Vault

RETURN_TO = {"report-new": "/reports/new", "advisory-new": "/advisories/new"}
"""Where a form lives, for the no-script "Släng utkastet" button."""


@dataclass
class DraftIn:
    """The form's fields as the page has them."""

    fields: dict[str, Any] = field(default_factory=dict)
    """Field name -> value, or a list of values for repeated names."""


class DraftController(Controller):
    """Save and throw away the caller's form drafts."""

    path = "/drafts"
    include_in_schema = False

    @post("/{form_key:str}", status_code=204)
    async def save(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        form_key: FromPath[str],
        data: JSONBody[DraftIn],
    ) -> None:
        await service.save(db, vault, user.user_id, form_key, data.fields, now=utcnow())

    @post("/{form_key:str}/discard", status_code=303)
    async def discard(self, db: Db, user: CurrentUser, form_key: FromPath[str]) -> Redirect:
        await service.discard(db, user.user_id, form_key)
        return Redirect(f"{RETURN_TO.get(form_key, '/')}?draft=discarded", status_code=303)
