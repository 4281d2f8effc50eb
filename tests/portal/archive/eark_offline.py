"""Run eark-validator 1.1.3 on an unpacked package, offline; print its findings as JSON.

Runs in the validator's own virtualenv (`.venv/eark-validator`, made by infra/setup.sh from
infra/eark-validator.txt): eark-validator 1.1.3 pins lxml==5.1.0, which the project's pyHanko
(lxml>=5.4) cannot share. Imports nothing from the project.

At import, eark-validator 1.1.3 builds its Schematron vocabulary tests by fetching four CSIP
vocabularies with `urllib.request.urlopen`. Exactly those four URLs are answered here from the
copies shipped in the wheel (`eark_validator/ipxml/resources/vocabs/`); any other URL fails, so
the run never reaches the network.

    python eark_offline.py PACKAGE_DIR 2.1.0 2.0.4

For each spec version: the structure checks, the METS schema validation of the root METS and
the CSIP profile plus the SIP profile (Schematron) on the root METS, exactly as
`eark_validator.packages.PackageValidator` runs them; then the CSIP profile on every
representation METS too. Output: {"validator": ..., "runs": [{"version", "results": [...]}]}.
"""

from __future__ import annotations

import io
import json
import sys
import urllib.request
from importlib import metadata, resources
from pathlib import Path
from typing import Any

VOCABULARIES = {
    f"https://earkcsip.dilcis.eu/schema/CSIPVocabulary{name}.xml": f"CSIPVocabulary{name}.xml"
    for name in ("ContentCategory", "ContentInformationType", "OAISPackageType", "Status")
}
_real_urlopen = urllib.request.urlopen


def _offline_urlopen(url: Any, *args: Any, **kwargs: Any) -> Any:
    target = url if isinstance(url, str) else url.full_url
    if target not in VOCABULARIES:
        raise OSError(f"eark_offline: no network here, refusing {target}")
    data = (
        resources.files("eark_validator.ipxml.resources.vocabs")
        .joinpath(VOCABULARIES[target])
        .read_bytes()
    )
    return io.BytesIO(data)


def _results(items: Any, where: str) -> list[dict[str, Any]]:
    return [
        {
            "where": where,
            "rule_id": r.rule_id,
            "severity": getattr(r.severity, "value", str(r.severity)),
            "message": r.message,
            "location": r.location,
        }
        for r in items
    ]


def run(package: Path, version_name: str) -> dict[str, Any]:
    from eark_validator import packages
    from eark_validator.mets import MetsValidator
    from eark_validator.rules import ValidationProfile
    from eark_validator.specifications.specification import (
        SpecificationType,
        SpecificationVersion,
    )

    version = SpecificationVersion(f"V{version_name}")
    report = packages.PackageValidator(package, version).validation_report
    out: list[dict[str, Any]] = []
    structure = report.structure
    out += _results(structure.messages if structure else [], "structure")
    if report.metadata is not None:
        out += _results(report.metadata.schema_results.messages, "METS.xml schema")
        out += _results(report.metadata.schematron_results.messages, "METS.xml")
    reps = MetsValidator(str(package))
    reps.validate_mets("METS.xml")
    for href in reps.representation_mets:
        mets = package / href
        schema = MetsValidator(str(mets.parent))
        schema.validate_mets(str(mets))
        out += _results(schema.validation_errors, f"{href} schema")
        profile = ValidationProfile(SpecificationType.CSIP, version)
        profile.validate(str(mets))
        out += _results(profile.get_all_results(), href)
    return {
        "version": version_name,
        "structure": structure.status.value if structure else None,
        "results": out,
    }


def main(argv: list[str]) -> int:
    urllib.request.urlopen = _offline_urlopen  # before eark_validator's schematron module loads
    try:
        package = Path(argv[1]).resolve()
        runs = [run(package, v) for v in argv[2:]]
    finally:
        urllib.request.urlopen = _real_urlopen
    json.dump(
        {"validator": f"eark-validator {metadata.version('eark-validator')}", "runs": runs},
        sys.stdout,
        ensure_ascii=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
