"""`signing` is a library: it must not import the portal or its sibling packages (DESIGN §3)."""

from __future__ import annotations

import ast
from pathlib import Path

import signing

FORBIDDEN = {"portal", "auth", "storage"}


def test_signing_imports_no_portal_auth_or_storage() -> None:
    package = Path(signing.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(package.glob("*.py"))) >= 7  # the scan did look at the modules
