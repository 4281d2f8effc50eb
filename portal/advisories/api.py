"""`/api/v1/advisories`: the advisory flow for case systems (JSON; files as multipart)."""

from __future__ import annotations

import uuid
from typing import Literal

from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.response import Stream

from portal.advisories import access, queries, service
from portal.advisories.controllers import download_response
from portal.advisories.schemas import (
    AcknowledgeIn,
    AdvisoryIn,
    AdvisoryOut,
    AdvisorySummaryOut,
    AmendIn,
    AttachmentsCreatedOut,
    AttachmentsIn,
    CreatedOut,
    ReconfirmIn,
    WithdrawIn,
    detail_out,
    summary_out,
)
from portal.attachments.service import Upload
from portal.db.base import utcnow
from portal.web.deps import CurrentUser, Db, Files, Sessions, Vault
from portal.web.params import PositiveInt


class AdvisoryApi(Controller):
    """Advisories: list, create, read, amend, re-confirm, withdraw, acknowledge, files."""

    path = "/api/v1/advisories"
    tags = ["advisories"]  # noqa: RUF012

    @get("/", summary="List advisories")
    async def list_advisories(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        view: FromQuery[Literal["jour", "sent"] | None] = None,
    ) -> list[AdvisorySummaryOut]:
        """`view=jour`: active advisories to the jour; `view=sent`: the municipality's own.

        Default: `jour` for jour staff, `sent` otherwise. Other roles get 403.
        """
        vault, now = vault, utcnow()
        if view == "jour" or (view is None and access.is_jour_reader(user)):
            rows = await queries.list_for_jour(db, vault, user, now=now)
        else:
            rows = await queries.list_sent(db, vault, user, now=now)
        return [summary_out(r) for r in rows]

    @post("/", summary="Post an advisory")
    async def create(
        self, db: Db, vault: Vault, user: CurrentUser, data: JSONBody[AdvisoryIn]
    ) -> CreatedOut:
        """Post to the municipality's jour; attach files afterwards with POST .../attachments."""
        advisory_id = await service.create(
            db, vault, user, data, now=utcnow(),
            organisation_id=data.organisation_id,
        )  # fmt: skip
        return CreatedOut(advisory_id, 1)

    @get("/{advisory_id:uuid}", summary="Read an advisory")
    async def read(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID]
    ) -> AdvisoryOut:
        """The current version with history, acknowledgements and files (audited)."""
        d = await queries.get(db, vault, user, advisory_id, now=utcnow())
        return detail_out(d)

    @get("/{advisory_id:uuid}/versions/{number:int}", summary="Read an earlier version")
    async def read_version(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        number: PositiveInt,
    ) -> AdvisoryOut:
        """One version of the history (audited)."""
        return detail_out(
            await queries.get(db, vault, user, advisory_id, now=utcnow(), version=number)
        )

    @put("/{advisory_id:uuid}", summary="Amend an advisory")
    async def amend(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[AmendIn],
    ) -> CreatedOut:  # fmt: skip
        """New version with the full new content; 409 if `base_version` is not the current one."""
        number = await service.amend(
            db, vault, user, advisory_id, data,
            base_version=data.base_version, now=utcnow(),
        )  # fmt: skip
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/reconfirm", summary="Re-confirm an advisory")
    async def reconfirm(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[ReconfirmIn],
    ) -> CreatedOut:  # fmt: skip
        """New version with unchanged content and a new expiry (default 14 days ahead)."""
        number = await service.reconfirm(
            db, vault, user, advisory_id, base_version=data.base_version,
            now=utcnow(), valid_until=data.valid_until,
        )  # fmt: skip
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/withdraw", summary="Withdraw an advisory", status_code=204)
    async def withdraw(
        self, db: Db, vault: Vault, user: CurrentUser, advisory_id: FromPath[uuid.UUID],
        data: JSONBody[WithdrawIn],
    ) -> None:  # fmt: skip
        """Withdraw with a reason; it leaves the jour's view."""
        await service.withdraw(
            db, vault, user, advisory_id, reason=data.reason,
            base_version=data.base_version, now=utcnow(),
        )  # fmt: skip

    @post("/{advisory_id:uuid}/acknowledge", summary="Acknowledge an advisory")
    async def acknowledge(
        self,
        db: Db,
        user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        data: JSONBody[AcknowledgeIn],
    ) -> CreatedOut:
        """The jour's receipt of the current version (idempotent)."""
        number = await service.acknowledge(
            db, user, advisory_id, version=data.version, now=utcnow()
        )
        return CreatedOut(advisory_id, number)

    @post("/{advisory_id:uuid}/attachments", summary="Attach files")
    async def attach(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        data: MultipartBody[AttachmentsIn],
    ) -> AttachmentsCreatedOut:  # fmt: skip
        """Multipart field `attachments` (one or more PDF, PNG or JPEG; at most 20 MB each)."""
        uploads = [Upload(f.file, f.filename) for f in data.attachments]
        ids = await service.add_attachments(db, sessions, files, vault, user, advisory_id, uploads)
        return AttachmentsCreatedOut(ids)

    @get("/{advisory_id:uuid}/attachments/{attachment_id:uuid}", summary="Download a file")
    async def download(
        self, db: Db, files: Files, sessions: Sessions, vault: Vault, user: CurrentUser,
        advisory_id: FromPath[uuid.UUID],
        attachment_id: FromPath[uuid.UUID],
    ) -> Stream:  # fmt: skip
        """The decrypted file, streamed (audited)."""
        opened = await queries.open_attachment(
            db, sessions, files, vault, user, advisory_id, attachment_id
        )
        return download_response(opened)
