"""E-archive export: an E-ARK SIP (CSIP 2.0 / FGS Paketstruktur 2.0) streamed as a zip.

Layout of the package (one representation holding every exported record):

    <package>/METS.xml                                root METS (CSIP profile, SIP package type)
    <package>/metadata/descriptive/records.xml        one <record> per record: type, id, dates
    <package>/metadata/preservation/premis.xml        PREMIS objects, events and agents
    <package>/schemas/                                (empty: the schemas are the public ones)
    <package>/representations/rep1/METS.xml           representation METS: every data file
    <package>/representations/rep1/metadata/          (empty)
    <package>/representations/rep1/data/<type>-<id>/
        record.xml            the record: content, versions, receipts (UTF-8 XML)
        beslut-<id>.pdf       decisions: the signed PDF/A (PAdES-B-LTA), as stored
        attachments/...       the record's attachments, as stored
        verification.json     the integrity check and signature verification done at export
        audit.json            the audit-log entries that name the record (with their hashes)

Every file has a SHA-256 checksum and size in a METS file. The zip is written entry by entry
into a small buffer that is handed to the caller after each chunk, so memory stays bounded by the
largest chunk plus the list of file descriptions, whatever the number or size of records.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from portal.archive.service import Integrity, Record, StoredFile, read_file, verification_json

METS = "http://www.loc.gov/METS/"
CSIP = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
SIP = "https://DILCIS.eu/XML/METS/SIPExtensionMETS"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS = "http://www.loc.gov/premis/v3"
for prefix, uri in (
    ("mets", METS),
    ("csip", CSIP),
    ("sip", SIP),
    ("xlink", XLINK),
    ("xsi", XSI),
    ("premis", PREMIS),
):
    ET.register_namespace(prefix, uri)
SCHEMAS = ("mets.xsd", "xlink.xsd", "DILCISExtensionMETS.xsd", "DILCISExtensionSIPMETS.xsd")
SOFTWARE = "Jourpost"
VERSION = "0.1.0"


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
    signatures: tuple[tuple[datetime, str], ...]
    """Signature events (when, what)."""
    signature_checked: bool
    """The check included a signature verification."""

    @classmethod
    def of(cls, record: Record, integrity: Integrity | None) -> Summary:
        """Summarise a record that has been written."""
        state = "unknown" if integrity is None else ("ok" if integrity.ok else "failed")
        return cls(
            record.kind,
            record.id,
            record.owner_org_id,
            record.title,
            record.date,
            record.created_at,
            state,
            tuple(
                (when, what) for what, when, _ in record.receipts if what.startswith("Underskriven")
            ),
            integrity is not None and integrity.signature is not None,
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
    """A schema shipped with the package (METS: CC0; xlink: LoC; DILCIS extensions: E-ARK)."""
    from importlib import resources

    return resources.files("portal.archive").joinpath(f"schemas/{name}").read_bytes()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _xml(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def record_xml(record: Record) -> bytes:
    """The record's content, versions and receipts as XML."""
    root = ET.Element(
        "record", {"type": record.kind, "id": str(record.id), "owner": str(record.owner_org_id)}
    )
    ET.SubElement(root, "title").text = record.title
    ET.SubElement(root, "date").text = _iso(record.date)
    ET.SubElement(root, "created").text = _iso(record.created_at)
    content = ET.SubElement(root, "content")
    for label, value in record.facts:
        ET.SubElement(content, "field", {"label": label}).text = value
    versions = ET.SubElement(root, "versions")
    for what, when, who in record.versions:
        ET.SubElement(versions, "version", {"at": _iso(when), "by": who}).text = what
    receipts = ET.SubElement(root, "receipts")
    for what, when, who in record.receipts:
        ET.SubElement(receipts, "receipt", {"at": _iso(when), "by": who}).text = what
    files = ET.SubElement(root, "files")
    for f in record.files:
        ET.SubElement(
            files,
            "file",
            {"name": f.name, "sha256": f.stored.sha256, "size": str(f.stored.size)},
        )
    return _xml(root)


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
    from portal.web.datetimes import format_local
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


class SipWriter:
    """Writes the package into a zip, entry by entry; `take()` returns what is ready."""

    def __init__(self, package_id: uuid.UUID, *, label: str, archivist: str) -> None:
        self.package_id = package_id
        self.root = f"jourpost-sip-{package_id}"
        self.label = label
        self.archivist = archivist
        self.created = datetime.now(UTC)
        self.entries: list[Entry] = []
        self.records: list[Summary] = []
        self._buffer = _Buffer()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_DEFLATED)
        self._zip.writestr(f"{self.root}/representations/rep1/metadata/", b"")
        for folder in ("schemas/", "representations/rep1/schemas/"):
            for xsd in SCHEMAS:
                self.add_bytes(f"{folder}{xsd}", _schema(xsd), "application/xml")

    def take(self) -> bytes:
        """The zip bytes written since the last call."""
        return self._buffer.take()

    def add_bytes(self, path: str, data: bytes, mime: str, record: str | None = None) -> None:
        """A small file from memory."""
        self._zip.writestr(f"{self.root}/{path}", data)
        self.entries.append(Entry(path, mime, len(data), hashlib.sha256(data).hexdigest(), record))

    def open_stream(self, path: str) -> tuple[Any, Any]:
        """A writable entry for a large file, and a running hash (close the entry when done)."""
        return self._zip.open(f"{self.root}/{path}", "w", force_zip64=True), hashlib.sha256()

    def stream_done(self, path: str, mime: str, size: int, digest: str, record: str) -> None:
        """Register a streamed file."""
        self.entries.append(Entry(path, mime, size, digest, record))

    def finish(self) -> None:
        """Write the representation METS, the metadata and the root METS; close the zip.

        The three large files (one line per file or record) are streamed into their entries as
        text, never built as a tree, so their size does not count against memory."""
        rep = "representations/rep1/"
        rep_entries = [e for e in self.entries if e.path.startswith(rep)]
        self._write_text(f"{rep}METS.xml", self._rep_mets(rep_entries, rep))
        self._write_text("metadata/descriptive/records.xml", self._descriptive())
        self._write_text("metadata/preservation/premis.xml", self._premis())
        by_path = {e.path: e for e in self.entries[-3:]}
        root_mets = self._mets(
            self.root,
            self.label,
            file_groups=[("Representations/rep1", [(by_path[f"{rep}METS.xml"], f"{rep}METS.xml")])],
            struct=[("Representations/rep1", f"{rep}METS.xml")],
            dmd=by_path["metadata/descriptive/records.xml"],
            premis=by_path["metadata/preservation/premis.xml"],
        )
        self._zip.writestr(f"{self.root}/METS.xml", root_mets)
        self._zip.close()

    def _write_text(self, path: str, chunks: Iterable[str], mime: str = "text/xml") -> None:
        entry, digest = self.open_stream(path)
        size = 0
        with entry:
            for chunk in chunks:
                data = chunk.encode("utf-8")
                entry.write(data)
                digest.update(data)
                size += len(data)
        self.entries.append(Entry(path, mime, size, digest.hexdigest()))

    def _header(self, objid: str, label: str) -> str:
        attrs = {
            "xmlns:mets": METS,
            "xmlns:csip": CSIP,
            "xmlns:sip": SIP,
            "xmlns:xlink": XLINK,
            "xmlns:xsi": XSI,
            "OBJID": objid,
            "LABEL": label,
            "TYPE": "OTHER",
            "csip:OTHERTYPE": "Socialtjänstens jourhandlingar (Jourpost)",
            "csip:CONTENTINFORMATIONTYPE": "OTHER",
            "csip:OTHERCONTENTINFORMATIONTYPE": "FGS Paketstruktur 2.0",
            "PROFILE": "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml",
        }
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<mets:mets{_attrs(attrs)}>"
            f'<mets:metsHdr CREATEDATE="{_iso(self.created)}" RECORDSTATUS="NEW" '
            'csip:OAISPACKAGETYPE="SIP">'
            '<mets:agent ROLE="CREATOR" TYPE="OTHER" OTHERTYPE="SOFTWARE">'
            f"<mets:name>{SOFTWARE}</mets:name>"
            f'<mets:note csip:NOTETYPE="SOFTWARE VERSION">{VERSION}</mets:note></mets:agent>'
            '<mets:agent ROLE="ARCHIVIST" TYPE="ORGANIZATION">'
            f"<mets:name>{escape(self.archivist)}</mets:name></mets:agent></mets:metsHdr>\n"
        )

    def _rep_mets(self, entries: list[Entry], rep: str) -> Iterable[str]:
        objid = f"{self.root}-rep1"
        yield self._header(objid, "Representation rep1")
        yield '<mets:fileSec ID="filesec-1"><mets:fileGrp ID="grp-1" USE="Data">\n'
        for i, e in enumerate(entries, 1):
            href = _attrs({"xlink:href": e.path[len(rep) :]})
            yield (
                f'<mets:file ID="file-1-{i}"{_attrs(self._file_attrs(e))}>'
                f'<mets:FLocat LOCTYPE="URL" xlink:type="simple"{href}/></mets:file>\n'
            )
        yield "</mets:fileGrp></mets:fileSec>\n"
        yield (
            '<mets:structMap ID="struct-1" TYPE="PHYSICAL" LABEL="CSIP">'
            f'<mets:div ID="div-root"{_attrs({"LABEL": objid})}>'
            '<mets:div ID="div-1" LABEL="Data">\n'
        )
        for i in range(1, len(entries) + 1):
            yield f'<mets:fptr FILEID="file-1-{i}"/>\n'
        yield "</mets:div></mets:div></mets:structMap></mets:mets>\n"

    def _file_attrs(self, e: Entry) -> dict[str, str]:
        return {
            "MIMETYPE": e.mime,
            "SIZE": str(e.size),
            "CREATED": _iso(self.created),
            "CHECKSUM": e.sha256,
            "CHECKSUMTYPE": "SHA-256",
        }

    def _mets(
        self,
        objid: str,
        label: str,
        *,
        file_groups: list[tuple[str, list[tuple[Entry, str]]]],
        struct: list[tuple[str, str | None]],
        dmd: Entry | None = None,
        premis: Entry | None = None,
    ) -> bytes:
        m = ET.Element(
            _q(METS, "mets"),
            {
                "OBJID": objid,
                "LABEL": label,
                "TYPE": "OTHER",
                _q(CSIP, "OTHERTYPE"): "Socialtjänstens jourhandlingar (Jourpost)",
                _q(CSIP, "CONTENTINFORMATIONTYPE"): "OTHER",
                _q(CSIP, "OTHERCONTENTINFORMATIONTYPE"): "FGS Paketstruktur 2.0",
                "PROFILE": "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml",
                _q(XSI, "schemaLocation"): (
                    f"{METS} http://www.loc.gov/standards/mets/mets.xsd "
                    f"{XLINK} http://www.loc.gov/standards/mets/xlink.xsd "
                    f"{CSIP} https://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd "
                    f"{SIP} https://earksip.dilcis.eu/schema/DILCISExtensionSIPMETS.xsd"
                ),
            },
        )
        hdr = ET.SubElement(
            m,
            _q(METS, "metsHdr"),
            {
                "CREATEDATE": _iso(self.created),
                "RECORDSTATUS": "NEW",
                _q(CSIP, "OAISPACKAGETYPE"): "SIP",
            },
        )
        creator = ET.SubElement(
            hdr, _q(METS, "agent"), {"ROLE": "CREATOR", "TYPE": "OTHER", "OTHERTYPE": "SOFTWARE"}
        )
        ET.SubElement(creator, _q(METS, "name")).text = SOFTWARE
        ET.SubElement(
            creator, _q(METS, "note"), {_q(CSIP, "NOTETYPE"): "SOFTWARE VERSION"}
        ).text = VERSION
        archivist = ET.SubElement(
            hdr, _q(METS, "agent"), {"ROLE": "ARCHIVIST", "TYPE": "ORGANIZATION"}
        )
        ET.SubElement(archivist, _q(METS, "name")).text = self.archivist
        if dmd is not None:
            sec = ET.SubElement(
                m, _q(METS, "dmdSec"), {"ID": "dmd-records", "CREATED": _iso(self.created)}
            )
            ET.SubElement(
                sec,
                _q(METS, "mdRef"),
                {
                    "LOCTYPE": "URL",
                    _q(XLINK, "type"): "simple",
                    _q(XLINK, "href"): dmd.path,
                    "MDTYPE": "OTHER",
                    "OTHERMDTYPE": "JOURPOST-RECORDS",
                    **self._file_attrs(dmd),
                },
            )
        if premis is not None:
            amd = ET.SubElement(m, _q(METS, "amdSec"), {"ID": "amd-1"})
            dp = ET.SubElement(
                amd, _q(METS, "digiprovMD"), {"ID": "digiprov-premis", "STATUS": "CURRENT"}
            )
            ET.SubElement(
                dp,
                _q(METS, "mdRef"),
                {
                    "LOCTYPE": "URL",
                    _q(XLINK, "type"): "simple",
                    _q(XLINK, "href"): premis.path,
                    "MDTYPE": "PREMIS",
                    **self._file_attrs(premis),
                },
            )
        fsec = ET.SubElement(m, _q(METS, "fileSec"), {"ID": "filesec-1"})
        for n, (use, files) in enumerate(file_groups, 1):
            grp = ET.SubElement(fsec, _q(METS, "fileGrp"), {"ID": f"grp-{n}", "USE": use})
            for i, (e, href) in enumerate(files, 1):
                f = ET.SubElement(
                    grp, _q(METS, "file"), {"ID": f"file-{n}-{i}", **self._file_attrs(e)}
                )
                ET.SubElement(
                    f,
                    _q(METS, "FLocat"),
                    {"LOCTYPE": "URL", _q(XLINK, "type"): "simple", _q(XLINK, "href"): href},
                )
        smap = ET.SubElement(
            m, _q(METS, "structMap"), {"ID": "struct-1", "TYPE": "PHYSICAL", "LABEL": "CSIP"}
        )
        top = ET.SubElement(smap, _q(METS, "div"), {"ID": "div-root", "LABEL": objid})
        if dmd is not None or premis is not None:
            attrs = {"ID": "div-metadata", "LABEL": "Metadata"}
            if dmd is not None:
                attrs["DMDID"] = "dmd-records"
            if premis is not None:
                attrs["ADMID"] = "digiprov-premis"
            ET.SubElement(top, _q(METS, "div"), attrs)
        for n, (label_, mptr) in enumerate(struct, 1):
            div = ET.SubElement(top, _q(METS, "div"), {"ID": f"div-{n}", "LABEL": label_})
            if mptr is None:
                for i, _ in enumerate(file_groups[n - 1][1], 1):
                    ET.SubElement(div, _q(METS, "fptr"), {"FILEID": f"file-{n}-{i}"})
            else:
                ET.SubElement(
                    div,
                    _q(METS, "mptr"),
                    {
                        "LOCTYPE": "URL",
                        _q(XLINK, "type"): "simple",
                        _q(XLINK, "href"): mptr,
                        _q(XLINK, "title"): label_,
                    },
                )
        return _xml(m)

    def _descriptive(self) -> Iterable[str]:
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        yield f'<records package="{self.package_id}" created="{_iso(self.created)}">\n'
        for r in self.records:
            attrs = {
                "type": r.kind,
                "id": str(r.id),
                "owner": str(r.owner),
                "date": _iso(r.date),
                "created": _iso(r.created),
                "integrity": r.integrity,
                "path": f"representations/rep1/data/{r.kind}-{r.id}/",
            }
            yield f"<record{_attrs(attrs)}>{escape(r.title)}</record>\n"
        yield "</records>\n"

    def _premis(self) -> Iterable[str]:
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        yield f'<premis:premis xmlns:premis="{PREMIS}" xmlns:xsi="{XSI}" version="3.0">\n'
        for e in self.entries:
            yield (
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
        n = 0
        for r in self.records:
            events: list[tuple[str, datetime, str, str]] = [
                ("creation", r.created, "success", "Upprättad i Jourpost")
            ]
            events += [
                ("digital signature generation", w, "success", what) for w, what in r.signatures
            ]
            if r.integrity != "unknown":
                note = "SHA-256 och storlek kontrollerade"
                if r.signature_checked:
                    note += "; underskrift verifierad"
                events.append(
                    (
                        "fixity check",
                        self.created,
                        "success" if r.integrity == "ok" else "failure",
                        note,
                    )
                )
            events.append(("transfer", self.created, "success", "Exporterad till e-arkiv"))
            for etype, when, outcome, note in events:
                n += 1
                yield (
                    "<premis:event><premis:eventIdentifier>"
                    "<premis:eventIdentifierType>local</premis:eventIdentifierType>"
                    f"<premis:eventIdentifierValue>event-{n}</premis:eventIdentifierValue>"
                    f"</premis:eventIdentifier><premis:eventType>{etype}</premis:eventType>"
                    f"<premis:eventDateTime>{_iso(when)}</premis:eventDateTime>"
                    "<premis:eventDetailInformation>"
                    f"<premis:eventDetail>{escape(note)}</premis:eventDetail>"
                    "</premis:eventDetailInformation><premis:eventOutcomeInformation>"
                    f"<premis:eventOutcome>{outcome}</premis:eventOutcome>"
                    "</premis:eventOutcomeInformation><premis:linkingObjectIdentifier>"
                    "<premis:linkingObjectIdentifierType>filepath</premis:linkingObjectIdentifierType>"
                    "<premis:linkingObjectIdentifierValue>"
                    f"representations/rep1/data/{r.kind}-{r.id}/record.xml"
                    "</premis:linkingObjectIdentifierValue></premis:linkingObjectIdentifier>"
                    "</premis:event>\n"
                )
        yield (
            "<premis:agent><premis:agentIdentifier>"
            "<premis:agentIdentifierType>local</premis:agentIdentifierType>"
            f"<premis:agentIdentifierValue>{SOFTWARE} {VERSION}</premis:agentIdentifierValue>"
            f"</premis:agentIdentifier><premis:agentName>{SOFTWARE}</premis:agentName>"
            "<premis:agentType>software</premis:agentType></premis:agent>\n"
        )
        yield "</premis:premis>\n"


Loaded = tuple[Record, Integrity | None, list[dict[str, Any]]]


async def stream_sip(
    records: AsyncIterator[Loaded],
    files: Any,
    *,
    label: str,
    archivist: str,
    package_id: uuid.UUID | None = None,
    on_record: Callable[[Record], None] | None = None,
    pdf: bool = True,
) -> AsyncIterator[bytes]:
    """Yield the zip of the package as it is written; `records` supplies each record.

    With `pdf`, every record also gets record.pdf, a PDF/A-2b rendition of record.xml (about
    60 ms each with WeasyPrint; a bulk export can leave it out)."""
    writer = SipWriter(package_id or uuid.uuid4(), label=label, archivist=archivist)
    yield writer.take()
    async for record, integrity, trail in records:
        key = f"{record.kind}-{record.id}"
        base = f"representations/rep1/data/{key}/"
        writer.add_bytes(f"{base}record.xml", record_xml(record), "text/xml", key)
        if pdf:
            rendition = await record_pdf(record, writer.created)
            writer.add_bytes(f"{base}record.pdf", rendition, "application/pdf", key)
        bad = {(c.name, c.sha256) for c in (integrity.files if integrity else []) if not c.ok}
        for i, f in enumerate(record.files, 1):
            if (f.name, f.stored.sha256) in bad:
                continue  # a file that failed its check is not exported; verification.json says so
            path = (
                f"{base}{f.name}"
                if f is record.signed
                else f"{base}attachments/{i:02d}-{_safe(f.name)}"
            )
            async for chunk in _stream_file(writer, files, f, path, key):
                yield chunk
        if integrity is not None:
            writer.add_bytes(
                f"{base}verification.json",
                verification_json(integrity).encode(),
                "application/json",
                key,
            )
        writer.add_bytes(
            f"{base}audit.json",
            json.dumps(trail, ensure_ascii=False, indent=1).encode(),
            "application/json",
            key,
        )
        writer.records.append(Summary.of(record, integrity))
        if on_record is not None:
            on_record(record)
        yield writer.take()
    writer.finish()
    yield writer.take()


async def _stream_file(
    writer: SipWriter, files: Any, f: StoredFile, path: str, key: str
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
    files: Any,
    refs: Iterable[tuple[str, uuid.UUID]],
    *,
    trust_roots: Any,
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
        loaded: list[tuple[Record, list[dict[str, Any]]]] = []
        async with sessionmaker() as db, db.begin():
            for kind, record_id in pending[start : start + batch]:
                record = await service.load_unchecked(db, vault, kind, record_id)
                if record is None:
                    continue
                await audit.record(
                    db,
                    "archive.export",
                    actor=actor,
                    owner_org_id=record.owner_org_id,
                    object_type=kind,
                    object_id=record.id,
                )
                loaded.append((record, await service.audit_trail(db, record.id)))
        for record, trail in loaded:
            integrity = await service.check(files, record, trust_roots) if check else None
            yield record, integrity, trail
