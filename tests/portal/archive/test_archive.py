"""The archivist: search, open with an integrity check, export as an E-ARK SIP (eark-validator).

Real portal over HTTP, real dev CA/TSA/OCSP for the signed decision, the filesystem object store
(the S3 path of the same file service is covered by tests/portal/test_s3_flows.py).
"""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.models import Attachment
from portal.decisions.models import Decision
from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import pdf_bytes
from tests.portal.archive.eark import validate_sip
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import draft_body, jour_client, roster_with_olof
from tests.portal.login import csrf_form, login, through_idp
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.sessions import client_as

HANNA, GUNILLA, OLOF, ANDERS = "196901159803", "196209219846", "197104309831", "198311099876"
BOY = "201103059893"


def _advisory(portal: RunningPortal, who: str, pnr: str) -> str:
    with closing(client_as(portal.url, portal.settings, who)) as c:
        from datetime import datetime, timedelta

        from portal.web.datetimes import STOCKHOLM

        r = c.post(
            "/advisories/new",
            data={
                "subjects-0-personal_identity_number": pnr,
                "subjects-0-name": "Kalle Klient",
                "plan": "Placerad hos morbror.",
                "alternative_plans": "Jourhem via IFO.",
                "instructions": "Bevilja inte akutboende.",
                "legal_basis": "sol",
                "contact_name": "Handläggare",
                "contact_phone": "070-000 00 00",
                "valid_until": (datetime.now(STOCKHOLM) + timedelta(days=10)).strftime(
                    "%Y-%m-%dT%H:%M"
                ),
                "_csrf_token": c.cookies["csrftoken"],
            },
            files={"attachments": ("Plan för Kalle.pdf", pdf_bytes("Plan"), "application/pdf")},
        )
        assert r.status_code == 303, r.text
        m = re.fullmatch(r"/advisories/([0-9a-f-]{36})\?sparad=1", r.headers["location"])
        assert m
        return m.group(1)


def _signed_decision(portal: RunningPortal) -> str:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    done = through_idp(olof, start.headers["location"], OLOF)
    assert done.status_code in (302, 303), done.text
    return str(d["id"])


@pytest.fixture
def records(portal: RunningPortal) -> dict[str, str]:
    return {
        "advisory": _advisory(portal, HANNA, BOY),
        "decision": _signed_decision(portal),
        "gavle_advisory": _advisory(portal, GUNILLA, BOY),
    }


def _anders(portal: RunningPortal) -> httpx.Client:
    return client_as(portal.url, portal.settings, ANDERS)


def _search(c: httpx.Client, **form: Any) -> httpx.Response:
    data = {"_csrf_token": c.cookies["csrftoken"], **form}
    return c.post("/archive/search", data=data)


def test_the_archivist_finds_opens_and_exports(
    portal: RunningPortal, records: dict[str, str], tmp_path: Path
) -> None:
    with closing(_anders(portal)) as c:
        page = _search(
            c,
            types=["advisory", "decision", "roster", "report"],
            personal_identity_number=BOY,
        )
        assert page.status_code == 200, page.text
        assert f"/archive/records/advisory/{records['advisory']}" in page.text
        assert f"/archive/records/decision/{records['decision']}" in page.text
        assert records["gavle_advisory"] not in page.text  # Gävle's, not Hudiksvall's
        assert "/archive/records/roster/" not in page.text  # rosters never match a client
        assert "2 handlingar" in page.text
        everything = _search(c, types=["roster"])
        assert "Ordförandejourlista Hudiksvall, version 1" in everything.text

        decision = c.get(f"/archive/records/decision/{records['decision']}")
        assert decision.status_code == 200
        assert "Integritetskontroll: godkänd." in decision.text
        assert "Underskriften är giltig och betrodd." in decision.text
        assert "B-LTA" in decision.text
        advisory = c.get(f"/archive/records/advisory/{records['advisory']}")
        assert "Integritetskontroll: godkänd." in advisory.text
        assert "Plan för Kalle.pdf" in advisory.text and "stämmer" in advisory.text
        assert "Bevilja inte akutboende." in advisory.text

        refs = [f"advisory:{records['advisory']}", f"decision:{records['decision']}"]
        package = c.post(
            "/archive/export", data={"ref": refs, "_csrf_token": c.cookies["csrftoken"]}
        )
        assert package.status_code == 200, package.text[:300]
        assert package.headers["content-type"] == "application/zip"
    report = validate_sip(package.content, tmp_path)
    assert report.ok, report.problems
    names = report.data_files
    assert any(
        n.endswith(f"decision-{records['decision']}/beslut-{records['decision']}.pdf")
        for n in names
    )
    assert any(n.endswith("attachments/01-Plan_f_r_Kalle.pdf") or "01-Plan" in n for n in names)
    for kind in ("advisory", "decision"):
        base = f"representations/rep1/data/{kind}-{records[kind]}/"
        for part in ("record.xml", "record.pdf", "verification.json", "audit.json"):
            assert base + part in names, (base + part, names)
    # The signed PDF in the package is the stored one and still verifies.
    pdf = report.read(
        f"representations/rep1/data/decision-{records['decision']}/beslut-{records['decision']}.pdf"
    )
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    assert asyncio.run(verify_pdf(pdf, trust_roots=[root])).valid
    record_xml = report.read(f"representations/rep1/data/advisory-{records['advisory']}/record.xml")
    assert BOY.encode() in record_xml and b"Bevilja inte akutboende." in record_xml
    rendition = report.read(f"representations/rep1/data/advisory-{records['advisory']}/record.pdf")
    import pikepdf

    with pikepdf.open(io.BytesIO(rendition)) as doc:  # a PDF/A-2b rendition
        assert doc.open_metadata().get("pdfaid:part") == "2"
    exported = [e.object_id for e in audit_entries(portal.settings, "archive.export")]
    assert sorted(exported) == sorted([records["advisory"], records["decision"]])


def test_another_municipalitys_record_is_404_and_audited(
    portal: RunningPortal, records: dict[str, str]
) -> None:
    with closing(_anders(portal)) as c:
        r = c.get(f"/archive/records/advisory/{records['gavle_advisory']}")
        assert r.status_code == 404
        api = c.get(f"/api/v1/archive/records/advisory/{records['gavle_advisory']}")
        assert api.status_code == 404
        assert api.headers["content-type"].startswith("application/problem+json")
        export = c.post(
            "/archive/export",
            data={
                "ref": f"advisory:{records['gavle_advisory']}",
                "_csrf_token": c.cookies["csrftoken"],
            },
        )
        assert export.status_code == 404
    denied = [e for e in audit_entries(portal.settings, "archive.open") if e.outcome == "not_found"]
    assert len(denied) == 3 and all(e.object_id == records["gavle_advisory"] for e in denied)
    with closing(client_as(portal.url, portal.settings, HANNA)) as hanna:
        assert hanna.get("/archive").status_code == 403


def test_a_changed_file_fails_the_check_and_is_left_out_of_the_export(
    portal: RunningPortal, records: dict[str, str], tmp_path: Path
) -> None:
    async def object_ids(db: AsyncSession) -> tuple[str, str]:
        att = await db.scalar(
            select(Attachment.object_id).where(Attachment.owner_id == _uuid(records["advisory"]))
        )
        dec = await db.scalar(
            select(Decision.signed_object_id).where(Decision.id == _uuid(records["decision"]))
        )
        assert att and dec
        return att, dec

    att_key, dec_key = with_db(portal.settings, object_ids)
    for key in (att_key, dec_key):
        path = portal.settings.object_root / "objects" / key
        assert path.is_file(), path
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit in the ciphertext
        path.write_bytes(bytes(data))
    with closing(_anders(portal)) as c:
        page = c.get(f"/archive/records/advisory/{records['advisory']}")
        assert "Integritetskontroll: underkänd." in page.text
        assert "stämmer inte med sin kontrollsumma" in page.text
        decision = c.get(f"/archive/records/decision/{records['decision']}")
        assert "Integritetskontroll: underkänd." in decision.text
        assert "Underskriften är <strong>inte</strong> giltig." in decision.text
        api = c.get(f"/api/v1/archive/records/decision/{records['decision']}").json()
        assert api["integrity_ok"] is False and api["files"][0]["ok"] is False
        package = c.post(
            "/archive/export",
            data={"ref": f"advisory:{records['advisory']}", "_csrf_token": c.cookies["csrftoken"]},
        )
    report = validate_sip(package.content, tmp_path)
    assert report.ok, report.problems  # the package itself is sound
    assert not any("attachments/" in n for n in report.data_files)
    verification = report.read(
        f"representations/rep1/data/advisory-{records['advisory']}/verification.json"
    )
    assert b'"integrity_ok": false' in verification


def test_the_validator_rejects_a_broken_package(
    portal: RunningPortal, records: dict[str, str], tmp_path: Path
) -> None:
    with closing(_anders(portal)) as c:
        good = c.post(
            "/archive/export",
            data={"ref": f"decision:{records['decision']}", "_csrf_token": c.cookies["csrftoken"]},
        ).content
    assert validate_sip(good, tmp_path / "good").ok

    def rewrite(change: Any) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = change(info.filename, src.read(info.filename))
                if data is not None:
                    dst.writestr(info.filename, data)
        return out.getvalue()

    changed = rewrite(lambda n, d: d.replace(b"Olof", b"Olle") if n.endswith("record.xml") else d)
    report = validate_sip(changed, tmp_path / "changed")
    assert not report.ok and any("checksum" in p for p in report.problems)
    no_mets = rewrite(lambda n, d: None if n.count("/") == 1 and n.endswith("/METS.xml") else d)
    assert not validate_sip(no_mets, tmp_path / "nomets").ok


def test_cli_export_of_a_municipality(
    portal: RunningPortal, records: dict[str, str], tmp_path: Path
) -> None:
    from portal.archive.cli import export_command

    out = tmp_path / "hudiksvall.zip"
    code = asyncio.run(
        export_command(
            portal.settings, org="Hudiksvall", since=None, until=None, kinds=None, out=out
        )
    )
    assert code == 0
    report = validate_sip(out.read_bytes(), tmp_path / "cli")
    assert report.ok, report.problems
    assert any(records["decision"] in n for n in report.data_files)
    assert any(records["advisory"] in n for n in report.data_files)
    assert not any(records["gavle_advisory"] in n for n in report.data_files)
    assert (
        asyncio.run(
            export_command(
                portal.settings, org="Ingenstans", since=None, until=None, kinds=None, out=out
            )
        )
        == 2
    )


def _uuid(text: str) -> Any:
    import uuid

    return uuid.UUID(text)
