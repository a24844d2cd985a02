"""The repository is the only door to SQL: no ``session.execute`` / ``connection.execute`` and no raw asyncpg
outside repository modules (``repository.py``, ``*_repository.py``, ``*_store.py``) and the database kit.

Walks the AST of every module of ``src/rcm``. A module outside those that still runs SQL must be on the
allow-list below, each entry with its reason (operator DDL and probes that read no tenant table); the
allow-list must shrink, never grow without a reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rcm

SRC = Path(rcm.__file__).parent

# Calls that send SQL when made on a session, connection or asyncpg pool/connection. (Result objects also
# have ``scalars``; only calls on a session/connection-like receiver count.)
SQL_CALLS = frozenset(
    {
        "execute",
        "executemany",
        "exec_driver_sql",
        "scalar",
        "scalars",
        "stream",
        "stream_scalars",
        "fetch",
        "fetchrow",
        "fetchval",
        "copy_records_to_table",
        "copy_to_table",
    }
)
RECEIVER_WORDS = ("session", "conn", "bind", "pool", "cursor")

# The database kit: engine and per-transaction tenant binding, RLS DDL, the repository base itself.
KIT = frozenset({"kit/db.py", "kit/rls.py", "kit/repository.py"})

# Modules outside repositories that may still run SQL, with why. Keep it short.
ALLOWED: dict[str, str] = {
    "kit/bootstrap.py": "operator DDL: creates and grants the database roles (CREATE ROLE is no tenant data)",
    "kit/health.py": "readiness probe: SELECT of the migration version, no tenant table",
    "kit/migrations.py": "autogenerate comparison: reads pg_class for partition names, no tenant data",
    "worker/scheduler.py": "advisory locks that elect one scheduler replica; no table is read",
}


def is_repository_module(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return name == "repository.py" or name.endswith(("_repository.py", "_store.py")) or relative in KIT


def _receiver(node: ast.expr) -> str:
    """The name a call is made on: ``self.session.execute`` -> ``session``, ``(await x).scalars`` -> ``""``
    (a Result's own method, not SQL)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def sql_calls(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        ):
            receiver = _receiver(node.func.value).lower()
            if any(word in receiver for word in RECEIVER_WORDS):
                found.append((node.lineno, f"{receiver}.{node.func.attr}"))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] == "asyncpg"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "asyncpg":
            found.append((node.lineno, f"from {node.module} import"))
    return found


def offenders() -> dict[str, list[tuple[int, str]]]:
    result: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if is_repository_module(relative):
            continue
        calls = sql_calls(ast.parse(path.read_text(), filename=str(path)))
        if calls:
            result[relative] = calls
    return result


def test_sql_runs_only_in_repositories() -> None:
    found = offenders()
    unexplained = {module: calls for module, calls in found.items() if module not in ALLOWED}
    assert not unexplained, (
        f"SQL outside a repository (move it, or allow-list it with a reason): {unexplained}"
    )


def test_the_allow_list_holds_only_modules_that_still_need_it() -> None:
    found = offenders()
    stale = sorted(module for module in ALLOWED if module not in found)
    assert not stale, f"no longer runs SQL, drop it from the allow-list: {stale}"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_lint_sees_what_it_must() -> None:
    """The walker itself: each forbidden form is caught, and a Result's own methods are not."""
    source = """
import asyncpg
from asyncpg.pool import Pool
async def f(session, conn, self):
    await session.execute(stmt)
    await self.session.execute(stmt)
    await conn.fetchrow("SELECT 1")
    await self.connection.exec_driver_sql("SELECT 1")
    (await session.execute(stmt)).scalars()
    result.scalars()
"""
    calls = [call for _, call in sql_calls(ast.parse(source))]
    assert calls == [
        "import asyncpg",
        "from asyncpg.pool import",
        "session.execute",
        "session.execute",
        "conn.fetchrow",
        "connection.exec_driver_sql",
        "session.execute",
    ]
    assert is_repository_module("patients/repository.py")
    assert is_repository_module("identity/break_glass_store.py")
    assert is_repository_module("kit/db.py")
    assert not is_repository_module("encounters/service.py")
