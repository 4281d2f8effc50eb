"""The dependency rule (DESIGN.md §3): auth, signing, storage never import portal or each other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("auth", "signing", "storage")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", LIBRARIES)
def test_library_does_not_import_portal_or_siblings(package: str) -> None:
    forbidden = {"portal", *LIBRARIES} - {package}
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & forbidden)
        for f in files
        if _imports(f) & forbidden
    }
    assert offenders == {}


def test_no_module_builds_an_app_at_import_time() -> None:
    for f in (ROOT / "portal").rglob("*.py"):
        tree = ast.parse(f.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                assert name not in {"create_app", "Litestar", "make_engine", "load_settings"}, (
                    f"{f.relative_to(ROOT)} builds {name} at import time"
                )


# The web boundary of a feature: only these modules may import portal.web or Litestar.
WEB_MODULES = {"controllers.py", "schemas.py"}
# Application-level modules that wire the web layer (not features).
WEB_WIRING = {"app.py", "metrics.py", "logs.py"}


def _portal_imports(path: Path) -> set[str]:
    """Every absolute module imported by `path`, dotted, including imports inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_services_do_not_import_the_web_layer() -> None:
    """Services, models and queries run from the CLI and jobs too: no Litestar, no portal.web."""
    portal = ROOT / "portal"
    offenders: dict[str, list[str]] = {}
    for f in portal.rglob("*.py"):
        rel = f.relative_to(portal)
        if rel.parts[0] == "web" or rel.name in WEB_MODULES or str(rel) in WEB_WIRING:
            continue
        if rel.parts[0] == "db" and rel.parts[1:2] == ("migrations",):
            continue
        bad = sorted(
            m
            for m in _portal_imports(f)
            if m.startswith("portal.web") or m.split(".")[0] == "litestar"
        )
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}


# Features that read other features' records; they go through `portal.<feature>.records`.
READERS = ("archive", "retention", "logreview", "stats")


def _models_imported(path: Path) -> set[str]:
    """The `portal.<feature>.models` modules `path` imports, however spelled."""
    found = {m for m in _portal_imports(path) if m.startswith("portal.") and m.endswith(".models")}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("portal.")
            and node.module.count(".") == 1
        ):
            found |= {f"{node.module}.models" for a in node.names if a.name == "models"}
    return found


@pytest.mark.parametrize("reader", READERS)
def test_readers_go_through_records_interfaces(reader: str) -> None:
    """A reader never imports another feature's models (only the shared `portal.db.models`)."""
    files = list((ROOT / "portal" / reader).rglob("*.py"))
    assert files, f"portal/{reader}/ has no modules"
    offenders: dict[str, list[str]] = {}
    for f in files:
        bad = sorted(m for m in _models_imported(f) if m.split(".")[1] not in {reader, "db"})
        if bad:
            offenders[str(f.relative_to(ROOT))] = bad
    assert offenders == {}


# Record features own their tables; the archive reaches them only through `<feature>/records.py`
# (visibility, decryption and labels have one rule per record type).
RECORD_FEATURES = ("advisories", "reports", "decisions", "rosters")


def _imported_names(path: Path) -> set[str]:
    """Every absolute module or name imported by `path`, dotted (`from a import b` gives both
    `a` and `a.b`), including imports inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _reaches_past_records(reader: str, name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "portal" or len(parts) < 3 or parts[1] == reader:
        return False
    if parts[2] == "models":
        return parts[1] != "db"  # shared tables (organisations, audit) are fine
    return parts[1] in RECORD_FEATURES and parts[2] != "records"


@pytest.mark.parametrize("reader", READERS)
def test_reader_uses_nothing_of_a_record_feature_but_records(reader: str) -> None:
    """A reader imports nothing of a record feature but its records.py (no service, no rules,
    no content helpers): that is its one way to their records."""
    files = list((ROOT / "portal" / reader).rglob("*.py"))
    assert files, f"portal/{reader}/ has no modules"
    offenders = {
        str(f.relative_to(ROOT)): bad
        for f in files
        if (bad := sorted(n for n in _imported_names(f) if _reaches_past_records(reader, n)))
    }
    assert offenders == {}


# Readers use one another only where listed, each for one reason: one rule per concern, no web
# of readers calling readers.
READER_LINKS = {
    # Who counts as an archivist (the archive's rule) also decides who may cull and hold.
    ("retention", "portal.archive.service"),
    # The archive's record page places and lifts legal holds through retention's one rule (the
    # same checks, store holds and audit entries as the retention page).
    ("archive", "portal.retention.service"),
}


@pytest.mark.parametrize("reader", READERS)
def test_readers_use_each_other_only_where_listed(reader: str) -> None:
    """A reader imports another reader's module only where READER_LINKS says why."""
    used = set()
    for f in (ROOT / "portal" / reader).rglob("*.py"):
        for name in _imported_names(f):
            parts = name.split(".")
            if len(parts) > 2 and parts[0] == "portal" and parts[1] in set(READERS) - {reader}:
                used.add((reader, ".".join(parts[:3])))
    assert used <= READER_LINKS, used - READER_LINKS


def test_every_record_feature_has_a_records_interface() -> None:
    """advisories, reports, decisions and rosters each expose one records.py."""
    for feature in RECORD_FEATURES:
        assert (ROOT / "portal" / feature / "records.py").is_file(), feature


# -- the feature template (docs/architecture.md, "Feature folders") -----------------------

NOT_FEATURES = {"db", "web"}
"""Folders of portal/ that are shared plumbing, not features."""
TEMPLATE_MODULES = {
    "__init__.py",
    "models.py",
    "service.py",
    "access.py",
    "queries.py",
    "content.py",
    "records.py",
    "schemas.py",
    "controllers.py",
    "cli.py",
}
"""The file roles every feature draws from."""
FEATURE_MODULES = {
    "advisories/texts.py",
    "archive/export.py",
    "attachments/files.py",
    "attachments/store.py",
    "audit/anchor.py",
    "codelists/standard.py",
    "decisions/rules.py",
    "decisions/signing.py",
    "home/night.py",
    "lookup/names.py",
    "police/delegation.py",
    "police/document.py",
    "police/rules.py",
    "police/signing.py",
    "reports/pdf.py",
    "stats/costs.py",
    "stats/periods.py",
    "stats/present.py",
    "stats/synthetic.py",
}
"""Modules with a role of their own, each listed in docs/architecture.md."""
DATA_FOLDERS = {
    "archive/xsd",
    "archive/pdf",
    "stats/data",
    "retention/data",
}
"""Folders of non-Python data besides every feature's templates/, each named in the doc."""


def _features() -> list[Path]:
    return sorted(
        d
        for d in (ROOT / "portal").iterdir()
        if d.is_dir() and d.name not in NOT_FEATURES and not d.name.startswith("__")
    )


def _feature_files(feature: Path) -> list[Path]:
    return sorted(f for f in feature.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def test_every_feature_says_what_it_is() -> None:
    features = _features()
    assert len(features) > 10
    missing = []
    for feature in features:
        init = feature / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text())) if init.is_file() else None
        if not docstring or not docstring.strip():
            missing.append(feature.name)
    assert missing == []


def test_feature_modules_have_template_roles() -> None:
    """Every module is a template role or a feature-specific one listed in the doc; no api.py
    or forms.py (the API lives in controllers.py, forms in schemas.py)."""
    offenders = []
    for feature in _features():
        for f in _feature_files(feature):
            if f.suffix != ".py":
                continue
            rel = f.relative_to(ROOT / "portal").as_posix()
            if f.parent != feature or (
                f.name not in TEMPLATE_MODULES and rel not in FEATURE_MODULES
            ):
                offenders.append(rel)
    assert offenders == []


def test_feature_data_lives_in_named_folders() -> None:
    """Non-Python files only in templates/ or a listed data folder (archive/xsd/, not
    archive/schemas/: schemas is the request/response models' name)."""
    offenders = []
    for feature in _features():
        for f in _feature_files(feature):
            if f.suffix == ".py":
                continue
            rel = f.relative_to(feature)
            top = f"{feature.name}/{rel.parts[0]}"
            if len(rel.parts) < 2 or (rel.parts[0] != "templates" and top not in DATA_FOLDERS):
                offenders.append(f.relative_to(ROOT / "portal").as_posix())
    assert offenders == []


def test_the_doc_lists_the_feature_specific_modules_and_folders() -> None:
    """docs/architecture.md and the lists above agree, both ways."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    section = doc.split("## Feature folders", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+/[a-z_]+\.py)`", section))
    folders = set(re.findall(r"`([a-z_]+/[a-z_]+)/`", section))
    assert named - {f"<feature>/{m}" for m in TEMPLATE_MODULES} == FEATURE_MODULES
    assert folders == DATA_FOLDERS
    for listed in FEATURE_MODULES:
        assert (ROOT / "portal" / listed).is_file(), listed
    for folder in DATA_FOLDERS:
        assert (ROOT / "portal" / folder).is_dir(), folder


CALLER_NAMES = {
    "Principal": "user",
    "CurrentUser": "user",
    "Principal | None": "principal",
    "OptionalPrincipal": "principal",
}


def test_the_caller_has_one_name() -> None:
    """A required caller is `user` and an optional one `principal`, in handlers and services."""
    offenders: list[str] = []
    for f in (ROOT / "portal").rglob("*.py"):
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                wanted = CALLER_NAMES.get(ast.unparse(arg.annotation) if arg.annotation else "")
                if wanted and arg.arg != wanted:
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name}({arg.arg})")
    assert offenders == []
