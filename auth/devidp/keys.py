"""The simulator's signing key and subject secret, kept in one file so restarts keep them."""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import RSAKey


@dataclass(frozen=True, slots=True)
class DevIdpKeys:
    """Key material of one simulator instance."""

    signing_key: RSAKey
    """RS256 key for ID tokens and the simulated user signatures."""
    subject_secret: bytes
    """HMAC key deriving pseudonymous `sub` values from personnummer."""


def load_or_create_keys(path: str | os.PathLike[str]) -> DevIdpKeys:
    """Read the key file, or create it (mode 0600, written atomically) when it is missing."""
    file = Path(path)
    if file.exists():
        data = json.loads(file.read_text("utf-8"))
        key = RSAKey.import_key(data["signing_key"])
        if not key.is_private:
            raise ValueError(f"{file} holds no private key")
        return DevIdpKeys(key, base64.b64decode(data["subject_secret"]))
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    keys = DevIdpKeys(key, secrets.token_bytes(32))
    payload = {
        "signing_key": key.as_dict(private=True),
        "subject_secret": base64.b64encode(keys.subject_secret).decode("ascii"),
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".dev-idp-key-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp creates it 0600
            json.dump(payload, out)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return keys
