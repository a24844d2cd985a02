"""Connectors import only the connector protocol and the X12 layer of rcm (STYLE.md): never claim tables,
tenants, keys or settings. import-linter checks the known packages; this walks every module of every
integrations/ package, so a package added to rcm later is covered the day it lands."""

from __future__ import annotations

import ast
from pathlib import Path

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"
ALLOWED = ("rcm.payers.connector", "rcm.x12")


def _rcm_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "rcm")
    return {n for n in names if n == "rcm" or n.startswith("rcm.")}


def test_connectors_import_only_the_protocol_and_x12() -> None:
    modules = sorted(INTEGRATIONS.glob("*/**/*.py"))
    assert {p.relative_to(INTEGRATIONS).parts[0] for p in modules} >= {
        "sftp_clearinghouse",
        "rest_clearinghouse",
    }
    wrong = {
        f"{path.relative_to(INTEGRATIONS)}: {name}"
        for path in modules
        for name in _rcm_imports(path)
        if not any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED)
    }
    assert wrong == set()
