"""Errors raised by the signing package.

Every error the package raises on purpose derives from `SigningError`, so a caller can catch
the whole family in one place (the portal maps them to HTTP problem details there)::

    SigningError
    ├── SignerKeyError            the CA key (file or PKCS#11 token) can't be loaded or used
    ├── CertificateIssueError     a signer certificate can't be issued (bad personnummer, ...)
    ├── TrustServiceUnavailable   the TSA or the OCSP responder did not answer usably;
    │                             nothing is returned: we never hand out a signature
    │                             without a trusted timestamp and revocation data
    ├── SigningFailed             pyHanko refused or failed to produce the signature
    ├── RenderError               HTML could not be rendered to PDF/A
    └── UnreadablePdf             the bytes given to verify/renew are not a readable PDF

Verification *results* (invalid, untrusted, modified) are not errors: `verify_pdf` returns a
report saying so. Only input that is not a PDF at all raises `UnreadablePdf`.
"""

from __future__ import annotations


class SigningError(Exception):
    """Base class of every error raised by `signing`."""


class SignerKeyError(SigningError):
    """The CA key could not be loaded or could not sign (wrong PIN, missing label, bad PEM)."""


class CertificateIssueError(SigningError):
    """A signer certificate could not be issued from the given identity data."""


class TrustServiceUnavailable(SigningError):
    """The timestamp authority or the OCSP responder could not be reached or answered badly."""


class SigningFailed(SigningError):
    """The PDF could not be signed for another reason (unexpected pyHanko failure)."""


class RenderError(SigningError):
    """WeasyPrint could not render the HTML to PDF/A."""


class UnreadablePdf(SigningError):
    """The input is not a PDF that can be parsed."""
