"""Serve the development identity provider on a free loopback port (uvicorn in a thread).

It is mounted under `/dev-idp` in a small Litestar app, exactly as the portal mounts it, so the
tests also cover running below a path prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from litestar import Litestar
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send

from auth.devidp import DevIdpConfig, create_dev_idp
from tests.servers.portal import serve


def mounted(config: DevIdpConfig) -> Litestar:
    """An app serving the simulator below /dev-idp, the way the portal does."""
    idp = create_dev_idp(config)

    @asgi("/dev-idp", is_mount=True, copy_scope=True)
    async def dev_idp(scope: Scope, receive: Receive, send: Send) -> None:
        await idp(scope, receive, send)

    return Litestar(route_handlers=[dev_idp], openapi_config=None)


@contextmanager
def running_dev_idp(make_config: Callable[[str], DevIdpConfig]) -> Iterator[str]:
    """Serve the simulator; `make_config(issuer)` builds its configuration. Yields the issuer."""
    issuers: list[str] = []

    def factory(port: int) -> Litestar:
        issuer = f"http://127.0.0.1:{port}/dev-idp"
        issuers.append(issuer)
        return mounted(make_config(issuer))

    with serve(factory):
        yield issuers[0]
