"""Validation of object keys, shared by every backend.

Threat: a key built from user input (a file name, a crafted id) that escapes the store's root
(`../`, an absolute path, a backslash on some tools, a NUL that truncates a C string) or hides in
logs (control characters). An allowlist is simpler to reason about than a denylist: keys are
`/`-separated segments of ASCII letters, digits, `.`, `_`, `-`, each starting with a letter or
digit (so never `.`, `..` or a hidden/temporary file name of the filesystem backend).
"""

import re

from storage.errors import InvalidKey

MAX_KEY_LENGTH = 512
"""Longest accepted key, in characters (well below S3's 1024 bytes and common PATH_MAX)."""

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is an allowed object key, else raise `InvalidKey`."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey("object key must be a non-empty string of at most 512 characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            # repr() so control characters in a rejected key can't forge log lines.
            raise InvalidKey(f"object key not allowed: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it is empty or a key prefix (a key, optionally ending in `/`)."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix
