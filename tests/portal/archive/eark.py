"""Validate an exported package with the `eark-validator` package (E-ARK CSIP 2.0).

eark-validator 1.1.1 ships the CSIP structure rules, the METS XML schemas with the CSIP
extension, and the manifest check (every file referenced from METS exists with the recorded
size and checksum). Its Schematron profiles are not in the wheel, so the profile rules are not
run; FGS-specific requirements beyond CSIP have no validator here (docs/archive.md).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from eark_validator import structure
from eark_validator.infopacks.manifest import Manifest
from eark_validator.mets import MetsValidator


@dataclass
class SipReport:
    """What the validator said, plus the package's files for further checks."""

    root: Path
    """The unpacked package folder."""
    problems: list[str] = field(default_factory=list)
    """Every error (structure, schema, manifest)."""
    data_files: list[str] = field(default_factory=list)
    """Paths (relative to the package root) of every file listed in the representation METS."""

    @property
    def ok(self) -> bool:
        """No error at all."""
        return not self.problems

    def read(self, path: str) -> bytes:
        """A file of the package."""
        return (self.root / path).read_bytes()


def validate_sip(data: bytes, workdir: Path) -> SipReport:
    """Unpack into `workdir`; run the validator's structure, schema and manifest checks."""
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "package.zip"
    archive.write_bytes(data)
    unpacked = workdir / "unpacked"
    with zipfile.ZipFile(archive) as z:
        z.extractall(unpacked)
    roots = [p for p in unpacked.iterdir() if p.is_dir()]
    report = SipReport(roots[0] if len(roots) == 1 else unpacked)

    struct = structure.validate_package_structure(str(archive))
    if struct.status != structure.StructureStatus.WellFormed or struct.errors:
        report.problems += [f"structure: {e}" for e in struct.errors] or [
            "structure: not well formed"
        ]
    if struct.warnings:
        report.problems += [f"structure warning: {w}" for w in struct.warnings]

    root_mets = report.root / "METS.xml"
    if not root_mets.is_file():
        report.problems.append("structure: no root METS.xml")
        return report
    validator = MetsValidator(str(report.root))
    if not validator.validate_mets(str(root_mets)):
        report.problems += [f"schema (root METS): {e}" for e in validator.validation_errors]
    _check(Manifest.from_file_items(str(report.root), validator.file_references), "root", report)
    for rep, href in dict(
        zip(validator.representations, validator.representation_mets, strict=True)
    ).items():
        rep_mets = report.root / href
        rep_validator = MetsValidator(str(rep_mets.parent))
        if not rep_validator.validate_mets(str(rep_mets)):
            report.problems += [
                f"schema ({rep} METS): {e}" for e in rep_validator.validation_errors
            ]
        _check(
            Manifest.from_file_items(str(rep_mets.parent), rep_validator.file_references),
            rep,
            report,
        )
        prefix = rep_mets.parent.relative_to(report.root).as_posix() + "/"
        report.data_files += [prefix + f.path for f in rep_validator.file_references]
    if not report.data_files:
        report.problems.append("no representation with data files")
    return report


def _check(manifest: Manifest, name: str, report: SipReport) -> None:
    ok, issues = manifest.check_integrity()
    if not ok:
        report.problems += [f"manifest ({name}): {i}" for i in issues]
