"""Times are stored in UTC and shown in Swedish format in Europe/Stockholm."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def format_local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`2026-11-23 22:15` in Stockholm time; empty for None."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(STOCKHOLM).strftime(fmt)


def parse_local(text: str) -> datetime:
    """Parse `YYYY-MM-DDTHH:MM` (an <input type=datetime-local>) as Stockholm time, to UTC."""
    naive = datetime.fromisoformat(text.strip())
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=STOCKHOLM).astimezone(UTC)
