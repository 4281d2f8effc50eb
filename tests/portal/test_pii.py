"""Personnummer normalisation, blind index and field encryption."""

from __future__ import annotations

import pytest

from portal.pii import DecryptionError, InvalidPersonnummer, Vault, normalise_personnummer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("197803129829", "197803129829"),
        ("19780312-9829", "197803129829"),
        ("780312-9829", "197803129829"),
        ("7803129829", "197803129829"),
        (" 201103059893 ", "201103059893"),
        ("197803729826", "197803729826"),  # coordination number (day + 60)
    ],
)
def test_valid_numbers_normalise_to_twelve_digits(text: str, expected: str) -> None:
    assert normalise_personnummer(text) == expected


@pytest.mark.parametrize("text", ["", "197803129828", "19781332-9829", "abc", "1" * 30])
def test_invalid_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidPersonnummer):
        normalise_personnummer(text)


def make_vault(kid: str = "a", key: bytes = b"k" * 32) -> Vault:
    return Vault({kid: key}, kid, b"i" * 32)


def test_blind_index_is_stable_keyed_and_not_the_number() -> None:
    v = make_vault()
    assert v.index("197803129829") == v.index("197803129829")
    assert "197803129829" not in v.index("197803129829")
    other = Vault({"a": b"k" * 32}, "a", b"j" * 32)
    assert other.index("197803129829") != v.index("197803129829")


def test_encryption_round_trip_and_binding_to_context() -> None:
    v = make_vault()
    token = v.encrypt("Jonna Jourström", "users.name:1")
    assert "Jonna" not in token
    assert v.decrypt(token, "users.name:1") == "Jonna Jourström"
    with pytest.raises(DecryptionError):
        v.decrypt(token, "users.name:2")  # copied into another row


def test_tampered_or_unknown_key_ciphertext_is_refused() -> None:
    v = make_vault()
    token = v.encrypt("x", "c")
    body = token[-4:]
    tampered = token[:-4] + ("AAAA" if body != "AAAA" else "BBBB")
    with pytest.raises(DecryptionError):
        v.decrypt(tampered, "c")
    with pytest.raises(DecryptionError):
        make_vault("b").decrypt(token, "c")


def test_older_key_still_decrypts_and_is_flagged_for_rewrap() -> None:
    old = make_vault("a", b"a" * 32)
    token = old.encrypt("Olof Ordén", "c")
    rotated = Vault({"a": b"a" * 32, "b": b"b" * 32}, "b", b"i" * 32)
    assert rotated.decrypt(token, "c") == "Olof Ordén"
    assert rotated.needs_rewrap(token)
    assert not rotated.needs_rewrap(rotated.encrypt("x", "c"))


def test_a_fields_context_is_its_table_column_and_row() -> None:
    """One rule, the one key rotation uses: "<table>.<column without _enc>:<row id>"."""
    import uuid

    from portal.db import registry  # noqa: F401  (every table on Base.metadata)
    from portal.db.base import Base
    from portal.db.models import User
    from portal.pii import field_context

    row = uuid.uuid4()
    assert field_context(User.name_enc, row) == f"users.name:{row}"
    assert field_context(User.__table__.c.pnr_enc, row) == f"users.pnr:{row}"
    for table in Base.metadata.sorted_tables:
        for column in table.c:
            if column.name.endswith("_enc"):
                expected = f"{table.name}.{column.name[: -len('_enc')]}:{row}"
                assert field_context(column, row) == expected
