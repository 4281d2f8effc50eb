"""Where each provider puts the identity claims Jourpost needs, and personnummer normalisation.

Claim names differ between Swedish identity brokers (DESIGN.md §5); which one is used is
configuration, not code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from personnummer import personnummer

PNR_CLAIM_OIDC_SWEDEN = "https://id.oidc.se/claim/personalIdentityNumber"
"""The oidc-sweden claim holding the 12-digit personal identity number."""
PNR_SCOPE_OIDC_SWEDEN = "https://id.oidc.se/scope/naturalPersonNumber"
"""The oidc-sweden scope that releases the personal identity number."""
USER_SIGNATURE_CLAIM = "https://id.oidc.se/claim/userSignature"
"""The oidc-sweden claim carrying the result of a signature (ID token only)."""

Profile = Literal["oidc-sweden", "idura", "signicat"]


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Names of the claims (and the scope) that carry identity data at one provider."""

    personal_identity_number: str = PNR_CLAIM_OIDC_SWEDEN
    """Claim holding the personnummer."""
    scope: str | None = PNR_SCOPE_OIDC_SWEDEN
    """Scope that releases the personnummer claim (None: released without a scope)."""
    given_name: str = "given_name"
    """Claim holding the given name."""
    family_name: str = "family_name"
    """Claim holding the family name."""
    name: str = "name"
    """Claim holding the full name."""

    @classmethod
    def preset(cls, profile: Profile) -> ClaimMapping:
        """The mapping of a known provider family."""
        if profile == "oidc-sweden":
            return cls()
        if profile == "idura":
            return cls(personal_identity_number="ssn", scope="ssn")
        if profile == "signicat":
            return cls(personal_identity_number="nin", scope="nin")
        raise ValueError(f"unknown claim profile {profile!r}")

    def personal_identity_number_from(self, claims: Mapping[str, Any]) -> str | None:
        """The normalised personnummer in `claims`; None when absent.

        Raises ValueError when the claim is present but not a valid personnummer.
        """
        value = claims.get(self.personal_identity_number)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError("personnummer claim is not a string")
        return normalise_personal_identity_number(value)


def normalise_personal_identity_number(value: str) -> str:
    """The 12-digit form (YYYYMMDDNNNN) of a valid personnummer or samordningsnummer.

    Accepts the forms providers send (12 digits, with or without a hyphen). Only 12-digit input
    is accepted: a 10-digit number needs a guess of the century, and that guess is not ours.
    Raises ValueError for anything else.
    """
    digits = value.strip().replace("-", "")
    if len(digits) != 12 or not digits.isdigit():
        raise ValueError("not a 12-digit personnummer")
    try:
        if not personnummer.valid(digits):
            raise ValueError("personnummer check digit or date is invalid")
    except personnummer.PersonnummerException as exc:
        raise ValueError("personnummer could not be parsed") from exc
    return digits
