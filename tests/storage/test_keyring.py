"""Keyring construction from settings, and that key material never shows in a repr."""

import base64

import pytest

from storage import IntegrityError, Keyring, UnknownKek


def test_from_base64_and_repr_hides_keys() -> None:
    key = Keyring.generate_key()
    keyring = Keyring.from_base64({"2025-01": key, "2026-01": Keyring.generate_key()}, "2026-01")
    assert keyring.current_id == "2026-01"
    assert keyring.ids == {"2025-01", "2026-01"}
    assert key not in repr(keyring)
    assert repr(base64.b64decode(key)) not in repr(keyring)


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({"a": base64.b64encode(b"short").decode()}, "a", "32 bytes"),
        ({"a": "not base64!"}, "a", "base64"),
        ({"a": Keyring.generate_key()}, "b", "not in the keyring"),
        ({"a/b": Keyring.generate_key()}, "a/b", "KEK id"),
        ({}, "a", "not in the keyring"),
    ],
)
def test_invalid_settings_fail_fast(keys: dict[str, str], current: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Keyring.from_base64(keys, current)


def test_wrap_binds_object_and_kek_id() -> None:
    key = Keyring.generate_key()
    keyring = Keyring.from_base64({"a": key, "b": key}, "a")
    kek_id, wrapped = keyring.wrap("obj", b"k" * 32)
    assert keyring.unwrap(kek_id, "obj", wrapped) == b"k" * 32
    with pytest.raises(IntegrityError):
        keyring.unwrap(kek_id, "other", wrapped)
    with pytest.raises(IntegrityError):
        keyring.unwrap("b", "obj", wrapped)  # same key bytes, other id: still refused
    with pytest.raises(IntegrityError):
        keyring.unwrap(kek_id, "obj", b"\x02" + wrapped[1:])
    with pytest.raises(UnknownKek):
        keyring.unwrap("c", "obj", wrapped)
