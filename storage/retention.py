"""Retention dates: what the backends accept and how they compare them."""

from datetime import UTC, datetime


def normalize_retain_until(retain_until: datetime | None) -> datetime | None:
    """Return the date in UTC; refuse naive datetimes and dates not in the future.

    A naive datetime would be read in the server's local zone and could shorten a legally
    required retention by hours; a past date is a caller bug (S3 refuses it too).
    """
    if retain_until is None:
        return None
    if retain_until.tzinfo is None or retain_until.utcoffset() is None:
        raise ValueError("retain_until must be timezone-aware")
    retain_until = retain_until.astimezone(UTC)
    if retain_until <= now():
        raise ValueError("retain_until must be in the future")
    return retain_until


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)
