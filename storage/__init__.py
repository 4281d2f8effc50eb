"""Object storage for Jourpost: the `ObjectStore` protocol, filesystem and S3 backends, and
envelope encryption (`EncryptedObjectStore`). A library: it never imports portal, auth or
signing. See docs/storage.md for the ciphertext format, threat model and retention semantics.
"""

from storage.encrypted import EncryptedObjectStore, StoredObject
from storage.errors import (
    BackendUnavailable,
    IntegrityError,
    InvalidKey,
    ObjectNotFound,
    RetentionError,
    StorageError,
    UnknownKek,
)
from storage.filesystem import FilesystemStore
from storage.keyring import Keyring
from storage.keys import validate_key
from storage.protocol import IncompleteUpload, ObjectStore
from storage.s3 import S3Store

__all__ = [
    "BackendUnavailable",
    "EncryptedObjectStore",
    "FilesystemStore",
    "IncompleteUpload",
    "IntegrityError",
    "InvalidKey",
    "Keyring",
    "ObjectNotFound",
    "ObjectStore",
    "RetentionError",
    "S3Store",
    "StorageError",
    "StoredObject",
    "UnknownKek",
    "validate_key",
]
