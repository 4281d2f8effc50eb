"""Objects written before the streaming pipeline (issue 16) stay readable, byte for byte.

The fixtures were written by the storage code as it was on 4 Dec 2026 (format version 1, 1 MiB
segments): `v1-object.bin` is a whole filesystem-store object with its database row in
`v1-object.json`; `v1-small.bin` is a bare one-segment ciphertext. The pinned SHA-256 below is
that code's ciphertext of a deterministic three-segment plaintext under a fixed key: AES-GCM with
counter nonces is deterministic, so the current code must reproduce it exactly.
"""

import hashlib
import json
import random
import shutil
from pathlib import Path

from storage import EncryptedObjectStore, FilesystemStore, Keyring, StoredObject
from storage.errors import IntegrityError
from storage.segments import decrypt, encrypt
from tests.storage.helpers import MiB, chunks, collect, read_until_error

FIXTURES = Path(__file__).parent / "fixtures"
KEY = bytes(range(32))
MULTI = random.Random(16).randbytes(2 * MiB + 5)
MULTI_CIPHERTEXT_SHA256 = "95f39952e2e9562f363712082bb86b9b5f3be315e2bfd8897c98c5efac2f8fa2"


async def test_v1_object_read_through_the_store(tmp_path: Path) -> None:
    row = json.loads((FIXTURES / "v1-object.json").read_text())
    (tmp_path / "objects" / "attachments").mkdir(parents=True)
    shutil.copy(FIXTURES / "v1-object.bin", tmp_path / "objects" / "attachments" / "v1-fixture")
    keyring = Keyring.from_base64({"fixture": row.pop("kek_base64")}, "fixture")
    stored = StoredObject(**{**row, "wrapped_key": bytes.fromhex(row["wrapped_key"])})
    store = EncryptedObjectStore(FilesystemStore(tmp_path), keyring)
    plaintext = await collect(store.get(stored))
    assert plaintext == "Bilaga skriven av lagringskoden före issue 16 (format 1).\n".encode()


async def test_v1_small_ciphertext_decrypts_and_is_reproduced() -> None:
    ciphertext = (FIXTURES / "v1-small.bin").read_bytes()
    plaintext = b"Skrivet av formatet version 1 (november 2026).\n"
    oid = "attachments/old-format-small"
    assert await collect(decrypt(KEY, oid, chunks(ciphertext, 5))) == plaintext
    assert await collect(encrypt(KEY, oid, chunks(plaintext, 7))) == ciphertext
    _, error = await read_until_error(decrypt(KEY, "attachments/other", chunks(ciphertext)))
    assert isinstance(error, IntegrityError)


async def test_multi_segment_ciphertext_identical_to_v1() -> None:
    oid = "attachments/old-format"
    for piece in (65536, MiB, 3 * MiB):
        ciphertext = await collect(encrypt(KEY, oid, chunks(MULTI, piece)))
        assert hashlib.sha256(ciphertext).hexdigest() == MULTI_CIPHERTEXT_SHA256
    assert await collect(decrypt(KEY, oid, chunks(ciphertext, 100_000))) == MULTI
