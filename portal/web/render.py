"""Render a page with what every page needs (the principal for the header)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType
from litestar.response import Template

from portal.principal import Principal
from portal.web.errors import RETRY_AFTER_SECONDS


def render(
    template: str, principal: Principal | None, *, status_code: int = 200, **context: Any
) -> Template:
    """A Swedish HTML page from `template` (a 503 page says when to try again)."""
    return Template(
        template_name=template,
        context={"principal": principal, **context},
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)} if status_code == 503 else None,
    )
