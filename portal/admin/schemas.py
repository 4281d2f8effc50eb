"""Form inputs of the admin pages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NewUserForm:
    """Add a person who may log in."""

    personal_identity_number: str = ""
    """Personnummer, 10 or 12 digits, with or without separator."""
    name: str = ""
    """Name shown until the identity provider supplies it at first login."""
    email: str = ""
    """Optional address for notifications (signing requests); the mails carry no case content."""


@dataclass
class EmailForm:
    """Change a user's notification address."""

    email: str = ""
    """The address, or empty to remove it."""


@dataclass
class GrantForm:
    """Grant a role in an organisation (optionally one unit)."""

    organisation_id: str = ""
    """The organisation."""
    role: str = ""
    """A value of auth.roles.Role."""
    unit_id: str = ""
    """Optional unit within the organisation."""


@dataclass
class RevokeForm:
    """Removing a role: the first post asks, the second (confirm=yes) does it."""

    confirm: str = ""
    """"yes" once the administrator confirmed on the question page."""
