"""HTML -> PDF/A-2b with WeasyPrint (fonts embedded, sRGB output intent, XMP pdfaid 2B).

The decision template belongs to the portal; this module only renders. WeasyPrint's first call
in a process costs about a second (font configuration, CSS parsing): call `warm_up()` at start-up.
What is checked here and in the tests: the PDF/A markers (XMP pdfaid part 2 / conformance B,
OutputIntent) and `qpdf --check`. Full PDF/A conformance (veraPDF) is not available here.

Threat model: the HTML carries case data written by users. The portal's templates escape it,
and as a second line this renderer loads no network resources (no SSRF from a stray URL) and
only files under the directory of a ``file:`` `base_url` (no ``/etc/...`` pulled into a
decision as an image or attachment).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from signing.errors import RenderError

_WARM_UP_HTML = "<html lang='sv'><body><p>Förberedelse – åäö ÅÄÖ</p></body></html>"


def _file_root(base_url: str | None) -> Path | None:
    """The directory file: resources must stay in, from a file: (or path) base URL."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("", "file"):
        return None
    path = Path(unquote(parts.path))
    return (path if base_url.endswith("/") or path.is_dir() else path.parent).resolve()


def _fetcher(base_url: str | None) -> Any:
    from weasyprint.urls import URLFetcher

    root = _file_root(base_url)

    class LocalOnlyFetcher(URLFetcher):  # type: ignore[misc]
        """data: always; file: only inside `root`; nothing else (fails the rendering)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            parts = urlsplit(url)
            if parts.scheme == "file":
                target = Path(unquote(parts.path)).resolve()
                if root is None or not target.is_relative_to(root):
                    raise ValueError(f"file outside the document directory: {url}")
            return super().fetch(url, headers)

    return LocalOnlyFetcher(allowed_protocols={"data", "file"}, fail_on_errors=True)


def render_pdfa(html: str, *, base_url: str | None = None) -> bytes:
    """Render `html` to PDF/A-2b bytes. `base_url` (a directory) resolves relative resources.

    Loads data: resources and files under `base_url`'s directory; any other URL fails the
    rendering (`RenderError`) rather than silently producing a document without it.
    """
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    try:
        document = HTML(string=html, base_url=base_url, url_fetcher=_fetcher(base_url))
        pdf = document.write_pdf(pdf_variant="pdf/a-2b")
    # FatalURLFetchingError is a BaseException in WeasyPrint 70; the rest raise many kinds.
    except (Exception, FatalURLFetchingError) as exc:
        raise RenderError(f"cannot render the document: {exc}") from exc
    if not isinstance(pdf, bytes):
        raise RenderError("WeasyPrint returned no PDF")
    return pdf


@functools.cache
def warm_up() -> None:
    """Render a tiny document once, so the first real render is fast."""
    render_pdfa(_WARM_UP_HTML)
