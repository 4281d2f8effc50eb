"""Download responses: one way for every file the portal hands out (attachments, signed and
rendered PDFs, archive files).

Each answer carries the content type, a Content-Disposition with a safe ASCII `filename` and
the full UTF-8 `filename*` (RFC 6266 / RFC 5987; see portal.attachments.files.download_names),
and the length when it is known. Stored files are streamed as they are decrypted and verified.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from litestar import Response
from litestar.response import Stream

from portal.attachments.files import content_disposition
from portal.attachments.service import OpenedFile


def stream_file(
    chunks: AsyncIterable[bytes], *, name: str, content_type: str, size: int | None = None
) -> Stream:
    """A streamed download that the browser saves rather than renders."""
    headers = {"Content-Disposition": content_disposition(name, content_type)}
    if size is not None:
        headers["Content-Length"] = str(size)
    return Stream(chunks, media_type=content_type, headers=headers)


def stream_opened(opened: OpenedFile) -> Stream:
    """An attachment opened by its feature's service (access checked and audited there)."""
    view = opened.view
    return stream_file(
        opened.chunks, name=view.name, content_type=view.content_type, size=view.size
    )


def send_bytes(
    body: bytes, *, name: str, content_type: str, inline: bool = False
) -> Response[bytes]:
    """A file made in memory (a rendered PDF): saved, or with `inline` shown by the browser."""
    return Response(
        body,
        media_type=content_type,
        headers={"Content-Disposition": content_disposition(name, content_type, inline=inline)},
    )
