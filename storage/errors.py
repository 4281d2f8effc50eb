"""Errors raised by the storage package.

Every error is a `StorageError`, so the portal can map the whole family in one place
(404 for `ObjectNotFound`, 409 for `RetentionError`, 503 for `BackendUnavailable`, ...):

    StorageError
    ├── ObjectNotFound      no object under that key
    ├── RetentionError      delete/overwrite refused: retain-until date not reached, or legal hold
    ├── IntegrityError      ciphertext or wrapped key failed authentication, or size/SHA-256 differ
    ├── InvalidKey          object key not allowed (traversal, control characters, ...)
    ├── UnknownKek          the keyring has no key-encryption key with the object's kek_id
    └── BackendUnavailable  the filesystem root or the S3 server can't be reached or used

Messages never contain object content or key material; they may contain the object key,
which the portal chooses to carry no personal data.
"""


class StorageError(Exception):
    """Base class of every storage error."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class RetentionError(StorageError):
    """The object is under retention or legal hold, so it can't be deleted or overwritten."""


class IntegrityError(StorageError):
    """Stored data failed authentication or does not match its recorded size or SHA-256."""


class InvalidKey(StorageError, ValueError):
    """The object key is not allowed."""


class UnknownKek(StorageError):
    """The keyring holds no key-encryption key with this id (removed too early?)."""


class BackendUnavailable(StorageError):
    """The backend can't be reached or used right now."""
