"""Checks on an uploaded file before it is stored: name, size and type by content.

Threats: a file that claims to be a PDF or an image but is something else (an .exe renamed .pdf,
an HTML page named .png that a browser might render), a damaged PDF that a reader at the jour
can't open at night, and a file name that smuggles a path (`../`, `\\`) or control characters
into a download header or a log. The type is decided by the content only: magic bytes, then a
structural check (PDF: header, `%%EOF` trailer and pyHanko's reader can open it; PNG: IHDR first
and IEND last; JPEG: SOI and EOI markers). The client's file name and content type are ignored.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from typing import IO
from urllib.parse import quote

from pyhanko.pdf_utils.reader import PdfFileReader

from portal.errors import InvalidInput

MAX_FILE_BYTES = 20 * 1024 * 1024
"""Largest accepted file (the portal's request limit is 25 MB, leaving room for the form)."""
MAX_NAME_LENGTH = 150
"""Longest accepted file name, in characters."""

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
EXTENSIONS = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg"}
"""Accepted content types and the extension a download gets."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A file that passed every check."""

    name: str
    """The display name (NFC, trimmed)."""
    content_type: str
    """application/pdf, image/png or image/jpeg, decided from the content."""
    size: int
    """Bytes."""


def check_name(raw: str | None, field: str) -> str:
    """The cleaned display name, or InvalidInput with a Swedish message for `field`."""
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        raise InvalidInput(errors={field: "Filen saknar namn."})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            errors={field: f"Filnamnet är för långt (högst {MAX_NAME_LENGTH} tecken)."}
        )
    if "/" in name or "\\" in name or ".." in name:
        raise InvalidInput(
            errors={field: "Filnamnet får inte innehålla /, \\ eller två punkter i rad."}
        )
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise InvalidInput(errors={field: "Filnamnet innehåller otillåtna tecken."})
    return name


def sniff(head: bytes) -> str | None:
    """The content type from the first bytes, or None for anything not accepted."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(_PNG_MAGIC):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    return None


def _pdf_opens(file: IO[bytes]) -> bool:
    file.seek(0)
    try:
        reader = PdfFileReader(file, strict=False)
        _ = reader.root  # the catalogue is resolved: xref and trailer are usable
        return True
    except Exception:
        return False


def _structure_ok(content_type: str, file: IO[bytes], size: int) -> bool:
    file.seek(max(0, size - 1024))
    tail = file.read()
    if content_type == PDF:
        return b"%%EOF" in tail and _pdf_opens(file)
    if content_type == PNG:
        file.seek(len(_PNG_MAGIC) + 4)
        return file.read(4) == b"IHDR" and tail.rstrip(b"\x00").endswith(_PNG_END.rstrip(b"\x00"))
    return tail.endswith(b"\xff\xd9")  # JPEG end-of-image marker


def check_file(file: IO[bytes], name: str | None, field: str) -> CheckedFile:
    """Check a seekable upload (blocking: run it in a thread). Raises InvalidInput for `field`."""
    clean_name = check_name(name, field)
    file.seek(0, io.SEEK_END)
    size = file.tell()
    if size == 0:
        raise InvalidInput(errors={field: "Filen är tom."})
    if size > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise InvalidInput(
            errors={field: f"Filen är för stor. Största tillåtna storlek är {limit} MB."}
        )
    file.seek(0)
    content_type = sniff(file.read(16))
    if content_type is None:
        raise InvalidInput(
            errors={
                field: "Filtypen stöds inte. Bifoga PDF, PNG eller JPEG (filens innehåll avgör)."
            }
        )
    if not _structure_ok(content_type, file, size):
        message = (
            "Filen är inte en giltig PDF."
            if content_type == PDF
            else "Bilden är skadad eller ofullständig."
        )
        raise InvalidInput(errors={field: message})
    file.seek(0)
    return CheckedFile(clean_name, content_type, size)


def download_names(name: str, content_type: str) -> tuple[str, str]:
    """(ASCII fallback, full UTF-8 name) for Content-Disposition, with the right extension."""
    ext = EXTENSIONS.get(content_type, "")
    full = name if not ext or name.lower().endswith(ext) else f"{name}{ext}"
    if content_type == JPEG and name.lower().endswith(".jpeg"):
        full = name
    ascii_name = unicodedata.normalize("NFKD", full).encode("ascii", "ignore").decode()
    ascii_name = "".join(c if c.isalnum() or c in "._- " else "_" for c in ascii_name).strip()
    return (ascii_name or f"bilaga{ext}"), full


def content_disposition(name: str, content_type: str, *, inline: bool = False) -> str:
    """`attachment` (or `inline`) with a safe ASCII filename and the RFC 5987 UTF-8 filename*."""
    ascii_name, full = download_names(name, content_type)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(full, safe='')}"
