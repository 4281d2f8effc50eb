"""Request bodies are parsed in one place, and a body that can't be parsed is the client's error.

Litestar's parsers let a few malformed bodies escape as Python errors, which became 500s:
a JSON document nested 100,000 levels (RecursionError in msgspec), a multipart part without a
usable file name whose bytes are not UTF-8 (it is read as a text field: UnicodeDecodeError),
an unknown `charset` (LookupError), raw non-ASCII bytes in a url-encoded form. `PortalRequest`
parses inside a guard that turns exactly those errors — raised while parsing the request, never
later by our own code — into 400 problem details / a Swedish page. It also enforces the limits
that keep parsing cheap: 2 MB for a JSON or url-encoded body (413), JSON nesting depth and the
number of url-encoded form fields (the number of multipart parts is Litestar's
`multipart_form_part_limit`, the whole body `request_max_body_size`, both set in create_app).

`parse_body_first` runs before every handler and parses the body through `PortalRequest`, so the
bodies Litestar's own extractors read (JSONBody, URLEncodedBody, MultipartBody) are guarded too:
they reuse what was parsed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Request
from litestar.datastructures import FormMultiDict
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, SerializationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects accepted in a JSON body (our schemas need 4)."""
MAX_FORM_FIELDS = 500
"""Most fields accepted in a url-encoded form (the largest form has about 40)."""
MAX_FORM_PARTS = 200
"""Most parts accepted in a multipart form (fields and files together)."""
MAX_TEXT_BODY = 2 * 1024 * 1024
"""Largest JSON or url-encoded body (files come as multipart, up to request_max_body_size)."""

# Raised by the parsers (msgspec, multipart, the codecs) on input they can't read.
_PARSE_ERRORS = (RecursionError, UnicodeError, LookupError, SerializationException)


@contextmanager
def _unreadable_is_400(what: str) -> Iterator[None]:
    try:
        yield
    except _PARSE_ERRORS as exc:
        raise ClientException(f"{what} kunde inte läsas.") from exc


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether decoded JSON nests deeper than `limit` (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


class PortalRequest(Request[Any, Any, Any]):
    """Litestar's request with guarded body parsing and limits (see the module docstring)."""

    __slots__ = ("_depth_checked",)

    async def body(self) -> bytes:
        if (
            self.content_type[0] == RequestEncodingType.MULTI_PART
            and self._body is Empty
            and self._connection_state.body is Empty
            and self._connection_state.form is not Empty
        ):
            # The multipart body was streamed into the form (parse_body_first); a handler that
            # wants it again wants JSON ("stream consumed" was a 500): the client's mistake.
            raise ClientException("Innehållet måste vara JSON, inte ett formulär med filer.")
        return await super().body()

    async def json(self) -> Any:
        if len(await self.body()) > MAX_TEXT_BODY:
            raise RequestEntityTooLarge()
        with _unreadable_is_400("JSON-innehållet"):
            value = await super().json()
        if not getattr(self, "_depth_checked", False):
            if _depth_exceeds(value, MAX_JSON_DEPTH):
                raise ClientException(
                    f"JSON-innehållet är nästlat djupare än {MAX_JSON_DEPTH} nivåer."
                )
            self._depth_checked = True
        return value

    async def form(self) -> FormMultiDict:
        if self.content_type[0] == RequestEncodingType.URL_ENCODED:
            body = await self.body()
            if len(body) > MAX_TEXT_BODY:
                raise RequestEntityTooLarge()
            if body.count(b"&") >= MAX_FORM_FIELDS:
                raise ClientException(f"Formuläret har fler än {MAX_FORM_FIELDS} fält.")
        with _unreadable_is_400("Formuläret"):
            return await super().form()


async def parse_body_first(request: Request[Any, Any, Any]) -> None:
    """Before each handler: parse a JSON or form body once, through the guards above."""
    if not isinstance(request, PortalRequest) or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    kind = request.content_type[0]
    if kind in (RequestEncodingType.MULTI_PART, RequestEncodingType.URL_ENCODED):
        await request.form()
    elif kind == RequestEncodingType.JSON and await request.body():
        await request.json()
