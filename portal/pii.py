"""Personal data at rest in the database: blind index and field encryption.

Threat: a copy of the database (backup, replica, SQL injection) must not reveal who the records
are about. Personnummer are stored as an HMAC blind index (for exact lookup) plus an AES-256-GCM
ciphertext (for display); names and free text only as ciphertext. The associated data binds each
value to its table, column and row, so a value copied into another row fails to decrypt. Keys
come from the settings keyring; the key id travels with the ciphertext so keys can rotate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from personnummer import personnummer as pnr_lib

_PREFIX = "v1"


class InvalidPersonnummer(ValueError):
    """The text is not a valid Swedish personal identity or coordination number."""


class DecryptionError(ValueError):
    """A field could not be decrypted: wrong key, wrong row, or tampered ciphertext."""


def field_context(column: Any, row_id: object) -> str:
    """The context a value of an encrypted column is bound to: "<table>.<column>:<row id>",
    the column named without its `_enc` suffix (`field_context(User.name_enc, user.id)` is
    "users.name:<id>").

    `column` is the mapped attribute (`User.name_enc`) or a table's column (`table.c.name_enc`),
    so a misspelt context is an AttributeError, not a value nobody can decrypt. Key rotation
    (portal.keys) re-encrypts every `*_enc` column by this rule.
    """
    col = getattr(column, "expression", column)
    return f"{col.table.name}.{col.name.removesuffix('_enc')}:{row_id}"


def invalid_personnummer(alternative: str = "") -> str:
    """The field error (Swedish) for a number `normalise_personnummer` refused.

    `alternative`: what else the person can do, e.g. "eller sök på namn".
    """
    hint = f", {alternative}" if alternative else ""
    return f"Ange ett giltigt person- eller samordningsnummer, t.ex. 20110305-9893{hint}."


def normalise_personnummer(text: str) -> str:
    """Validate and return the 12-digit form (YYYYMMDDNNNN); coordination numbers accepted."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > 20:
        raise InvalidPersonnummer("empty or too long")
    try:
        parsed = pnr_lib.Personnummer(cleaned)
    except pnr_lib.PersonnummerException as exc:
        raise InvalidPersonnummer("not a valid personnummer") from exc
    long_form = str(parsed.format(True))
    if len(long_form) != 12 or not long_form.isdigit():
        raise InvalidPersonnummer("not a valid personnummer")
    return long_form


class Vault:
    """Blind index and authenticated encryption of database fields."""

    def __init__(self, keks: Mapping[str, bytes], current: str, index_key: bytes) -> None:
        self._keys = {kid: AESGCM(key) for kid, key in keks.items()}
        self._current = current
        self._index_key = index_key

    def index(self, personnummer12: str) -> str:
        """The blind index of a normalised personnummer (hex HMAC-SHA256)."""
        return hmac.new(self._index_key, personnummer12.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt `plaintext` bound to `context` (e.g. "users.name:<row id>")."""
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_PREFIX}:{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, context: str) -> str:
        """Decrypt a value made by `encrypt` with the same context."""
        try:
            prefix, kid, body = token.split(":", 2)
            raw = base64.b64decode(body)
            if prefix != _PREFIX or kid not in self._keys:
                raise DecryptionError("unknown format or key id")
            return self._keys[kid].decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (ValueError, InvalidTag) as exc:
            raise DecryptionError("field could not be decrypted") from exc

    def needs_rewrap(self, token: str) -> bool:
        """True when the value is encrypted under an older key than the current one."""
        return not token.startswith(f"{_PREFIX}:{self._current}:")
