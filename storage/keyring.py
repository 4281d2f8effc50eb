"""Key-encryption keys (KEKs) and the wrapping of per-object data keys.

Threat: a copy of the object store (a backup, a stolen disk, a curious S3 operator) must not
reveal documents. Content keys are random per object and stored only wrapped, in the portal's
database; the KEKs live in the portal's settings (environment / secret store), so an attacker
needs the store, the database and the settings together.

Wrapped key format (61 bytes): version 0x01 | 12-byte random nonce | AES-256-GCM(data key) with
associated data binding the KEK id and the object id, so a wrapped key copied onto another
object's row, or relabelled with another KEK id, fails to unwrap (`IntegrityError`).
Random nonces are safe here: one KEK wraps far fewer than 2**32 keys.
"""

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.errors import IntegrityError, UnknownKek

KEK_SIZE = 32
"""Bytes in a key-encryption key (AES-256)."""

_WRAP_VERSION = b"\x01"
_NONCE_SIZE = 12
_KEK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Keyring:
    """KEKs by id; `current_id` names the one that wraps new data keys."""

    def __init__(self, keys: Mapping[str, bytes], current_id: str) -> None:
        """`keys` maps KEK id -> 32 random bytes; fails fast on anything else."""
        for kek_id, key in keys.items():
            if not _KEK_ID.fullmatch(kek_id):
                raise ValueError(f"KEK id must match {_KEK_ID.pattern}: {kek_id!r}")
            if len(key) != KEK_SIZE:
                raise ValueError(f"KEK {kek_id!r} must be {KEK_SIZE} bytes, not {len(key)}")
        if current_id not in keys:
            raise ValueError(f"current KEK id {current_id!r} is not in the keyring")
        self._keys = {kek_id: AESGCM(bytes(key)) for kek_id, key in keys.items()}
        self._current_id = current_id

    @property
    def current_id(self) -> str:
        """Id of the KEK that wraps new data keys."""
        return self._current_id

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], current_id: str) -> "Keyring":
        """Build from base64-encoded keys, as settings carry them."""
        decoded = {}
        for kek_id, text in keys.items():
            try:
                decoded[kek_id] = base64.b64decode(text, validate=True)
            except binascii.Error:
                raise ValueError(f"KEK {kek_id!r} is not valid base64") from None
        return cls(decoded, current_id)

    @staticmethod
    def generate_key() -> str:
        """A new random KEK, base64-encoded (for `jourpost keys` and tests)."""
        return base64.b64encode(os.urandom(KEK_SIZE)).decode()

    @property
    def ids(self) -> frozenset[str]:
        """Ids of every KEK held."""
        return frozenset(self._keys)

    def __repr__(self) -> str:
        # Never the key bytes: keyrings end up in logs and tracebacks.
        return f"Keyring(current_id={self.current_id!r}, ids={sorted(self._keys)!r})"

    def wrap(self, object_id: str, data_key: bytes) -> tuple[str, bytes]:
        """Wrap `data_key` for `object_id` under the current KEK; return (kek_id, wrapped)."""
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._keys[self._current_id].encrypt(
            nonce, data_key, _associated_data(self.current_id, object_id)
        )
        return self.current_id, _WRAP_VERSION + nonce + sealed

    def unwrap(self, kek_id: str, object_id: str, wrapped: bytes) -> bytes:
        """Recover the data key; `UnknownKek` if the KEK is gone, `IntegrityError` if forged."""
        kek = self._keys.get(kek_id)
        if kek is None:
            raise UnknownKek(f"no KEK with id {kek_id!r} in the keyring")
        if wrapped[:1] != _WRAP_VERSION:
            raise IntegrityError("unknown wrapped key version")
        nonce, sealed = wrapped[1 : 1 + _NONCE_SIZE], wrapped[1 + _NONCE_SIZE :]
        try:
            return kek.decrypt(nonce, sealed, _associated_data(kek_id, object_id))
        except InvalidTag:
            raise IntegrityError("wrapped data key failed authentication") from None


def _associated_data(kek_id: str, object_id: str) -> bytes:
    kek = kek_id.encode()
    obj = object_id.encode()
    return b"jourpost/dek/v1" + len(kek).to_bytes(1, "big") + kek + obj
