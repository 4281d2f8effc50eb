"""E-archive export: an E-ARK SIP (FGS Paketstruktur 2.0 = E-ARK CSIP 2.1.0 + SIP 2.1.0) as a zip.

Layout of the package (one representation holding every exported record):

    <package>/METS.xml                                root METS (CSIP profile, SIP package type)
    <package>/documentation/om-paketet.txt            what the package holds (Swedish, UTF-8)
    <package>/metadata/descriptive/records.xml        one <entry> per record: type, id, dates
    <package>/metadata/preservation/premis.xml        PREMIS objects, events and agents
    <package>/schemas/                                METS, xlink and DILCIS extension schemas and
                                                      jourpost-record.xsd (record.xml, records.xml)
    <package>/representations/rep1/METS.xml           representation METS: every data file
    <package>/representations/rep1/schemas/           the same schemas, for the representation
    <package>/representations/rep1/data/<type>-<id>/
        record.xml            the record (jourpost-record.xsd): persons, content, versions, receipts
        record.pdf            a PDF/A-2b rendition of record.xml (unless left out)
        beslut-<id>.pdf       decisions: the signed PDF/A (PAdES-B-LTA), as stored
        attachments/...       the record's attachments, as stored
        verification.json     what was checked at export, when, by what, and the verdict then
        audit.json            the audit-log entries that name the record (with their hashes)

Every file has a SHA-256 checksum and size in a METS file; every zip entry is dated with the
export time in Swedish local time. The zip is written entry by entry into a small buffer that is
handed to the caller after each chunk, so memory stays bounded by the largest chunk plus the list
of file descriptions, whatever the number or size of records. docs/archive.md describes the
package and the validator run that checks it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import stat
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.sax import saxutils

from portal.archive.service import FileCheck, Integrity, file_problem, read_file, verify_signature
from portal.records import Record, StoredFile
from storage.errors import StorageError

if TYPE_CHECKING:
    from asn1crypto.x509 import Certificate

    from storage import EncryptedObjectStore

_ATTR_SPECIAL = frozenset('&<>"\n\r\t')


def escape(text: str) -> str:
    """`saxutils.escape`, skipping its three replacements when there is nothing to escape (the
    package's metadata escapes some 100,000 paths, names and dates for 10,000 records)."""
    if "&" in text or "<" in text or ">" in text:
        return saxutils.escape(text)
    return text


def quoteattr(text: str) -> str:
    """`saxutils.quoteattr`, with the same shortcut when the value needs no escaping."""
    if _ATTR_SPECIAL.isdisjoint(text):
        return f'"{text}"'
    return saxutils.quoteattr(text)


METS = "http://www.loc.gov/METS/"
CSIP = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
SIP = "https://DILCIS.eu/XML/METS/SIPExtensionMETS"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS = "http://www.loc.gov/premis/v3"
RECORD = "urn:jourpost:record:1"
"""Namespace of record.xml and records.xml (schemas/jourpost-record.xsd)."""
for prefix, uri in (
    ("mets", METS),
    ("csip", CSIP),
    ("sip", SIP),
    ("xlink", XLINK),
    ("xsi", XSI),
    ("premis", PREMIS),
):
    ET.register_namespace(prefix, uri)
RECORD_XSD = "jourpost-record.xsd"
SCHEMAS = (
    "mets.xsd",
    "xlink.xsd",
    "DILCISExtensionMETS.xsd",
    "DILCISExtensionSIPMETS.xsd",
    RECORD_XSD,
)
SOFTWARE = "Jourpost"
VERSION = "0.1.0"
CONTENT_CATEGORY = "Socialtjänstens jourhandlingar (Jourpost)"
"""csip:OTHERTYPE beside mets/@TYPE="Other" (no CSIP content category fits better)."""
CONTENT_TYPE = "Jourpost records (jourpost-record.xsd 1.0)"
"""csip:OTHERCONTENTINFORMATIONTYPE: the content, not the packaging (CSIP4/CSIP63)."""
DOCUMENTATION = "documentation/om-paketet.txt"
REP = "representations/rep1/"


@dataclass(frozen=True, slots=True)
class Summary:
    """What the package metadata needs of a record once its files are written (kept small:
    the whole records are not held until the end of an export of thousands)."""

    kind: str
    """Record type."""
    id: uuid.UUID
    """Record id."""
    owner: uuid.UUID
    """Owning organisation."""
    title: str
    """Title."""
    date: datetime
    """The record's date."""
    created: datetime
    """Drawn up."""
    integrity: str
    """ok | failed | unknown."""
    signatures: tuple[tuple[datetime, str, str], ...]
    """Signature events (when, what, by whom)."""
    checked_at: datetime | None
    """When the integrity check (and signature verification) was made; None: not checked."""
    signature_verdict: str | None
    """valid | invalid at checked_at; None when no signature was verified."""
    signed_path: str | None
    """Package path of the signed PDF (None when there is none or it was left out)."""

    @property
    def key(self) -> str:
        """`<type>-<id>`: the record's folder and the `record` of its entries."""
        return f"{self.kind}-{self.id}"

    @classmethod
    def of(cls, record: Record, integrity: Integrity | None, signed_path: str | None) -> Summary:
        """Summarise a record that has been written."""
        state = "unknown" if integrity is None else ("ok" if integrity.ok else "failed")
        verdict = None
        if integrity is not None and integrity.signature is not None:
            verdict = "valid" if integrity.signature.get("valid") else "invalid"
        return cls(
            record.kind,
            record.id,
            record.owner_org_id,
            record.title,
            record.date,
            record.created_at,
            state,
            tuple(
                (when, what, who)
                for what, when, who in record.receipts
                if what.startswith("Underskriven")
            ),
            integrity.checked_at if integrity is not None else None,
            verdict,
            signed_path,
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """A file written into the package."""

    path: str
    """Path inside the package (relative to the package root)."""
    mime: str
    """MIME type."""
    size: int
    """Bytes."""
    sha256: str
    """Lower-case hex."""
    record: str | None = None
    """`<type>-<id>` of the record it belongs to (None for package metadata)."""


@dataclass(frozen=True, slots=True)
class Archivist:
    """The archival creator (arkivbildare) and the delivery the package belongs to."""

    name: str
    """The organisation whose records these are."""
    org_number: str = ""
    """Its organisation number, NNNNNN-NNNN ("" when not configured)."""
    submission_agreement: str = ""
    """Reference of the submission agreement (leveransöverenskommelse), "" when none."""

    @property
    def identification_code(self) -> str:
        """The METS/PREMIS identification code: ORG:<number without hyphen>, or ""."""
        return f"ORG:{self.org_number.replace('-', '')}" if self.org_number else ""


def archivist_for(settings: Any, name: str) -> Archivist:
    """The archival creator `name` with its organisation number and the submission agreement
    from the settings (`archive_org_numbers`, `archive_submission_agreement`)."""
    return Archivist(name, settings.archive_org_number(name), settings.archive_submission_agreement)


class _Buffer(io.RawIOBase):
    """A write-only, non-seekable stream whose bytes are taken out after each write."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._parts.append(data)
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _schema(name: str) -> bytes:
    """A schema shipped with the package (METS: CC0; xlink: LoC; DILCIS extensions: E-ARK;
    jourpost-record.xsd: ours)."""
    from importlib import resources

    return resources.files("portal.archive").joinpath(f"xsd/{name}").read_bytes()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _xml(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _r(tag: str) -> str:
    # Unqualified here; the root's xmlns attribute puts every element in RECORD when written.
    return tag


def record_xml(record: Record, schema_location: str = f"../../schemas/{RECORD_XSD}") -> bytes:
    """The record as XML (schemas/jourpost-record.xsd): the persons it is about, each with their
    own name and identity elements, its content, versions, receipts and stored files.

    `schema_location` is the schema's path relative to where the file is written."""
    root = ET.Element(
        _r("record"),
        {
            "xmlns": RECORD,
            "schemaVersion": "1.0",
            "type": record.kind,
            "id": str(record.id),
            "owner": str(record.owner_org_id),
            _q(XSI, "schemaLocation"): f"{RECORD} {schema_location}",
        },
    )
    ET.SubElement(root, _r("title")).text = record.title
    ET.SubElement(root, _r("date")).text = _iso(record.date)
    ET.SubElement(root, _r("created")).text = _iso(record.created_at)
    persons = ET.SubElement(root, _r("persons"))
    for p in record.persons:
        person = ET.SubElement(
            persons,
            _r("person"),
            {"label": p.label, "identityKnown": "true" if p.personal_identity_number else "false"},
        )
        ET.SubElement(person, _r("name")).text = p.name
        if p.personal_identity_number:
            ET.SubElement(person, _r("personalIdentityNumber")).text = p.personal_identity_number
    person_labels = {p.label for p in record.persons}
    content = ET.SubElement(root, _r("content"))
    for label, value in record.facts:
        if label not in person_labels:  # the persons are above, identity apart from name
            ET.SubElement(content, _r("field"), {"label": label}).text = value
    versions = ET.SubElement(root, _r("versions"))
    for what, when, who in record.versions:
        ET.SubElement(versions, _r("version"), {"at": _iso(when), "by": who}).text = what
    receipts = ET.SubElement(root, _r("receipts"))
    for what, when, who in record.receipts:
        ET.SubElement(receipts, _r("receipt"), {"at": _iso(when), "by": who}).text = what
    files = ET.SubElement(root, _r("files"))
    for f in record.files:
        ET.SubElement(
            files,
            _r("file"),
            {
                "name": f.name,
                "mimeType": f.content_type,
                "sha256": f.stored.sha256,
                "size": str(f.stored.size),
            },
        )
    return _xml(root)


def verification_document(integrity: Integrity) -> dict[str, Any]:
    """verification.json: what was checked at export, when, with what, and the verdict then.

    Every verdict is qualified by `checked_at`: it says what held at that moment and stays true
    later; it is not a claim about the file today (check the signed PDF again for that)."""
    sig = integrity.signature
    document: dict[str, Any] = {
        "checked_at": _iso(integrity.checked_at),
        "checked_by": {
            "software": SOFTWARE,
            "version": VERSION,
            "signature_validator": f"pyHanko {_version('pyHanko')}",
        },
        "what_was_checked": [
            "Each stored file was read back through the encrypted store, its SHA-256 and size "
            "compared with the values recorded when it was stored.",
        ]
        + (
            [
                "The signed PDF's signatures were verified with pyHanko against the portal's "
                "trust roots: integrity of the signed bytes, the certificate chain, the embedded "
                "revocation data and timestamps (PAdES), and changes after signing."
            ]
            if sig is not None
            else []
        ),
        "files": [
            {
                "name": f.name,
                "sha256_recorded": f.sha256,
                "size_recorded": f.size,
                "matched_at_check": f.ok,
                "problem": f.problem,
            }
            for f in integrity.files
        ],
        "integrity_verdict_at_check": "ok" if integrity.ok else "failed",
    }
    if sig is not None:
        report = {("valid_at_check" if k == "valid" else k): v for k, v in sig.items()}
        document["signature"] = {
            "verdict_at_check": "valid" if sig.get("valid") else "invalid",
            "report_at_check": report,
        }
    document["note"] = (
        "Verdicts hold for checked_at. Files that failed their check are not in the package. "
        "verification.json is not covered by the signature; the PREMIS events in "
        "metadata/preservation/premis.xml record the same checks."
    )
    return document


@functools.cache
def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _attrs(values: dict[str, str]) -> str:
    return "".join(f" {k}={quoteattr(v)}" for k, v in values.items())


@functools.cache
def _pdf_env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "pdf"),
        autoescape=True,
        auto_reload=False,
    )


async def record_pdf(record: Record, exported: datetime) -> bytes:
    """The record rendered as PDF/A-2b (a readable rendition of record.xml)."""
    import asyncio

    from portal.archive.service import KINDS
    from portal.timefmt import format_local
    from signing.render import render_pdfa

    html = (
        _pdf_env()
        .get_template("record.html")
        .render(record=record, kind=KINDS[record.kind], fmt=format_local, exported=exported)
    )
    data: bytes = await asyncio.to_thread(render_pdfa, html)
    return data


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return keep.strip("._") or "fil"


PACKAGE_NOTE = """Om paketet
==========

Ett informationspaket (SIP) från Jourpost enligt FGS Paketstruktur 2.0, det vill säga
E-ARK CSIP 2.1.0 och E-ARK SIP 2.1.0. Paketet innehåller handlingar ur en organisations arkiv
i Jourpost: aviseringar, händelserapporter, ordförandebeslut och ordförandejourlistor.

METS.xml                          paketets METS (arkivbildare med organisationsnummer, avtal)
metadata/descriptive/records.xml  förteckning över handlingarna (schemas/jourpost-record.xsd)
metadata/preservation/premis.xml  PREMIS: filer, händelser (upprättande, underskrift,
                                  kontroll vid export, överföring) och agenter
schemas/                          XML-scheman, bland dem jourpost-record.xsd
representations/rep1/METS.xml     representationens METS med alla datafiler
representations/rep1/data/<typ>-<id>/
  record.xml         handlingen: personer (namn och personnummer i egna element), innehåll,
                     versioner, kvittenser och filer; valideras mot jourpost-record.xsd
  record.pdf         samma handling återgiven som PDF/A-2b (om den inte valts bort)
  beslut-<id>.pdf    ordförandebeslutet som det skrevs under (PDF/A, PAdES-B-LTA)
  attachments/       bilagor som de lagrades
  verification.json  vad som kontrollerades vid exporten, när, med vilket verktyg och
                     resultatet vid det tillfället (inte ett påstående om senare tidpunkter)
  audit.json         loggposterna som rör handlingen, med sina kontrollsummor

Alla filer har SHA-256 och storlek i METS. Tider anges i UTC (ISO 8601).
Handlingarna kan omfattas av sekretess enligt 26 kap. offentlighets- och sekretesslagen.
"""


class SipWriter:
    """Writes the package into a zip, entry by entry; `take()` returns what is ready."""

    def __init__(self, package_id: uuid.UUID, *, label: str, archivist: str | Archivist) -> None:
        from portal.timefmt import STOCKHOLM

        self.package_id = package_id
        self.root = f"jourpost-sip-{package_id}"
        self.label = label
        self.archivist = archivist if isinstance(archivist, Archivist) else Archivist(archivist)
        self.created = datetime.now(UTC)
        self._stamp = self.created.astimezone(STOCKHOLM).timetuple()[:6]
        self.entries: list[Entry] = []
        self.records: list[Summary] = []
        self._buffer = _Buffer()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_DEFLATED)
        self.add_bytes(DOCUMENTATION, PACKAGE_NOTE.encode(), "text/plain")
        for folder in ("schemas/", f"{REP}schemas/"):
            for xsd in SCHEMAS:
                self.add_bytes(f"{folder}{xsd}", _schema(xsd), "application/xml")

    def _info(self, path: str) -> zipfile.ZipInfo:
        """A zip entry dated with the export time (local time, as zip dates are)."""
        info = zipfile.ZipInfo(f"{self.root}/{path}", date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        return info

    def take(self) -> bytes:
        """The zip bytes written since the last call."""
        return self._buffer.take()

    def add_bytes(self, path: str, data: bytes, mime: str, record: str | None = None) -> None:
        """A small file from memory."""
        self._zip.writestr(self._info(path), data)
        self.entries.append(Entry(path, mime, len(data), hashlib.sha256(data).hexdigest(), record))

    def open_stream(self, path: str) -> tuple[Any, Any]:
        """A writable entry for a large file, and a running hash (close the entry when done)."""
        return self._zip.open(self._info(path), "w", force_zip64=True), hashlib.sha256()

    def stream_done(self, path: str, mime: str, size: int, digest: str, record: str) -> None:
        """Register a streamed file."""
        self.entries.append(Entry(path, mime, size, digest, record))

    def finish(self) -> None:
        """Write the representation METS, the metadata and the root METS; close the zip.

        The three large files (one line per file or record) are streamed into their entries as
        text, never built as a tree, so their size does not count against memory."""
        rep_entries = [e for e in self.entries if e.path.startswith(REP)]
        self._write_text(f"{REP}METS.xml", self._rep_mets(rep_entries))
        self._write_text("metadata/descriptive/records.xml", self._descriptive())
        self._write_text("metadata/preservation/premis.xml", self._premis())
        by_path = {e.path: e for e in self.entries}
        self._zip.writestr(
            self._info("METS.xml"),
            self._root_mets(
                documentation=[by_path[DOCUMENTATION]],
                schemas=[by_path[f"schemas/{xsd}"] for xsd in SCHEMAS],
                rep_mets=by_path[f"{REP}METS.xml"],
                dmd=by_path["metadata/descriptive/records.xml"],
                premis=by_path["metadata/preservation/premis.xml"],
            ),
        )
        self._zip.close()

    def _write_text(self, path: str, chunks: Iterable[str], mime: str = "text/xml") -> None:
        entry, digest = self.open_stream(path)
        size = 0

        def write(pending: list[str]) -> int:
            data = "".join(pending).encode("utf-8")
            entry.write(data)
            digest.update(data)
            return len(data)

        with entry:
            # Lines are gathered into pieces of about 256 KB: one compression and hashing call
            # per piece instead of per line (bounded memory all the same).
            pending: list[str] = []
            held = 0
            for chunk in chunks:
                pending.append(chunk)
                held += len(chunk)
                if held >= 1 << 18:
                    size += write(pending)
                    pending, held = [], 0
            size += write(pending)
        self.entries.append(Entry(path, mime, size, digest.hexdigest()))

    def _mets_attrs(self, objid: str, label: str) -> dict[str, str]:
        return {
            "OBJID": objid,
            "LABEL": label,
            "TYPE": "Other",
            "csip:OTHERTYPE": CONTENT_CATEGORY,
            "csip:CONTENTINFORMATIONTYPE": "OTHER",
            "csip:OTHERCONTENTINFORMATIONTYPE": CONTENT_TYPE,
            "PROFILE": "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml",
        }

    def _header(self) -> str:
        """metsHdr: the software (CSIP10-16), the archival creator with its organisation number
        (SIP: agent ARCHIVIST, note IDENTIFICATIONCODE) and the submission agreement (SIP5)."""
        created = _iso(self.created)
        a = self.archivist
        archivist_note = (
            f'<mets:note csip:NOTETYPE="IDENTIFICATIONCODE">{escape(a.identification_code)}'
            "</mets:note>"
            if a.identification_code
            else ""
        )
        agreement = (
            f'<mets:altRecordID TYPE="SUBMISSIONAGREEMENT">{escape(a.submission_agreement)}'
            "</mets:altRecordID>"
            if a.submission_agreement
            else ""
        )
        return (
            f'<mets:metsHdr CREATEDATE="{created}" LASTMODDATE="{created}" RECORDSTATUS="NEW" '
            'csip:OAISPACKAGETYPE="SIP">'
            '<mets:agent ROLE="CREATOR" TYPE="OTHER" OTHERTYPE="SOFTWARE">'
            f"<mets:name>{SOFTWARE}</mets:name>"
            f'<mets:note csip:NOTETYPE="SOFTWARE VERSION">{VERSION}</mets:note></mets:agent>'
            '<mets:agent ROLE="ARCHIVIST" TYPE="ORGANIZATION">'
            f"<mets:name>{escape(a.name)}</mets:name>{archivist_note}</mets:agent>"
            f"{agreement}</mets:metsHdr>\n"
        )

    def _open(self, objid: str, label: str) -> str:
        attrs = {
            "xmlns:mets": METS,
            "xmlns:csip": CSIP,
            "xmlns:sip": SIP,
            "xmlns:xlink": XLINK,
            "xmlns:xsi": XSI,
            **self._mets_attrs(objid, label),
            "xsi:schemaLocation": (
                f"{METS} schemas/mets.xsd {XLINK} schemas/xlink.xsd "
                f"{CSIP} schemas/DILCISExtensionMETS.xsd {SIP} schemas/DILCISExtensionSIPMETS.xsd"
            ),
        }
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<mets:mets{_attrs(attrs)}>{self._header()}'

    def _file(self, file_id: str, e: Entry, href: str) -> str:
        return (
            f'<mets:file ID="{file_id}"{_attrs(self._file_attrs(e))}>'
            f'<mets:FLocat LOCTYPE="URL" xlink:type="simple"{_attrs({"xlink:href": href})}/>'
            "</mets:file>\n"
        )

    @staticmethod
    def _group(group_id: str, use: str) -> str:
        # eark-validator 1.1.3's CSIP63 (2.1.0) wants the content information type on every
        # file group; it is the package's, so the Documentation and Schemas groups carry it too.
        attrs = {
            "ID": group_id,
            "USE": use,
            "csip:CONTENTINFORMATIONTYPE": "OTHER",
            "csip:OTHERCONTENTINFORMATIONTYPE": CONTENT_TYPE,
        }
        return f"<mets:fileGrp{_attrs(attrs)}>\n"

    def _rep_mets(self, entries: list[Entry]) -> Iterable[str]:
        objid = f"{self.root}-rep1"
        yield self._open(objid, "Representation rep1")
        schemas = [e for e in entries if e.path.startswith(f"{REP}schemas/")]
        data = [e for e in entries if not e.path.startswith(f"{REP}schemas/")]
        yield '<mets:fileSec ID="filesec-1">'
        yield self._group("grp-data", "Data")
        for i, e in enumerate(data, 1):
            yield self._file(f"file-data-{i}", e, e.path[len(REP) :])
        yield "</mets:fileGrp>"
        yield self._group("grp-schemas", "Schemas")
        for i, e in enumerate(schemas, 1):
            yield self._file(f"file-schemas-{i}", e, e.path[len(REP) :])
        yield "</mets:fileGrp></mets:fileSec>\n"
        yield (
            '<mets:structMap ID="struct-1" TYPE="PHYSICAL" LABEL="CSIP">'
            f'<mets:div ID="div-root"{_attrs({"LABEL": objid})}>'
            '<mets:div ID="div-data" LABEL="Data">\n'
        )
        for i in range(1, len(data) + 1):
            yield f'<mets:fptr FILEID="file-data-{i}"/>\n'
        yield '</mets:div><mets:div ID="div-schemas" LABEL="Schemas">\n'
        for i in range(1, len(schemas) + 1):
            yield f'<mets:fptr FILEID="file-schemas-{i}"/>\n'
        yield "</mets:div></mets:div></mets:structMap></mets:mets>\n"

    def _file_attrs(self, e: Entry) -> dict[str, str]:
        return {
            "MIMETYPE": e.mime,
            "SIZE": str(e.size),
            "CREATED": _iso(self.created),
            "CHECKSUM": e.sha256,
            "CHECKSUMTYPE": "SHA-256",
        }

    def _md_ref(self, e: Entry, **attrs: str) -> str:
        values = {
            "LOCTYPE": "URL",
            "xlink:type": "simple",
            "xlink:href": e.path,
            **attrs,
            **self._file_attrs(e),
        }
        return f"<mets:mdRef{_attrs(values)}/>"

    def _root_mets(
        self,
        *,
        documentation: list[Entry],
        schemas: list[Entry],
        rep_mets: Entry,
        dmd: Entry,
        premis: Entry,
    ) -> bytes:
        created = _iso(self.created)
        parts = [
            self._open(self.root, self.label),
            f'<mets:dmdSec ID="dmd-records" CREATED="{created}" STATUS="CURRENT">',
            self._md_ref(dmd, MDTYPE="OTHER", OTHERMDTYPE="JOURPOST-RECORDS"),
            '</mets:dmdSec><mets:amdSec ID="amd-1">',
            '<mets:digiprovMD ID="digiprov-premis" STATUS="CURRENT">',
            self._md_ref(premis, MDTYPE="PREMIS"),
            "</mets:digiprovMD></mets:amdSec>\n",
            '<mets:fileSec ID="filesec-1">',
            self._group("grp-documentation", "Documentation"),
            *(self._file(f"file-doc-{i}", e, e.path) for i, e in enumerate(documentation, 1)),
            "</mets:fileGrp>",
            self._group("grp-schemas", "Schemas"),
            *(self._file(f"file-schemas-{i}", e, e.path) for i, e in enumerate(schemas, 1)),
            "</mets:fileGrp>",
            self._group("grp-representations", "Representations"),
            self._file("file-rep1-mets", rep_mets, rep_mets.path),
            "</mets:fileGrp></mets:fileSec>\n",
            '<mets:structMap ID="struct-1" TYPE="PHYSICAL" LABEL="CSIP">',
            f'<mets:div ID="div-root"{_attrs({"LABEL": self.root})}>',
            '<mets:div ID="div-metadata" LABEL="Metadata" DMDID="dmd-records" '
            'ADMID="digiprov-premis"/>',
            '<mets:div ID="div-documentation" LABEL="Documentation">',
            *(f'<mets:fptr FILEID="file-doc-{i}"/>' for i in range(1, len(documentation) + 1)),
            '</mets:div><mets:div ID="div-schemas" LABEL="Schemas">',
            *(f'<mets:fptr FILEID="file-schemas-{i}"/>' for i in range(1, len(schemas) + 1)),
            '</mets:div><mets:div ID="div-representations" LABEL="Representations">',
            '<mets:fptr FILEID="file-rep1-mets"/>',
            '<mets:div ID="div-rep1" LABEL="Representations/rep1">',
            '<mets:mptr LOCTYPE="URL" xlink:type="simple" '
            f'xlink:href="{REP}METS.xml" xlink:title="Representations/rep1"/>',
            "</mets:div></mets:div></mets:div></mets:structMap></mets:mets>\n",
        ]
        return "".join(parts).encode("utf-8")

    def _descriptive(self) -> Iterable[str]:
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        attrs = {
            "xmlns": RECORD,
            "xmlns:xsi": XSI,
            "xsi:schemaLocation": f"{RECORD} ../../schemas/{RECORD_XSD}",
            "schemaVersion": "1.0",
            "package": self.root,
            "created": _iso(self.created),
            "archivalCreator": self.archivist.name,
        }
        if self.archivist.org_number:
            attrs["organisationNumber"] = self.archivist.org_number
        yield f"<records{_attrs(attrs)}>\n"
        for r in self.records:
            attrs = {
                "type": r.kind,
                "id": str(r.id),
                "owner": str(r.owner),
                "date": _iso(r.date),
                "created": _iso(r.created),
                "integrity": r.integrity,
                "path": f"{REP}data/{r.key}/",
            }
            yield f"<entry{_attrs(attrs)}>{escape(r.title)}</entry>\n"
        yield "</records>\n"

    def _premis(self) -> Iterable[str]:
        """PREMIS 3: an object per file; per record the events that concern its files, each
        linked to those files and to the agents that acted (the software, the organisation)."""
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        yield (
            f'<premis:premis xmlns:premis="{PREMIS}" xmlns:xsi="{XSI}" version="3.0" '
            f'xsi:schemaLocation="{PREMIS} http://www.loc.gov/standards/premis/premis.xsd">\n'
        )
        by_record: dict[str, list[str]] = {}
        for e in self.entries:
            if e.record is not None:
                by_record.setdefault(e.record, []).append(e.path)
            yield _premis_object(e)
        n = 0
        for r in self.records:
            for event in self._record_events(r, by_record.get(r.key, [])):
                n += 1
                yield event.xml(n)
        yield _premis_agent(self._software, SOFTWARE, "software")
        yield _premis_agent(self._organisation, self.archivist.name, "organization")
        yield "</premis:premis>\n"

    @property
    def _software(self) -> tuple[str, str]:
        """The PREMIS identifier (type, value) of the software agent."""
        return ("local", f"{SOFTWARE} {VERSION}")

    @property
    def _organisation(self) -> tuple[str, str]:
        """The PREMIS identifier (type, value) of the archival creator."""
        if self.archivist.org_number:
            return ("organisationsnummer", self.archivist.org_number)
        return ("local", self.archivist.name)

    def _record_events(self, r: Summary, files: list[str]) -> list[_Event]:
        """A record's events in order: creation, signatures, the checks at export, transfer."""
        record_xml_path = f"{REP}data/{r.key}/record.xml"
        return [
            self._creation(r, record_xml_path),
            *self._signatures(r, record_xml_path),
            *self._checks(r, files, record_xml_path),
            self._transfer(files),
        ]

    def _creation(self, r: Summary, record_xml_path: str) -> _Event:
        return _Event(
            "creation",
            r.created,
            "success",
            "Handlingen upprättades i Jourpost.",
            [(record_xml_path, "outcome")],
            [(self._organisation, "implementer"), (self._software, "executing program")],
        )

    def _signatures(self, r: Summary, record_xml_path: str) -> list[_Event]:
        return [
            _Event(
                "digital signature generation",
                when,
                "success",
                f"{what}{', av ' + who if who else ''}.",
                [(r.signed_path or record_xml_path, "outcome")],
                [(self._organisation, "implementer"), (self._software, "executing program")],
            )
            for when, what, who in r.signatures
        ]

    def _checks(self, r: Summary, files: list[str], record_xml_path: str) -> list[_Event]:
        """The fixity check of the stored files at export and, for a signed record, the
        signature validation (none when the record was exported unchecked)."""
        if r.checked_at is None:
            return []
        verification = f"{REP}data/{r.key}/verification.json"
        checked = [p for p in files if not p.endswith(("verification.json", "audit.json"))]
        events = [
            _Event(
                "fixity check",
                r.checked_at,
                "success" if r.integrity == "ok" else "failure",
                "SHA-256 och storlek jämförda med de värden som registrerades när filerna "
                f"lagrades; utfall vid kontrolltillfället: {r.integrity}.",
                [(p, "source") for p in checked if p != record_xml_path]
                + [(verification, "outcome")],
                [(self._software, "validator")],
            )
        ]
        if r.signature_verdict is not None:
            events.append(
                _Event(
                    "digital signature validation",
                    r.checked_at,
                    "success" if r.signature_verdict == "valid" else "failure",
                    f"Underskriften verifierad med {SOFTWARE} {VERSION} "
                    f"(pyHanko {_version('pyHanko')}) mot portalens betrodda rötter; "
                    f"utfall vid kontrolltillfället: {r.signature_verdict} "
                    "(gäller den tidpunkten).",
                    [(r.signed_path or record_xml_path, "source"), (verification, "outcome")],
                    [(self._software, "validator")],
                )
            )
        return events

    def _transfer(self, files: list[str]) -> _Event:
        return _Event(
            "transfer",
            self.created,
            "success",
            "Exporterad till e-arkiv i detta paket.",
            [(p, "source") for p in files],
            [(self._software, "executing program"), (self._organisation, "implementer")],
        )


def _premis_object(e: Entry) -> str:
    """A PREMIS file object: its package path, SHA-256, size and format."""
    return (
        '<premis:object xsi:type="premis:file"><premis:objectIdentifier>'
        "<premis:objectIdentifierType>filepath</premis:objectIdentifierType>"
        f"<premis:objectIdentifierValue>{escape(e.path)}</premis:objectIdentifierValue>"
        "</premis:objectIdentifier><premis:objectCharacteristics><premis:fixity>"
        "<premis:messageDigestAlgorithm>SHA-256</premis:messageDigestAlgorithm>"
        f"<premis:messageDigest>{e.sha256}</premis:messageDigest></premis:fixity>"
        f"<premis:size>{e.size}</premis:size><premis:format><premis:formatDesignation>"
        f"<premis:formatName>{escape(e.mime)}</premis:formatName>"
        "</premis:formatDesignation></premis:format></premis:objectCharacteristics>"
        "</premis:object>\n"
    )


def _premis_agent(identifier: tuple[str, str], name: str, kind: str) -> str:
    """A PREMIS agent (the software or the organisation)."""
    id_type, id_value = identifier
    return (
        "<premis:agent><premis:agentIdentifier>"
        f"<premis:agentIdentifierType>{escape(id_type)}</premis:agentIdentifierType>"
        f"<premis:agentIdentifierValue>{escape(id_value)}</premis:agentIdentifierValue>"
        f"</premis:agentIdentifier><premis:agentName>{escape(name)}</premis:agentName>"
        f"<premis:agentType>{kind}</premis:agentType></premis:agent>\n"
    )


@dataclass(frozen=True, slots=True)
class _Event:
    """A PREMIS event about one record's files."""

    type: str
    when: datetime
    outcome: str
    detail: str
    objects: list[tuple[str, str]] = field(default_factory=list)
    """(package path, role)."""
    agents: list[tuple[tuple[str, str], str]] = field(default_factory=list)
    """((identifier type, value), role)."""

    def xml(self, n: int) -> str:
        agents = "".join(
            "<premis:linkingAgentIdentifier>"
            f"<premis:linkingAgentIdentifierType>{escape(t)}</premis:linkingAgentIdentifierType>"
            f"<premis:linkingAgentIdentifierValue>{escape(v)}</premis:linkingAgentIdentifierValue>"
            f"<premis:linkingAgentRole>{escape(role)}</premis:linkingAgentRole>"
            "</premis:linkingAgentIdentifier>"
            for (t, v), role in self.agents
        )
        objects = "".join(
            "<premis:linkingObjectIdentifier>"
            "<premis:linkingObjectIdentifierType>filepath</premis:linkingObjectIdentifierType>"
            f"<premis:linkingObjectIdentifierValue>{escape(path)}"
            "</premis:linkingObjectIdentifierValue>"
            f"<premis:linkingObjectRole>{escape(role)}</premis:linkingObjectRole>"
            "</premis:linkingObjectIdentifier>"
            for path, role in self.objects
        )
        return (
            "<premis:event><premis:eventIdentifier>"
            "<premis:eventIdentifierType>local</premis:eventIdentifierType>"
            f"<premis:eventIdentifierValue>event-{n}</premis:eventIdentifierValue>"
            f"</premis:eventIdentifier><premis:eventType>{escape(self.type)}</premis:eventType>"
            f"<premis:eventDateTime>{_iso(self.when)}</premis:eventDateTime>"
            "<premis:eventDetailInformation>"
            f"<premis:eventDetail>{escape(self.detail)}</premis:eventDetail>"
            "</premis:eventDetailInformation><premis:eventOutcomeInformation>"
            f"<premis:eventOutcome>{self.outcome}</premis:eventOutcome>"
            f"</premis:eventOutcomeInformation>{agents}{objects}</premis:event>\n"
        )


SPOOL_IN_MEMORY = 1 << 20
"""With the check made while copying, each file is read from the store once: into memory up to
this size (beyond it into a temporary file) while the store verifies every segment, the size and
the SHA-256, and copied from there into the package only when it passed."""
COPY_PIECE = 1 << 20
"""Bytes copied into a zip entry at a time."""


@dataclass(frozen=True, slots=True)
class CheckWhileCopying:
    """In place of an Integrity: check each file in the same read that copies it into the
    package, then verify the signature (what `load_records` hands over when checking)."""

    trust_roots: Any
    """The portal's trust roots for the signature verification."""


Loaded = tuple[Record, Integrity | CheckWhileCopying | None, list[dict[str, Any]]]


async def stream_sip(
    records: AsyncIterator[Loaded],
    files: EncryptedObjectStore,
    *,
    label: str,
    archivist: str | Archivist,
    package_id: uuid.UUID | None = None,
    on_record: Callable[[Record], None] | None = None,
    pdf: bool = True,
) -> AsyncIterator[bytes]:
    """Yield the zip of the package as it is written; `records` supplies each record.

    `archivist` is the archival creator (with its organisation number and the submission
    agreement when known). With `pdf`, every record also gets record.pdf, a PDF/A-2b rendition
    of record.xml (about 60 ms each with WeasyPrint; a bulk export can leave it out)."""
    writer = SipWriter(package_id or uuid.uuid4(), label=label, archivist=archivist)
    yield writer.take()
    async for record, integrity, trail in records:
        key = f"{record.kind}-{record.id}"
        base = f"{REP}data/{key}/"
        writer.add_bytes(f"{base}record.xml", record_xml(record), "text/xml", key)
        if pdf:
            rendition = await record_pdf(record, writer.created)
            writer.add_bytes(f"{base}record.pdf", rendition, "application/pdf", key)
        signed_path = None
        if isinstance(integrity, CheckWhileCopying):
            checks: list[FileCheck] = []
            signed_bytes: bytes | None = None
            for i, f in enumerate(record.files, 1):
                path = _file_path(record, f, i, base)
                check = FileCheck(f.name, f.stored.sha256, f.stored.size, True)
                checks.append(check)
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
                    try:
                        async for chunk in read_file(files, f):
                            spool.write(chunk)
                    except StorageError as exc:
                        check.ok, check.problem = False, file_problem(exc)
                        continue  # not exported; verification.json says why
                    if f is record.signed:
                        spool.seek(0)
                        signed_bytes, signed_path = spool.read(), path
                    spool.seek(0)
                    for chunk in _copy_file(writer, spool, f, path, key):
                        yield chunk
            signature = None
            if record.signed is not None:
                signature = await verify_signature(signed_bytes, integrity.trust_roots)
            integrity = Integrity(checks, signature)
        else:
            bad = {(c.name, c.sha256) for c in (integrity.files if integrity else []) if not c.ok}
            for i, f in enumerate(record.files, 1):
                if (f.name, f.stored.sha256) in bad:
                    continue  # a file that failed its check is not exported
                path = _file_path(record, f, i, base)
                async for chunk in _stream_file(writer, files, f, path, key):
                    yield chunk
                if f is record.signed:
                    signed_path = path
        if integrity is not None:
            writer.add_bytes(
                f"{base}verification.json",
                json.dumps(verification_document(integrity), ensure_ascii=False, indent=2).encode(),
                "application/json",
                key,
            )
        writer.add_bytes(
            f"{base}audit.json",
            json.dumps(trail, ensure_ascii=False, indent=1).encode(),
            "application/json",
            key,
        )
        writer.records.append(Summary.of(record, integrity, signed_path))
        if on_record is not None:
            on_record(record)
        yield writer.take()
    writer.finish()
    yield writer.take()


def _file_path(record: Record, f: StoredFile, number: int, base: str) -> str:
    """A stored file's package path: the signed PDF by its name, attachments numbered."""
    if f is record.signed:
        return f"{base}{f.name}"
    return f"{base}attachments/{number:02d}-{_safe(f.name)}"


def _copy_file(
    writer: SipWriter, source: Any, f: StoredFile, path: str, key: str
) -> Iterable[bytes]:
    """Copy a checked file (a spool) into its zip entry, hashing it for the METS on the way."""
    entry, digest = writer.open_stream(path)
    size = 0
    with entry:
        while piece := source.read(COPY_PIECE):
            entry.write(piece)
            digest.update(piece)
            size += len(piece)
            yield writer.take()
    writer.stream_done(path, f.content_type, size, digest.hexdigest(), key)


async def _stream_file(
    writer: SipWriter, files: EncryptedObjectStore, f: StoredFile, path: str, key: str
) -> AsyncIterator[bytes]:
    entry, digest = writer.open_stream(path)
    size = 0
    try:
        async for chunk in read_file(files, f):
            entry.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            yield writer.take()
    finally:
        entry.close()
    writer.stream_done(path, f.content_type, size, digest.hexdigest(), key)


def paths(entries: Iterable[Entry]) -> list[str]:
    """Package paths (for tests and reports)."""
    return [e.path for e in entries]


async def load_records(
    sessionmaker: Any,
    vault: Any,
    files: EncryptedObjectStore,
    refs: Iterable[tuple[str, uuid.UUID]],
    *,
    trust_roots: Sequence[Certificate],
    actor: Any,
    check: bool = True,
    batch: int = 100,
) -> AsyncIterator[Loaded]:
    """Each record with its integrity check and audit trail. Records are read and their exports
    audited in short transactions of `batch` records, so a long export never holds a
    transaction open and memory holds one batch."""
    from portal.archive import service
    from portal.audit import service as audit

    pending = list(refs)
    for start in range(0, len(pending), batch):
        async with sessionmaker() as db, db.begin():
            loaded = await service.load_many_unchecked(db, vault, pending[start : start + batch])
            # One audit entry per exported record, appended for the batch at once; the trails
            # are read after, so each record's trail includes its own export entry.
            await audit.record_many(
                db,
                [
                    audit.NewEntry(
                        "archive.export",
                        actor=actor,
                        owner_org_id=record.owner_org_id,
                        object_type=kind,
                        object_id=record.id,
                    )
                    for kind, record in loaded
                ],
            )
            trails = await service.audit_trails(db, [record.id for _, record in loaded])
        for _, record in loaded:
            # The check is made by stream_sip in the same read that copies each file.
            yield record, CheckWhileCopying(trust_roots) if check else None, trails[record.id]
