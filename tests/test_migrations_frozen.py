"""A revision freezes its DDL: what it does may never change because live code changed.

Rules, checked on the source of every file in migrations/versions:
- Imports only from the standard library, ``alembic`` and ``sqlalchemy`` (pinned third-party libraries,
  stable APIs). Nothing from ``rcm``, not even the role-name constants of ``rcm.config``: a revision that
  granted to ``rcm_app`` must keep granting to ``rcm_app``; renaming a role is itself a new revision.
- No dynamic imports (``importlib``, ``__import__``), which would dodge the first rule.
- DDL through ``op.execute`` (plain SQL) only. ``op.create_table``, ``op.create_index`` and the like render
  through SQLAlchemy under the naming convention that env.py hands them from the live models, so an unnamed
  constraint's name would change whenever the models' convention did.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from rcm.kit.package_data import data_path

ALLOWED_MODULES = frozenset({"__future__", "alembic", "sqlalchemy"}) | frozenset(sys.stdlib_module_names)
ALLOWED_OPS = frozenset({"execute", "get_bind"})
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def violations(source: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = ["." if node.level else (node.module or "")]
        for module in modules:
            if module.split(".")[0] not in ALLOWED_MODULES:
                found.append((node.lineno, f"imports {module}"))
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "op"
            and node.attr not in ALLOWED_OPS
        ):
            found.append((node.lineno, f"op.{node.attr} (write the DDL as SQL for op.execute)"))
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in DYNAMIC_IMPORTS:
                found.append((node.lineno, "dynamic import"))
    return [f"line {line}: {problem}" for line, problem in sorted(found)]


def revision_files() -> list[Path]:
    return sorted(data_path("migrations", "versions").glob("*.py"))


def test_every_revision_freezes_its_ddl() -> None:
    files = revision_files()
    assert len(files) >= 9
    found = {path.name: violations(path.read_text()) for path in files}
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_rule_catches_live_imports_and_rendered_ddl() -> None:
    source = """
from alembic import op
import rcm.config
from rcm.kit.rls import tenant_table_ddl
from . import helpers
import importlib

def upgrade():
    op.create_table("t")
    op.execute("SELECT 1")
    importlib.import_module("rcm.kit.rls")
"""
    assert violations(source) == [
        "line 3: imports rcm.config",
        "line 4: imports rcm.kit.rls",
        "line 5: imports .",
        "line 9: op.create_table (write the DDL as SQL for op.execute)",
        "line 11: dynamic import",
    ]
