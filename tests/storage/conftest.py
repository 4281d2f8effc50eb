"""Fixtures: every `store` test runs on the filesystem backend and on a real SeaweedFS."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import EncryptedObjectStore, FilesystemStore, Keyring, ObjectStore
from tests.storage.helpers import s3_store


@pytest.fixture(params=["filesystem", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """The backend under test, empty."""
    if request.param == "filesystem":
        yield FilesystemStore(tmp_path / "store")
        return
    s3 = s3_store(request.getfixturevalue("seaweed"), tmp_path)
    await s3.ensure_bucket()
    yield s3


@pytest.fixture
def keyring() -> Keyring:
    """A keyring with one fresh KEK, "k1"."""
    return Keyring.from_base64({"k1": Keyring.generate_key()}, "k1")


@pytest.fixture
def encrypted(store: ObjectStore, keyring: Keyring) -> EncryptedObjectStore:
    """Envelope encryption over the backend under test."""
    return EncryptedObjectStore(store, keyring)
