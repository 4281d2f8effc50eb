"""Personnummer normalisation and the claim-mapping presets."""

from __future__ import annotations

import pytest

from auth.claims import ClaimMapping, normalise_personal_identity_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("197803129829", "197803129829"),
        ("19780312-9829", "197803129829"),
        (" 197803129829 ", "197803129829"),
    ],
)
def test_valid_numbers_are_normalised_to_12_digits(value: str, expected: str) -> None:
    assert normalise_personal_identity_number(value) == expected


@pytest.mark.parametrize("value", ["197803129828", "7803129829", "780312-9829", "19780312982X", ""])
def test_invalid_or_ambiguous_numbers_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        normalise_personal_identity_number(value)


def test_presets_name_the_right_claims() -> None:
    assert ClaimMapping.preset("oidc-sweden").personal_identity_number == (
        "https://id.oidc.se/claim/personalIdentityNumber"
    )
    assert ClaimMapping.preset("idura").personal_identity_number == "ssn"
    assert ClaimMapping.preset("signicat").personal_identity_number == "nin"
    mapping = ClaimMapping.preset("signicat")
    assert mapping.personal_identity_number_from({"nin": "197803129829"}) == "197803129829"
    assert mapping.personal_identity_number_from({"ssn": "197803129829"}) is None
    with pytest.raises(ValueError):
        mapping.personal_identity_number_from({"nin": 197803129829})
