"""Mutation testing of the access-control code: would a test notice if an access rule broke?

    make mutate                                   # every target module, its focused tests
    .venv/bin/python bench/mutate.py --module src/rcm/identity/access.py --max 20
    .venv/bin/python bench/mutate.py --list-only  # the mutants, nothing run

A small AST mutator rather than mutmut: mutmut forks per mutant and the children inherit dead asyncpg pools
and event loops, so every mutant here runs in a FRESH pytest process (``-x -q -p no:cacheprovider``, a
timeout each) over the tests that guard the module. One mutant at a time: the test database's name comes
from the checkout's path, so two runs in one checkout would drop each other's database.

Each mutant is written over the module in place and the original is put back afterwards, on Ctrl+C too (a
backup ``<file>.mutate-orig`` sits beside it while a mutant is live; a run that finds one left by a killed
run restores it first). Known-equivalent mutants, with the reason each cannot be told apart, are listed in
``bench/mutate_equivalent.toml`` and left out of the kill rate.

Needs RCM_TEST_DATABASE_URL like the tests (the embedded server is too slow to start per mutant). Kept out
of CI: a full run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import ast
import copy
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = ROOT / "bench" / "mutate_equivalent.toml"
BACKUP_SUFFIX = ".mutate-orig"

# Each access-control module and the tests that guard it (kept focused: each mutant runs them afresh).
TARGETS: dict[str, list[str]] = {
    "src/rcm/identity/access.py": [
        "tests/identity/test_access.py",
        "tests/identity/test_access_rules.py",
        "tests/identity/test_break_glass.py",
        "tests/tenancy",
    ],
    "src/rcm/identity/guards.py": [
        "tests/identity/test_access_rules.py",
        "tests/identity/test_guards.py",
        "tests/identity/test_break_glass.py",
    ],
    "src/rcm/identity/break_glass.py": [
        "tests/identity/test_break_glass_rules.py",
        "tests/identity/test_break_glass_store.py",
        "tests/identity/test_break_glass.py",
        "tests/identity/test_access.py",
    ],
    "src/rcm/identity/break_glass_store.py": [
        "tests/identity/test_break_glass_store.py",
        "tests/identity/test_break_glass_rules.py",
        "tests/identity/test_access_rules.py",
        "tests/identity/test_break_glass.py",
        "tests/identity/test_access.py",
    ],
    "src/rcm/identity/status.py": [
        "tests/identity/test_status_rules.py",
        "tests/identity/test_revocation.py",
        "tests/identity/test_auditor_scope.py",
    ],
    "src/rcm/tenancy/scope.py": [
        "tests/identity/test_access_rules.py",
        "tests/tenancy",
        "tests/encounters/test_intake.py",
    ],
    "src/rcm/tenancy/dependencies.py": [
        "tests/identity/test_access_rules.py",
        "tests/tenancy",
        "tests/identity/test_break_glass.py",
        "tests/isolation/test_route_matrix.py",
        "tests/fhir/test_broken.py",  # the home-practice scope of /fhir/r4 (a token's own practice)
    ],
    "src/rcm/kit/repository.py": [
        "tests/identity/test_admin_read.py",  # a cross-tenant read through the repository
        "tests/isolation",
        "tests/encounters/test_intake.py",
        "tests/tenancy/test_staff_scope.py",  # cross-practice inserts, timestamps handed back
    ],
    "src/rcm/kit/rls.py": ["tests/kit/test_rls.py"],
    # Whose practices a staff member's unit of work is bound to (read and bound in one statement).
    "src/rcm/tenancy/repository.py": [
        "tests/workqueue/test_hot_path.py",
        "tests/tenancy/test_staff_scope.py",
        "tests/identity/test_auditor_scope.py",
    ],
}
DEFAULT_TESTS = ["tests/identity", "tests/tenancy", "tests/isolation"]

_FLIP_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_OP_TEXT = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclass(frozen=True, slots=True)
class Mutant:
    module: str  # path relative to the repository root
    index: int  # position in this module's mutant list (stable for one source text)
    line: int
    description: str
    line_text: str  # the original source line, stripped: what the equivalent list matches on
    under: str = ""  # for a statement in an if-branch, the if's line: tells apart twin statements
    function: str = ""  # the enclosing function's name

    def label(self) -> str:
        return f"{self.module}:{self.line}: {self.description}"


# -- generating mutants ------------------------------------------------------------------------------------

# A mutation site: (node, description, apply). ``apply`` edits the node of a fresh copy of the tree in place.
Site = tuple[ast.AST, str, Callable[[ast.AST], None]]


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    return isinstance(parent, ast.Expr) and isinstance(parents.get(parent), ast.Module | ast.FunctionDef)


def _constant_mutation(value: object) -> tuple[object, str] | None:
    if isinstance(value, bool):
        return (not value), f"{value!r} -> {not value!r}"
    if isinstance(value, int):
        new = value + 1 if value != 1 else 0
        return new, f"{value!r} -> {new!r}"
    if isinstance(value, str):
        new = value + "_mutated" if value else "mutated"
        return new, f"{value!r} -> {new!r}"
    return None


def _in_condition(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """The node sits inside a comparison, a boolean operator, or the test of an if/while/ternary/assert."""
    child, parent = node, parents.get(node)
    while parent is not None and not isinstance(parent, ast.stmt | ast.Call):
        if isinstance(parent, ast.Compare | ast.BoolOp):
            return True
        if isinstance(parent, ast.IfExp) and child is parent.test:
            return True
        child, parent = parent, parents.get(parent)
    return isinstance(parent, ast.If | ast.While | ast.Assert) and child is parent.test


def _sites(tree: ast.Module) -> Iterator[Site]:  # noqa: PLR0912 - one branch per mutation operator
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                flipped = _FLIP_COMPARE.get(type(op))
                if flipped is not None:

                    def flip(n: ast.AST, i: int = i, flipped: type[ast.cmpop] = flipped) -> None:
                        assert isinstance(n, ast.Compare)
                        n.ops[i] = flipped()

                    yield node, f"{_OP_TEXT[type(op)]} -> {_OP_TEXT[flipped]}", flip
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And

            def swap(n: ast.AST, other: type[ast.boolop] = other) -> None:
                assert isinstance(n, ast.BoolOp)
                n.op = other()

            yield node, f"{'and' if other is ast.Or else 'or'} -> {'or' if other is ast.Or else 'and'}", swap
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not removed", _replace_with(lambda n: n.operand)  # type: ignore[attr-defined]
        elif isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
            # A single comparison's flip already is its negation: adding ``not`` there would be a twin.
            single_compare = isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
            negated = isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not)
            if not (single_compare or negated):

                def negate(n: ast.AST) -> None:
                    n.test = ast.UnaryOp(op=ast.Not(), operand=n.test)  # type: ignore[attr-defined]

                yield node, "not added to the condition", negate
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.List):
            # A returned list of statements (DDL): each one left out in turn.
            for i in range(len(node.value.elts)):

                def drop(n: ast.AST, i: int = i) -> None:
                    del n.value.elts[i]  # type: ignore[attr-defined]

                yield node, f"returned list item {i + 1} removed", drop
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, bool):

                def flip_return(n: ast.AST) -> None:
                    n.value.value = not n.value.value  # type: ignore[attr-defined]

                yield node, f"return {node.value.value} -> return {not node.value.value}", flip_return
        elif (
            isinstance(node, ast.Constant)
            and not _is_docstring(node, parents)
            and _in_condition(node, parents)
        ):
            mutated = _constant_mutation(node.value)
            if mutated is not None:
                new_value, text = mutated

                def change(n: ast.AST, new_value: object = new_value) -> None:
                    n.value = new_value  # type: ignore[attr-defined]

                yield node, f"constant {text}", change
        if isinstance(node, ast.Call):
            yield from _sql_sites(node)
        if isinstance(node, ast.If):
            for branch in (node.body, node.orelse):
                for stmt in branch:
                    if isinstance(stmt, ast.Raise):
                        yield stmt, "raise replaced by pass", _replace_stmt_with_pass(parents)
                    elif isinstance(stmt, ast.Return):
                        yield stmt, "early return removed", _replace_stmt_with_pass(parents)
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Await | ast.Call)
            and not _inside_if_branch(node, parents)
        ):
            yield node, "call statement removed", _replace_stmt_with_pass(parents)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Await | ast.Call):
            yield node, "call statement in a guard branch removed", _replace_stmt_with_pass(parents)


# SQL expressions say "is", "in", "and" through SQLAlchemy's methods and functions: their flips too.
_FLIP_SQL_METHOD = {"is_": "is_not", "is_not": "is_", "in_": "not_in", "not_in": "in_"}
_FLIP_SQL_FUNCTION = {"and_": "or_", "or_": "and_"}


def _sql_sites(node: ast.Call) -> Iterator[Site]:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in _FLIP_SQL_METHOD:
        other = _FLIP_SQL_METHOD[func.attr]

        def rename(n: ast.AST, other: str = other) -> None:
            n.func.attr = other  # type: ignore[attr-defined]

        yield node, f".{func.attr}() -> .{other}()", rename
    elif isinstance(func, ast.Name) and func.id in _FLIP_SQL_FUNCTION:
        other = _FLIP_SQL_FUNCTION[func.id]

        def swap_function(n: ast.AST, other: str = other) -> None:
            n.func.id = other  # type: ignore[attr-defined]

        yield node, f"{func.id}() -> {other}()", swap_function


def _inside_if_branch(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    return isinstance(parents.get(node), ast.If)


def _replace_with(make: Callable[[ast.AST], ast.AST]) -> Callable[[ast.AST], None]:
    """Marker: the mutation replaces the node in its parent (resolved in ``_apply``)."""

    def apply(_: ast.AST) -> None:
        raise NotImplementedError

    apply.replacement = make  # type: ignore[attr-defined]
    return apply


def _replace_stmt_with_pass(_: dict[ast.AST, ast.AST]) -> Callable[[ast.AST], None]:
    return _replace_with(lambda n: ast.copy_location(ast.Pass(), n))


def _apply(tree: ast.Module, index: int) -> ast.Module:
    """A copy of ``tree`` with its ``index``-th mutation applied."""
    mutated = copy.deepcopy(tree)
    for i, (node, _, apply) in enumerate(_sites(mutated)):
        if i != index:
            continue
        replacement = getattr(apply, "replacement", None)
        if replacement is None:
            apply(node)
        else:
            _swap_in_parent(mutated, node, replacement(node))
        return ast.fix_missing_locations(mutated)
    raise IndexError(index)


def _swap_in_parent(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                value[[id(item) for item in value].index(id(old))] = new
                return
    raise LookupError("node not found")


def mutants_of(module: str) -> list[Mutant]:
    source = (ROOT / module).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for i, (node, description, _) in enumerate(_sites(tree)):
        line = getattr(node, "lineno", 0)
        guard = parents.get(node)
        under = (
            lines[guard.lineno - 1].strip() if isinstance(guard, ast.If) and node is not guard.test else ""
        )
        text = lines[line - 1].strip() if line else ""
        found.append(Mutant(module, i, line, description, text, under, _enclosing_function(node, parents)))
    return found


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    parent = parents.get(node)
    while parent is not None and not isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
        parent = parents.get(parent)
    return parent.name if parent is not None else ""


def mutant_source(mutant: Mutant, original: str) -> str:
    return ast.unparse(_apply(ast.parse(original), mutant.index)) + "\n"


# -- equivalents -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equivalent:
    module: str
    line_text: str
    mutation: str
    reason: str
    under: str = ""
    function: str = ""

    def matches(self, mutant: Mutant) -> bool:
        return (
            mutant.module == self.module
            and mutant.description == self.mutation
            and mutant.line_text == self.line_text
            and (not self.under or mutant.under == self.under)
            and (not self.function or mutant.function == self.function)
        )


def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    return [
        Equivalent(
            e["module"],
            e["line"].strip(),
            e["mutation"],
            e["reason"],
            e.get("under", "").strip(),
            e.get("function", ""),
        )
        for e in entries
    ]


# -- running -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    mutants: int = 0
    killed: int = 0
    timeouts: int = 0
    equivalent: int = 0
    survived: list[Mutant] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.mutants += other.mutants
        self.killed += other.killed
        self.timeouts += other.timeouts
        self.equivalent += other.equivalent
        self.survived += other.survived

    @property
    def rate(self) -> float:
        scored = self.mutants - self.equivalent
        return (self.killed + self.timeouts) / scored if scored else 1.0


class Interrupted(Exception):
    pass


def _on_term(signum: int, _: FrameType | None) -> None:
    raise Interrupted(signum)


def restore_stale_backups() -> None:
    """A run killed hard (SIGKILL) leaves its backup: put the original back before anything else."""
    for module in {*TARGETS, *(str(p.relative_to(ROOT)) for p in ROOT.glob(f"src/**/*{BACKUP_SUFFIX}"))}:
        path = ROOT / module.removesuffix(BACKUP_SUFFIX)
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.exists():
            shutil.copy2(backup, path)
            backup.unlink()
            print(f"restored {path.relative_to(ROOT)} from a backup left by an interrupted run")


def _forget_bytecode(path: Path) -> None:
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink(missing_ok=True)


def run_tests(tests: list[str], timeout: float) -> str:
    """``passed``, ``failed`` or ``timeout``: one fresh pytest process."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider", "--no-header"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and test paths
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "timeout"
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return "passed" if code == 0 else "failed"


def run_module(
    module: str,
    *,
    mutants: list[Mutant],
    tests: list[str],
    equivalents: list[Equivalent],
    timeout: float,
    tally: Tally,
) -> None:
    """Run each mutant, counting into ``tally`` as it goes (so an interrupted run still reports)."""
    path = ROOT / module
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    original = path.read_text()
    shutil.copy2(path, backup)
    try:
        for mutant in mutants:
            if any(e.matches(mutant) for e in equivalents):
                tally.mutants += 1
                tally.equivalent += 1
                print(f"  equivalent  {mutant.label()}")
                continue
            path.write_text(mutant_source(mutant, original))
            _forget_bytecode(path)
            started = time.monotonic()
            outcome = run_tests(tests, timeout)
            took = time.monotonic() - started
            tally.mutants += 1  # counted once run: an interrupted mutant has no outcome
            if outcome == "failed":
                tally.killed += 1
            elif outcome == "timeout":
                tally.timeouts += 1
            else:
                tally.survived.append(mutant)
            word = {"failed": "killed", "timeout": "TIMEOUT", "passed": "SURVIVED"}[outcome]
            print(f"  {word:<10}  {mutant.label()}   ({took:.0f} s)", flush=True)
    finally:
        shutil.copy2(backup, path)
        backup.unlink()
        _forget_bytecode(path)


def _summary(name: str, tally: Tally) -> str:
    scored = tally.mutants - tally.equivalent
    return (
        f"{name}: mutants {tally.mutants}, equivalent {tally.equivalent}, killed {tally.killed}, "
        f"timeouts {tally.timeouts}, survived {len(tally.survived)}; "
        f"kill rate {tally.killed + tally.timeouts}/{scored} = {tally.rate:.0%}"
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", action="append", help="a target module path (repeatable); default: all")
    parser.add_argument("--max", type=int, default=0, help="at most this many mutants per module")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N mutants of each module")
    parser.add_argument("--index", type=int, action="append", help="only mutant #N of each module")
    parser.add_argument("--list-only", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant (default 180)")
    parser.add_argument("--tests", nargs="+", help="test paths to run instead of the module's own subset")
    return parser.parse_args(argv)


def _plan(args: argparse.Namespace) -> dict[str, list[Mutant]]:
    plan = {}
    for module in args.module or list(TARGETS):
        if not (ROOT / module).exists():
            raise SystemExit(f"{module}: not found (moved?); pass --module with its new path")
        mutants = mutants_of(module)[args.skip :]
        if args.index:
            mutants = [m for m in mutants if m.index in args.index]
        plan[module] = mutants[: args.max] if args.max else mutants
    return plan


def _report(results: dict[str, Tally]) -> None:
    total = Tally()
    print("\n== mutation summary ==")
    for module, tally in results.items():
        print(_summary(module, tally))
        total.add(tally)
    print(_summary("TOTAL", total))
    if total.survived:
        print("survivors:")
        for mutant in total.survived:
            print(f"  {mutant.label()}    | {mutant.line_text}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    signal.signal(signal.SIGTERM, _on_term)
    # One run per checkout: a second one would restore the first one's backups under it.
    lock = (ROOT / ".rcm-mutate.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another mutation run is going on in this checkout", file=sys.stderr)
        return 2
    restore_stale_backups()
    equivalents = load_equivalents()
    plan = _plan(args)
    if args.list_only:
        for module, mutants in plan.items():
            print(f"{module}: {len(mutants)} mutants")
            for mutant in mutants:
                mark = " [equivalent]" if any(e.matches(mutant) for e in equivalents) else ""
                under = f"   (under: {mutant.under})" if mutant.under else ""
                print(f"  #{mutant.index:<3} {mutant.label()}{mark}    | {mutant.line_text}{under}")
        return 0
    if not os.environ.get("RCM_TEST_DATABASE_URL"):
        print("RCM_TEST_DATABASE_URL is not set: mutation runs need the shared test server", file=sys.stderr)
        return 2

    results: dict[str, Tally] = {}
    try:
        for module, mutants in plan.items():
            tests = args.tests or [t for t in TARGETS.get(module, DEFAULT_TESTS) if (ROOT / t).exists()]
            print(f"{module}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
            if run_tests(tests, args.timeout) != "passed":
                print(f"{module}: the tests fail without any mutant; fix them first", file=sys.stderr)
                return 1
            results[module] = Tally()
            run_module(
                module,
                mutants=mutants,
                tests=tests,
                equivalents=equivalents,
                timeout=args.timeout,
                tally=results[module],
            )
            print(_summary(module, results[module]), flush=True)
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted; originals restored; partial figures follow", file=sys.stderr)
    _report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
