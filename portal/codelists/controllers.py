"""GET /api/v1/codelists: every version of the code lists and the mappings between them."""

from __future__ import annotations

from litestar import Controller, get

from portal.codelists import service
from portal.codelists.schemas import CodeListsOut
from portal.web.deps import CurrentUser, Db


class CodeListApiController(Controller):
    """Read-only code lists for case systems and statistics (any logged-in user)."""

    path = "/api/v1/codelists"
    tags = ["Kodlistor"]  # noqa: RUF012

    @get("", summary="Kodlistor (kategori, åtgärd, karaktär, initiativtagare) per version")
    async def code_lists(self, db: Db, user: CurrentUser) -> CodeListsOut:
        return await service.overview(db)
