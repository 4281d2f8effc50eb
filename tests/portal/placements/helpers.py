"""Request bodies for the placement tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx


def placement(**overrides: Any) -> dict[str, Any]:
    """A valid placement request body (an LVU placement in a foster home)."""
    data: dict[str, Any] = {
        "personal_identity_number": "20110305-9893",
        "name": "Kalle Klient",
        "legal_section": "lvu-3",
        "place_kind": "familjehem",
        "place_name": "Familjehemmet Björk",
        "place_address": "Skogsvägen 3, Delsbo",
        "place_phone": "0653-100 00",
        "starts_on": (date.today() - timedelta(days=60)).isoformat(),
        "note": "Rymningsbenägen.",
    }
    data.update(overrides)
    return data


def register(client: httpx.Client, **overrides: Any) -> str:
    """Register a placement through the API; its id."""
    r = client.post("/api/v1/placements", json=placement(**overrides))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    return str(r.json()["id"])
