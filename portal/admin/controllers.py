"""Admin pages: users and their roles."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from auth.roles import Role
from portal.admin import service
from portal.admin.schemas import EmailForm, GrantForm, NewUserForm, RevokeForm
from portal.errors import AuditNote, Forbidden, InvalidInput
from portal.principal import Principal
from portal.web.deps import CurrentUser, Db, Vault
from portal.web.render import render


def require_admin(user: CurrentUser) -> Principal:
    """Only the service's administrators; others are refused and the attempt audited."""
    if not user.has_role(Role.ADMIN):
        raise Forbidden(audit=AuditNote("admin.access", "denied"))
    return user


class AdminController(Controller):
    """`/admin/users`: add people by personnummer, grant and revoke roles."""

    path = "/admin"
    include_in_schema = False

    @get("/users")
    async def users(self, db: Db, vault: Vault, user: CurrentUser) -> Template:
        admin = require_admin(user)
        rows = await service.list_users(db, vault)
        return render("admin/users.html", admin, users=rows, form=NewUserForm(), errors={})

    @post("/users")
    async def add_user(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        data: URLEncodedBody[NewUserForm],
    ) -> Template | Redirect:
        admin = require_admin(user)
        try:
            new_id = await service.add_user(
                db,
                vault,
                admin.actor(),
                personnummer=data.personal_identity_number,
                name=data.name,
                email=data.email,
            )
        except InvalidInput as exc:
            rows = await service.list_users(db, vault)
            return render(
                "admin/users.html", admin, status_code=422, users=rows, form=data, errors=exc.errors
            )
        return Redirect(f"/admin/users/{new_id}", status_code=303)

    @get("/users/{user_id:uuid}")
    async def user_page(
        self, db: Db, vault: Vault, user: CurrentUser, user_id: FromPath[uuid.UUID]
    ) -> Template:
        admin = require_admin(user)
        return await self._user_page(db, vault, admin, user_id, GrantForm(), {}, 200)

    async def _user_page(
        self,
        db: Db,
        vault: Vault,
        user: Principal,
        user_id: FromPath[uuid.UUID],
        form: GrantForm,
        errors: dict[str, str],
        status: int,
    ) -> Template:
        row = await service.get_user(db, vault, user_id)
        orgs = await service.organisations(db)
        return render(
            "admin/user.html",
            user,
            status_code=status,
            row=row,
            orgs=orgs,
            roles=list(Role),
            form=form,
            errors=errors,
        )

    @post("/users/{user_id:uuid}/memberships")
    async def grant(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        user_id: FromPath[uuid.UUID],
        data: URLEncodedBody[GrantForm],
    ) -> Template | Redirect:
        admin = require_admin(user)
        try:
            await service.grant(
                db,
                admin.actor(),
                user_id=user_id,
                organisation_id=data.organisation_id,
                role=data.role,
                unit_id=data.unit_id,
            )
        except InvalidInput as exc:
            return await self._user_page(db, vault, admin, user_id, data, exc.errors, 422)
        return Redirect(f"/admin/users/{user_id}", status_code=303)

    @post("/users/{user_id:uuid}/email")
    async def set_email(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        user_id: FromPath[uuid.UUID],
        data: URLEncodedBody[EmailForm],
    ) -> Template | Redirect:
        admin = require_admin(user)
        try:
            await service.set_email(db, vault, admin.actor(), user_id, data.email)
        except InvalidInput as exc:
            return await self._user_page(db, vault, admin, user_id, GrantForm(), exc.errors, 422)
        return Redirect(f"/admin/users/{user_id}", status_code=303)

    @post("/memberships/{membership_id:uuid}/revoke")
    async def revoke(
        self,
        db: Db,
        vault: Vault,
        user: CurrentUser,
        membership_id: FromPath[uuid.UUID],
        data: URLEncodedBody[RevokeForm],
    ) -> Redirect | Template:
        """First post: a page asking to confirm; the confirming post revokes."""
        admin = require_admin(user)
        if data.confirm != "yes":
            m = await service.membership(db, membership_id)
            row = await service.get_user(db, vault, m.user_id)
            return render("admin/revoke.html", admin, m=m, row=row)
        user_id = await service.revoke(db, admin.actor(), membership_id)
        return Redirect(f"/admin/users/{user_id}", status_code=303)
