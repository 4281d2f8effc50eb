"""The archivist: search, open with an integrity check, export as an E-ARK SIP (eark-validator
1.1.3, CSIP/SIP 2.1.0 and 2.0.4; the record XML against its shipped XSD; PREMIS links; zip dates).

Real portal over HTTP, real dev CA/TSA/OCSP for the signed decision, the filesystem object store
(the S3 path of the same file service is covered by tests/portal/test_s3_flows.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.attachments.models import Attachment
from portal.decisions.models import Decision
from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import pdf_bytes
from tests.portal.archive.eark import SipReport, validate_sip
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    signed_decision,
)
from tests.portal.reports.helpers import audit_entries, with_db
from tests.portal.sessions import client_as

HANNA, GUNILLA, OLOF, ANDERS = "196901159803", "196209219846", "197104309831", "198311099876"
BOY = "201103059893"


def _advisory(portal: RunningPortal, who: str, pnr: str) -> str:
    with closing(client_as(portal.url, portal.settings, who)) as c:
        from datetime import datetime, timedelta

        from portal.timefmt import STOCKHOLM

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
        m = re.fullmatch(r"/advisories/([0-9a-f-]{36})\?saved=1", r.headers["location"])
        assert m
        return m.group(1)


@pytest.fixture
def records(portal: RunningPortal) -> dict[str, str]:
    return {
        "advisory": _advisory(portal, HANNA, BOY),
        "decision": signed_decision(portal),
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
        assert "<dd>aktiv</dd>" in advisory.text.replace("\n", "")  # not "aktiv/utgången"

        refs = [f"advisory:{records['advisory']}", f"decision:{records['decision']}"]
        package = c.post(
            "/archive/export", data={"ref": refs, "_csrf_token": c.cookies["csrftoken"]}
        )
        assert package.status_code == 200, package.text[:300]
        assert package.headers["content-type"] == "application/zip"
    report = validate_sip(package.content, tmp_path)
    assert report.ok, report.problems
    assert report.validator == "eark-validator 1.1.3"
    assert report.summary == [
        f"CSIP/SIP {v}: 0 errors, {len([w for w in report.warnings if w.startswith(v)])} "
        "warnings, 1 accepted false positive (SIP14)"
        for v in ("2.1.0", "2.0.4")
    ]
    _zip_dates_and_folders(package.content)
    _header(report, portal)
    assert _validate_record_xml(report) == 3  # two record.xml and records.xml
    _premis_links(report, records["decision"])
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
    # The person's identity in its own element, not merged into the name.
    person = etree.fromstring(record_xml).find(f"{R}persons/{R}person")
    assert person is not None
    assert person.findtext(f"{R}name") == "Kalle Klient"
    assert person.findtext(f"{R}personalIdentityNumber") == BOY
    assert BOY not in "".join(
        e.text or ""
        for e in etree.fromstring(record_xml).iter()
        if e.tag != f"{R}personalIdentityNumber"
    )
    verification = json.loads(
        report.read(f"representations/rep1/data/decision-{records['decision']}/verification.json")
    )
    checked_at = datetime.fromisoformat(verification["checked_at"])
    assert timedelta(0) <= datetime.now(UTC) - checked_at < timedelta(minutes=10)
    assert verification["checked_by"]["software"] == "Jourpost"
    assert verification["checked_by"]["signature_validator"].startswith("pyHanko ")
    assert verification["integrity_verdict_at_check"] == "ok"
    assert verification["signature"]["verdict_at_check"] == "valid"
    assert "valid" not in verification and "integrity_ok" not in verification
    assert len(verification["what_was_checked"]) == 2
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


def test_the_archive_labels_versions_as_the_feature_and_audits_every_opening_alike(
    portal: RunningPortal,
) -> None:
    """An advisory's versions read in the archive as on the advisory page (one label rule:
    portal.advisories.texts.KINDS); the record page and the API audit an opening with the
    same actor, the archivist in the owner's archive."""
    from portal.advisories.texts import KINDS

    advisory = _advisory(portal, HANNA, BOY)
    with closing(client_as(portal.url, portal.settings, HANNA)) as hanna:
        own_page = hanna.get(f"/advisories/{advisory}")
    assert f"Version 1</a>: {KINDS['created']}" in own_page.text
    with closing(_anders(portal)) as c:
        api = c.get(f"/api/v1/archive/records/advisory/{advisory}").json()
        page = c.get(f"/archive/records/advisory/{advisory}")
    assert [v["what"] for v in api["versions"]] == [f"Version 1: {KINDS['created']}"]
    assert f"Version 1: {KINDS['created']}" in page.text
    opened = [
        e
        for e in audit_entries(portal.settings, "archive.open")
        if e.object_id == advisory and e.outcome == "ok"
    ]
    assert len(opened) == 2
    assert {(e.actor_user_id, e.actor_org_id) for e in opened} == {
        (opened[0].actor_user_id, opened[0].owner_org_id)
    }


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
    assert json.loads(verification)["integrity_verdict_at_check"] == "failed"
    assert json.loads(verification)["files"][0]["matched_at_check"] is False


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

    # The old defects, put back one at a time, fail the Schematron profiles of both versions.
    def root_mets(old: bytes, new: bytes) -> bytes:
        def change(name: str, data: bytes) -> bytes:
            if name.count("/") == 1 and name.endswith("/METS.xml"):
                assert old in data, old
                return data.replace(old, new, 1)
            return data

        return rewrite(change)

    for old, new, rules in (
        (b'TYPE="Other"', b'TYPE="OTHER"', ("CSIP2", "CSIP2")),
        (b'USE="Schemas"', b'USE="Data"', ("CSIP113", "CSIP113")),
        (b'LABEL="Schemas"', b'LABEL="Data"', ("CSIP99", "CSIP99")),
        (b'LABEL="Representations"', b'LABEL="Content"', ("CSIP103", "CSIP103")),
        (
            b'USE="Representations" csip:CONTENTINFORMATIONTYPE="OTHER"',
            b'USE="Representations/rep1"',
            ("CSIP62", "CSIP114"),  # 2.0.4 wants USE="Representations" exactly
        ),
        (  # a second CREATOR agent: SIP14 is no longer the known false positive
            b'<mets:agent ROLE="ARCHIVIST"',
            b'<mets:agent ROLE="CREATOR" TYPE="ORGANIZATION"><mets:name>X</mets:name>'
            b'<mets:note csip:NOTETYPE="IDENTIFICATIONCODE">ORG:1</mets:note></mets:agent>'
            b'<mets:agent ROLE="ARCHIVIST"',
            ("SIP14", "SIP14"),
        ),
    ):
        bad = validate_sip(root_mets(old, new), tmp_path / rules[0])
        for version, rule in zip(("2.1.0", "2.0.4"), rules, strict=True):
            assert any(p.startswith(f"{version} METS.xml {rule} ") for p in bad.problems), (
                rule,
                version,
                bad.problems,
            )


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


def test_record_xml_is_checked_against_the_shipped_schema(
    portal: RunningPortal, records: dict[str, str], tmp_path: Path
) -> None:
    with closing(_anders(portal)) as c:
        good = c.post(
            "/archive/export",
            data={"ref": f"advisory:{records['advisory']}", "_csrf_token": c.cookies["csrftoken"]},
        ).content
    report = validate_sip(good, tmp_path)
    assert report.ok, report.problems
    path = f"representations/rep1/data/advisory-{records['advisory']}/record.xml"
    schema = _schema_of(report.root / path)
    valid = report.read(path)
    assert schema.validate(etree.fromstring(valid))
    for old, new in (
        (f"<personalIdentityNumber>{BOY}<".encode(), b"<personalIdentityNumber>2011-03-05<"),
        (b"<persons>", b"<people>"),
        (b'type="advisory"', b'type="memo"'),
    ):
        assert old in valid, old
        broken = valid.replace(old, new, 1).replace(
            b"</persons>", b"</people>", old == b"<persons>"
        )
        assert not schema.validate(etree.fromstring(broken)), new
    names = zipfile.ZipFile(io.BytesIO(good)).namelist()
    assert any(n.endswith("/schemas/jourpost-record.xsd") and n.count("/") == 2 for n in names)
    mets = etree.fromstring(report.read("METS.xml"))
    schemas = [g for g in mets.iter(f"{M}fileGrp") if g.get("USE") == "Schemas"]
    hrefs = [f.find(f"{M}FLocat").get(f"{X}href") for f in schemas[0].findall(f"{M}file")]  # type: ignore[union-attr]
    assert "schemas/jourpost-record.xsd" in hrefs
    division = [d for d in mets.iter(f"{M}div") if d.get("LABEL") == "Schemas"]
    assert len(division[0].findall(f"{M}fptr")) == len(hrefs)


def test_cli_export_of_a_demos_data_with_no_environment(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "demo"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no JOURPOST_* at all
    jourpost = [sys.executable, "-m", "portal.cli"]
    prepared = subprocess.run(
        [*jourpost, "demo", "--data", str(data), "--no-serve"], env=env, capture_output=True
    )
    assert prepared.returncode == 0, prepared.stderr
    out = tmp_path / "hudiksvall.zip"
    run = subprocess.run(
        [
            *jourpost,
            *("archive", "export", "--data", str(data), "--org", "Hudiksvall"),
            *("--type", "report", "--out", str(out), "--no-pdf"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "handlingar från Hudiksvall" in run.stdout
    report = validate_sip(out.read_bytes(), tmp_path / "check")
    assert report.ok, report.problems
    assert len(report.data_files) > 10
    records_in_package = [n for n in report.data_files if n.endswith("/record.xml")]
    assert _validate_record_xml(report) == len(records_in_package) + 1
    mets = etree.fromstring(report.read("METS.xml"))
    archivist = next(a for a in mets.iter(f"{M}agent") if a.get("ROLE") == "ARCHIVIST")
    assert archivist.findtext(f"{M}note") == "ORG:2129990046"
    missing = subprocess.run(
        [
            *jourpost,
            *("archive", "export", "--data", str(tmp_path / "nothing")),
            *("--org", "X", "--out", str(tmp_path / "x.zip")),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "jourpost demo --data" in missing.stderr
    assert not (tmp_path / "nothing").exists()


M = "{http://www.loc.gov/METS/}"
X = "{http://www.w3.org/1999/xlink}"
R = "{urn:jourpost:record:1}"
P = "{http://www.loc.gov/premis/v3}"
XSI_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"


def _schema_of(path: Path) -> etree.XMLSchema:
    """The XSD the file names in xsi:schemaLocation, as shipped in the package."""
    doc = etree.parse(str(path))
    namespace, location = doc.getroot().get(XSI_LOCATION).split()
    assert namespace == "urn:jourpost:record:1"
    return etree.XMLSchema(etree.parse(str(path.parent / location)))


def _validate_record_xml(report: SipReport) -> int:
    """Every record.xml and records.xml against the schema it references; how many."""
    files = [*report.root.rglob("record.xml"), report.root / "metadata/descriptive/records.xml"]
    for path in files:
        schema = _schema_of(path)
        assert schema.validate(etree.parse(str(path))), (path, schema.error_log)
    return len(files)


def _zip_dates_and_folders(data: bytes) -> None:
    from datetime import datetime

    from portal.timefmt import STOCKHOLM

    now = datetime.now(STOCKHOLM).replace(tzinfo=None)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
    assert infos
    for info in infos:
        assert not info.is_dir(), info.filename  # no empty folders
        when = datetime(*info.date_time)
        assert timedelta(0) <= now - when < timedelta(minutes=10), (info.filename, when)
    assert not any("/representations/rep1/metadata" in i.filename for i in infos)


def _header(report: SipReport, portal: RunningPortal) -> None:
    mets = etree.fromstring(report.read("METS.xml"))
    assert mets.get("TYPE") == "Other"
    content = mets.get("{https://DILCIS.eu/XML/METS/CSIPExtensionMETS}OTHERCONTENTINFORMATIONTYPE")
    assert content and "Jourpost records" in content and "FGS" not in content
    agents = {a.get("ROLE"): a for a in mets.iter(f"{M}agent")}
    assert agents["ARCHIVIST"].get("TYPE") == "ORGANIZATION"
    assert agents["ARCHIVIST"].findtext(f"{M}name") == "Hudiksvall"
    assert portal.settings.archive_org_number("Hudiksvall") == "212999-0046"
    assert agents["ARCHIVIST"].findtext(f"{M}note") == "ORG:2129990046"
    agreement = mets.find(f"{M}metsHdr/{M}altRecordID")
    assert agreement is not None and agreement.get("TYPE") == "SUBMISSIONAGREEMENT"
    assert agreement.text == portal.settings.archive_submission_agreement
    uses = [g.get("USE") for g in mets.iter(f"{M}fileGrp")]
    assert uses == ["Documentation", "Schemas", "Representations"]


def _premis_links(report: SipReport, decision: str) -> None:
    premis = etree.fromstring(report.read("metadata/preservation/premis.xml"))
    objects = {
        o.findtext(f"{P}objectIdentifier/{P}objectIdentifierValue")
        for o in premis.iter(f"{P}object")
    }
    agents = {
        a.findtext(f"{P}agentIdentifier/{P}agentIdentifierValue") for a in premis.iter(f"{P}agent")
    }
    assert agents == {"Jourpost 0.1.0", "212999-0046"}
    events = list(premis.iter(f"{P}event"))
    for event in events:
        linked_objects = [
            x.findtext(f"{P}linkingObjectIdentifierValue")
            for x in event.findall(f"{P}linkingObjectIdentifier")
        ]
        linked_agents = [
            x.findtext(f"{P}linkingAgentIdentifierValue")
            for x in event.findall(f"{P}linkingAgentIdentifier")
        ]
        assert linked_objects and set(linked_objects) <= objects, linked_objects
        assert linked_agents and set(linked_agents) <= agents, linked_agents

    def of_type(kind: str) -> list[list[str | None]]:
        return [
            [
                x.findtext(f"{P}linkingObjectIdentifierValue")
                for x in e.findall(f"{P}linkingObjectIdentifier")
            ]
            for e in events
            if e.findtext(f"{P}eventType") == kind
        ]

    base = f"representations/rep1/data/decision-{decision}/"
    assert of_type("digital signature generation") == [[f"{base}beslut-{decision}.pdf"]]
    [validation] = [
        e for e in events if e.findtext(f"{P}eventType") == "digital signature validation"
    ]
    assert validation.findtext(f"{P}eventOutcomeInformation/{P}eventOutcome") == "success"
    assert "kontrolltillfället" in (
        validation.findtext(f"{P}eventDetailInformation/{P}eventDetail") or ""
    )
    assert of_type("digital signature validation") == [
        [f"{base}beslut-{decision}.pdf", f"{base}verification.json"]
    ]


def _uuid(text: str) -> Any:
    import uuid

    return uuid.UUID(text)


def test_the_archive_speaks_swedish_local_time_and_says_when_nothing_is_selected(
    portal: RunningPortal, records: dict[str, str]
) -> None:
    """No raw codes on the archive's pages: the legal basis as "SoL", the signature time in
    Stockholm time with its zone; the sending unit on each result row; an export with nothing
    ticked answers with the results again and a Swedish error, not an empty response."""
    import uuid

    from portal.advisories.models import Advisory
    from portal.db.models import Unit

    async def unit_of(db: AsyncSession) -> str:
        adv = await db.get(Advisory, uuid.UUID(records["advisory"]))
        assert adv is not None and adv.unit_id is not None
        unit = await db.get(Unit, adv.unit_id)
        assert unit is not None
        return unit.name

    unit = with_db(portal.settings, unit_of)
    with closing(_anders(portal)) as c:
        page = _search(c, types=["advisory", "decision"], personal_identity_number=BOY)
        assert page.status_code == 200
        assert "Avisering (SoL), version 1" in page.text and "(sol)" not in page.text
        row = page.text[page.text.index(f"/archive/records/advisory/{records['advisory']}") :]
        row = row[: row.index("</tr>")]
        assert f"<td>{unit}</td>" in row, row
        assert '<th scope="col">Enhet</th>' in page.text

        advisory = c.get(f"/archive/records/advisory/{records['advisory']}")
        assert "<dt>Lagrum</dt><dd>SoL</dd>" in advisory.text
        assert "Avisering (SoL)" in advisory.text and "(sol)" not in advisory.text

        decision = c.get(f"/archive/records/decision/{records['decision']}")
        signed = re.search(r"undertecknad (\S+ \S+ \S+) —", decision.text)
        assert signed, decision.text
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T", signed.group(1))
        assert "+00:00" not in decision.text

        nothing = c.post(
            "/archive/export",
            data={
                "_csrf_token": c.cookies["csrftoken"],
                "types": ["advisory", "decision"],
                "personal_identity_number": BOY,
            },
        )
        assert nothing.status_code == 422
        assert nothing.headers["content-type"].startswith("text/html")
        assert "Välj minst en handling att exportera." in nothing.text
        assert 'href="#records"' in nothing.text and 'id="records"' in nothing.text
        assert f"/archive/records/advisory/{records['advisory']}" in nothing.text
        assert "2 handlingar" in nothing.text
    exported = [e.object_id for e in audit_entries(portal.settings, "archive.export")]
    assert exported == []
