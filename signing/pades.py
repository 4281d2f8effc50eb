"""PAdES signing (B-B ... B-LTA) and archival timestamp renewal, with pyHanko.

`sign_pdf` is what the portal calls when a chair signs a decision. At the default level, B-LTA,
the output carries, in this order of incremental updates:

1. the signature (CMS, ETSI.CAdES.detached) with a signature timestamp from the TSA (B-T);
2. a DSS with the certificates and the OCSP response/CRL for the chair's certificate (B-LT);
3. a document timestamp over all of it (B-LTA).

Failure policy: if the TSA or the OCSP responder can't be reached or answers badly,
`TrustServiceUnavailable` is raised and nothing is returned. A signature without a trusted
timestamp and revocation data is worthless a quarter of an hour later (the chair's certificate
expires), so we never hand one out.

Performance notes (see docs/signing.md): the chair's key is used as a parsed key object (no
per-signature PEM parse), one HTTPTimeStamper is shared by the signature and the document
timestamp, and the stamp font is rescaled/subset once per process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import aiohttp
from asn1crypto import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import constants as sign_constants
from pyhanko.sign.timestamps import HTTPTimeStamper, TimestampRequestError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathValidationError, ValidationError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.errors import SigningFailed, TrustServiceUnavailable, UnreadablePdf
from signing.pki import public_key_info_of

Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]

DEJAVU_SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
"""Stamp font (Debian fonts-dejavu-core)."""

STAMP_TIMEZONE = ZoneInfo("Europe/Stockholm")
"""Time zone of the time printed in the visible stamp."""

DEFAULT_STAMP_BOX = (56, 28, 539, 88)
"""Stamp rectangle (x1, y1, x2, y2) in points on the last page: the bottom margin of A4."""

_LATIN = [
    *range(0x20, 0x7F),
    *range(0xA0, 0x180),  # Latin-1 supplement and Latin Extended-A (å ä ö é ü ...)
    *range(0x2010, 0x2028),  # dashes, quotes, bullet, ellipsis
    0x20AC,
]


class _KeptKeySigner(signers.Signer):
    """A pyHanko Signer over an already-parsed private key.

    pyHanko's SimpleSigner takes a PrivateKeyInfo and re-parses it for every signature
    (tens of milliseconds for RSA); the chair's ephemeral key is already a key object.
    """

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        cert: x509.Certificate,
        chain: Sequence[x509.Certificate],
    ) -> None:
        self._key = key
        registry = SimpleCertificateStore.from_certs([cert, *chain])  # type: ignore[no-untyped-call]
        super().__init__(signing_cert=cert, cert_registry=registry)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        algorithm = getattr(hashes, digest_algorithm.upper())()
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(algorithm))
        return self._key.sign(data, padding.PKCS1v15(), algorithm)


class _PdfA2Signer(signers.PdfSigner):
    """A PdfSigner that keeps a PDF/A-2 (PDF 1.7) document at PDF 1.7.

    pyHanko registers the ISO/TS 32002 extension for ECDSA signatures, which raises the
    catalog's /Version to 2.0 — and PDF/A-2 is built on PDF 1.7 (ISO 32000-1). A PAdES
    signature in PDF 1.7 only needs the ESIC extension (ETSI EN 319 142-1 profiles ISO 32000-1
    and allows ECDSA through CAdES), so that is all we register.
    """

    def register_extensions(self, pdf_out: BasePdfFileWriter, *, md_algorithm: str) -> None:
        pdf_out.ensure_output_version(version=(1, 7))  # type: ignore[no-untyped-call]
        pdf_out.register_extension(sign_constants.ESIC_EXTENSION_1)


def _align_producer(writer: IncrementalPdfFileWriter) -> None:
    """Make the Info dictionary's /Producer equal the XMP pdf:Producer pyHanko writes.

    Every incremental update by pyHanko sets XMP pdf:Producer to "pyHanko <version>" but only
    appends "; pyHanko <version>" to Info /Producer, and PDF/A-2 (6.6.2.3) wants the two
    equivalent. Changed in the signature's own revision, so the frozen PDF the chair's
    signRequest names stays a byte-for-byte prefix of the signed file.
    """
    info_ref = writer.trailer.raw_get("/Info") if "/Info" in writer.trailer else None
    if not isinstance(info_ref, generic.IndirectObject):
        return
    info = info_ref.get_object()  # type: ignore[no-untyped-call]
    if info.get("/Producer") != VENDOR:
        info["/Producer"] = generic.TextStringObject(VENDOR)
        writer.mark_update(info_ref)


@functools.cache
def stamp_font_path() -> str:
    """DejaVu Sans rescaled to 1000 units/em and subset to Latin, prepared once per process.

    DejaVu has 2048 units/em; pyHanko's stamp assumes 1000, which doubles the letter spacing.
    Subsetting also makes each stamp ~100 ms cheaper. The file goes to a private temp directory
    (not a shared, guessable path another user could plant a font at).
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    font = TTFont(str(DEJAVU_SANS))
    scale_upem(font, 1000)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables = [*options.drop_tables, "FFTM"]  # FontForge timestamps; unsubsettable
    # A one-line Latin stamp needs no hinting or OpenType layout (ligatures, kerning); without
    # them pyHanko's per-signature subsetting of the stamp font is several times cheaper.
    options.hinting = False
    options.layout_features = []
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_LATIN)
    subsetter.subset(font)
    path = Path(tempfile.mkdtemp(prefix="jourpost-font-")) / "DejaVuSans-latin-1000.ttf"
    font.save(str(path))
    os.chmod(path, 0o444)
    return str(path)


def warm_up() -> None:
    """Prepare the stamp font now (call at start-up so the first signature isn't slow)."""
    stamp_font_path()


def _stamp_style(stamp_text: str) -> TextStampStyle:
    now = dt.datetime.now(STAMP_TIMEZONE).strftime("%Y-%m-%d %H:%M %Z")
    # pyHanko %-interpolates the stamp text: escape our text, then fill in the time ourselves.
    text = stamp_text.replace("%", "%%").replace("{time}", now)
    return TextStampStyle(
        stamp_text=text,
        text_box_style=TextBoxStyle(
            font=GlyphAccumulatorFactory(stamp_font_path()), font_size=9, leading=12
        ),
        border_width=1,
        background=None,
    )


def _validation_context(
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate],
    session: aiohttp.ClientSession | None,
    timeout: float,
) -> ValidationContext:
    backend = AIOHttpFetcherBackend(session=session, per_request_timeout=timeout)
    # hard-fail: a certificate that names an OCSP responder/CRL must get an answer from it.
    # retroactive_revinfo: the validation time is fixed when the context is created, and an
    # answer whose thisUpdate is later (slow step, responder clock ahead of ours) would
    # otherwise be refused as "too recent"; at signing time a newer answer is what we want.
    return ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=list(other_certs),
        allow_fetching=True,
        revocation_mode="hard-fail",
        retroactive_revinfo=True,
        fetcher_backend=backend,
    )


def _check_revinfo_embedded(signed: bytes) -> None:
    root = PdfFileReader(io.BytesIO(signed), strict=False).root
    dss = root["/DSS"].get_object() if "/DSS" in root else {}
    if not (dss.get("/OCSPs") or dss.get("/CRLs")):
        raise TrustServiceUnavailable("no revocation data could be obtained for the signer")


@contextlib.asynccontextmanager
async def _trust_service_errors(timestamp_url: str) -> AsyncIterator[None]:
    """Translate pyHanko/network failures into our errors."""
    try:
        yield
    except TimestampRequestError as exc:
        raise TrustServiceUnavailable(f"timestamp authority {timestamp_url}: {exc}") from exc
    except (PathValidationError, ValidationError) as exc:
        raise TrustServiceUnavailable(f"revocation data or certificate path: {exc}") from exc
    except PyHankoSigningError as exc:
        if isinstance(exc.__cause__, TimestampRequestError | ValidationError):
            raise TrustServiceUnavailable(f"{exc}: {exc.__cause__}") from exc
        raise SigningFailed(str(exc)) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TrustServiceUnavailable(f"trust service unreachable: {exc}") from exc


async def sign_pdf(
    pdf: bytes,
    *,
    signer_cert: x509.Certificate,
    signer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    chain: Sequence[x509.Certificate],
    timestamp_url: str,
    trust_roots: Sequence[x509.Certificate],
    field_name: str = "Ordforandebeslut",
    stamp_text: str | None = None,
    stamp_box: tuple[int, int, int, int] = DEFAULT_STAMP_BOX,
    reason: str | None = None,
    location: str | None = None,
    level: Level = "B-LTA",
    http_session: aiohttp.ClientSession | None = None,
    http_timeout: float = 10.0,
) -> bytes:
    """Sign `pdf` as PAdES at `level` (default B-LTA) and return the signed file.

    `chain` is the issuing CA chain (signing CA; the root may be included), `trust_roots` what
    the revocation data and timestamps must validate against. `stamp_text` makes the signature
    visible on the last page; ``{time}`` in it becomes the Swedish local time. `http_session`
    is used for TSA/OCSP/CRL requests (one per call when None); `http_timeout` bounds each.
    CPU work (a few hundred ms at B-LTA) runs on the calling event loop.
    """
    if signer_cert.public_key.dump() != public_key_info_of(signer_key.public_key()).dump():
        raise SigningFailed("the signer key does not belong to the signer certificate")
    wants_timestamp = level != "B-B"
    wants_revinfo = level in ("B-LT", "B-LTA")
    # Before the validation context (its validation time is fixed at creation): the first
    # stamp prepares the font, which takes a second.
    stamp_style = _stamp_style(stamp_text) if stamp_text else None
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        _align_producer(writer)
    except (PdfError, ValueError) as exc:
        raise UnreadablePdf(f"cannot read the PDF to sign: {exc}") from exc
    async with contextlib.AsyncExitStack() as stack:
        session = http_session or await stack.enter_async_context(aiohttp.ClientSession())
        meta = signers.PdfSignatureMetadata(
            field_name=field_name,
            reason=reason,
            location=location,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=wants_revinfo,
            use_pades_lta=level == "B-LTA",
            validation_context=(
                _validation_context(trust_roots, chain, session, http_timeout)
                if wants_revinfo
                else None
            ),
        )
        pdf_signer = _PdfA2Signer(
            meta,
            signer=_KeptKeySigner(signer_key, signer_cert, chain),
            # One instance for the signature and the document timestamp (TOOLING pitfall).
            timestamper=(
                HTTPTimeStamper(timestamp_url, timeout=http_timeout, session=session)
                if wants_timestamp
                else None
            ),
            stamp_style=stamp_style,
            new_field_spec=fields.SigFieldSpec(
                sig_field_name=field_name, on_page=-1, box=stamp_box if stamp_text else None
            ),
        )
        output = io.BytesIO()
        async with _trust_service_errors(timestamp_url):
            await pdf_signer.async_sign_pdf(writer, output=output)
    signed = output.getvalue()
    if wants_revinfo:
        _check_revinfo_embedded(signed)
    return signed


async def renew_archival_timestamp(
    pdf: bytes,
    *,
    timestamp_url: str,
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate] = (),
    http_session: aiohttp.ClientSession | None = None,
    http_timeout: float = 10.0,
) -> bytes:
    """Add revocation data for the last timestamp and a new document timestamp (PAdES-LTA).

    Run before the last document timestamp's TSA certificate (or its algorithms) expire; this
    is what `jourpost archive renew-timestamps` does for every stored signed decision.
    """
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    except (PdfError, ValueError) as exc:
        raise UnreadablePdf(f"cannot read the PDF: {exc}") from exc
    output = io.BytesIO()
    async with contextlib.AsyncExitStack() as stack:
        session = http_session or await stack.enter_async_context(aiohttp.ClientSession())
        timestamper = HTTPTimeStamper(timestamp_url, timeout=http_timeout, session=session)
        context = _validation_context(trust_roots, other_certs, session, http_timeout)
        async with _trust_service_errors(timestamp_url):
            await signers.PdfTimeStamper(timestamper).async_update_archival_timestamp_chain(
                reader, context, in_place=False, output=output
            )
    return output.getvalue()
