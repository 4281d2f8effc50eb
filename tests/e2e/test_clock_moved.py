"""A decision signed in the real `jourpost demo` today is read by the archivist a day and five
years later: the demo is stopped and started again under libfaketime, so the whole server —
its sessions, the identity provider, OpenSSL and pyHanko — lives at the later time, and the
chair's 15-minute certificate has long expired. Logged in afresh at that time (the identity
provider's clock moved too), the archivist's record page, the JSON API, the verification page
and `jourpost verify` must all say: valid, trusted, B-LTA.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from portal.demo import demo_settings
from tests.portal.decisions.helpers import ANDERS, HANNA, JONNA, OLOF, draft_body, ids
from tests.portal.login import csrf_form, login, through_idp
from tests.servers.demo import running_demo
from tests.servers.net import free_port
from tests.signing.test_long_term import jourpost_verify

pytestmark = pytest.mark.slow


def _api_client(url: str, personnummer: str) -> httpx.Client:
    client, answer = login(url, personnummer)
    assert answer.status_code in (200, 302, 303), answer.text
    client.headers["X-CSRFToken"] = csrf_form(client)["_csrf_token"]
    return client


def _sign_a_decision_now(url: str, data: Path, port: int) -> str:
    settings = demo_settings(data, "127.0.0.1", port)
    known = ids(cast(Any, SimpleNamespace(settings=settings)))
    jonna = _api_client(url, JONNA)
    draft = jonna.post("/api/v1/decisions", json=draft_body(known))
    assert draft.status_code == 201, draft.text
    decision_id = str(draft.json()["id"])
    assert jonna.post(f"/api/v1/decisions/{decision_id}/submit").status_code == 200
    olof, _ = login(url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    done = through_idp(olof, start.headers["location"], OLOF)
    assert done.status_code in (302, 303), done.text
    return decision_id


def _everything_says_valid(url: str, decision_id: str, data: Path, offset: str) -> None:
    anders = _api_client(url, ANDERS)
    record = anders.get(f"/api/v1/archive/records/decision/{decision_id}")
    assert record.status_code == 200, record.text
    body = record.json()
    # The server really lives at the later time (and so did the checks it just made).
    days = int(offset.strip("+d"))
    lead = datetime.fromisoformat(body["checked_at"]) - datetime.now(UTC)
    assert timedelta(days=days) - timedelta(hours=1) < lead < timedelta(days=days, hours=1)
    assert body["integrity_ok"] is True, body
    [sig] = body["signature"]["signatures"]
    assert body["signature"]["valid"] and sig["trusted"] and sig["pades_level"] == "B-LTA"
    page = anders.get(f"/archive/records/decision/{decision_id}")
    assert page.status_code == 200 and "underkänd" not in page.text

    hanna = _api_client(url, HANNA)
    pdf = hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    checked = anders.post(
        "/verify",
        data=csrf_form(anders),
        files={"file": ("beslut.pdf", pdf.content, "application/pdf")},
    )
    assert "<strong>Giltig</strong>" in checked.text and "PAdES B-LTA" in checked.text

    path = data.parent / f"beslut{offset}.pdf"
    path.write_bytes(pdf.content)
    report = jourpost_verify(offset, path, data / "pki" / "root.pem")
    assert report["valid"] is True, report


def _exported_copy(url: str, decision_id: str) -> bytes:
    """The signed PDF as it lies in an e-archive package exported today."""
    anders, _ = login(url, ANDERS)
    package = anders.post(
        "/archive/export", data={"ref": f"decision:{decision_id}", **csrf_form(anders)}
    )
    assert package.status_code == 200, package.text[:300]
    with zipfile.ZipFile(io.BytesIO(package.content)) as z:
        [name] = [n for n in z.namelist() if re.search(r"/beslut-[0-9a-f-]+\.pdf$", n)]
        return z.read(name)


def test_signed_today_valid_a_day_and_five_years_later(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    port = free_port()
    with running_demo(data, port) as url:
        decision_id = _sign_a_decision_now(url, data, port)
        exported = tmp_path / "ur-paketet.pdf"
        exported.write_bytes(_exported_copy(url, decision_id))
    for offset in ("+1d", "+1826d"):
        with running_demo(data, port, faketime=offset) as url:
            _everything_says_valid(url, decision_id, data, offset)
        # The copy taken out of the package verifies on its own, years on.
        report = jourpost_verify(offset, exported, data / "pki" / "root.pem")
        assert report["valid"] is True, (offset, report)
