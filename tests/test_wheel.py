"""The wheel, installed the way the container image installs it, outside the source tree.

Builds the wheel, installs it (not editable) into a fresh venv, and from a temporary directory migrates a
scratch database, serves the API until ``/readyz`` answers 200 at the migrations' head, applies a tenant
manifest (schema-validated) and seeds the demo data. With RCM_TEST_DATABASE_URL the scratch database lives on
that server; without it the venv gets the ``embedded`` extra and the CLI starts PostgreSQL from the wheel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from rcm.kit.embedded import MISSING as EMBEDDED_MISSING
from rcm.kit.migrations import head_revision

pytestmark = pytest.mark.wheel

# The test itself lives in the checkout, so it may find the checkout from its own file.
ROOT = Path(__file__).resolve().parents[1]
MANIFEST = """\
slug: wheel-smoke
name: Wheel Smoke Practice (TEST)
billing_provider: {npi: "1003000126", name: Wheel Smoke Group}
payers:
  - {payer_id: DEMO-MCR, name: Demo Medicare}
"""


@dataclass
class Installed:
    wheel: Path
    venv: Path
    workdir: Path
    env: dict[str, str]
    embedded: bool

    def rcm(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own entry point in our own venv
            [str(self.venv / "bin" / "rcm"), *args],
            cwd=self.workdir,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _run(*command: str | Path, cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed commands
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"


def _build_wheel(dist: Path) -> Path:
    # Build isolation installs hatchling from pip's cache; --no-deps: only our wheel, not the whole tree.
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, ROOT, cwd=dist)
    (wheel,) = dist.glob("rcm-*.whl")
    return wheel


def _reset_database(server: str, name: str, *, create: bool) -> str:
    async def reset() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(reset())
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _stop_embedded(pgdata: Path) -> None:
    """Stop an embedded server a failed step left running (a passing run stops it with `rcm serve`)."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)  # PostgreSQL's fast shutdown
    deadline = time.monotonic() + 30
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not under pytest's basetemp: that tree is kept mode 0700 by every pytest run as this user, and the
    # embedded server runs as its own user when the suite runs as root, so it must reach its files here.
    base = Path(tempfile.mkdtemp(prefix="rcm-wheel-"))
    base.chmod(0o755)
    try:
        yield from _install(base)
    finally:
        _stop_embedded(base / "data" / "pg")
        shutil.rmtree(base, ignore_errors=True)


def _install(base: Path) -> Iterator[Installed]:
    dist, workdir, venv = base / "dist", base / "work", base / "venv"
    dist.mkdir()
    workdir.mkdir()
    wheel = _build_wheel(dist)
    server = os.environ.get("RCM_TEST_DATABASE_URL")
    extra = "" if server else "[embedded]"
    _run(sys.executable, "-m", "venv", venv, cwd=base)
    requirement = f"rcm{extra} @ {wheel.as_uri()}"
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", requirement, cwd=workdir)

    kek_dir = base / "keks"
    kek_dir.mkdir(mode=0o700)
    (kek_dir / "kek-smoke.kek").write_bytes(secrets.token_bytes(32))
    # A production-like environment: nothing inherited from this checkout's settings or venv.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCM_")}
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env |= {"RCM_ENV": "prod", "RCM_DATA_DIR": str(base / "data"), "RCM_KEK_DIRECTORY": str(kek_dir)}
    database = "rcm_wheel_" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    if server:
        env["RCM_DATABASE_URL"] = _reset_database(server, database, create=True)
    try:
        yield Installed(wheel=wheel, venv=venv, workdir=workdir, env=env, embedded=not server)
    finally:
        if server:
            _reset_database(server, database, create=False)


def test_wheel_carries_the_root_files(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    shipped = {
        "alembic.ini": "rcm/_data/alembic.ini",
        "migrations/env.py": "rcm/_data/migrations/env.py",
        "tenants/schema.json": "rcm/_data/tenants/schema.json",
        **{
            f"tenants/demo/{p.name}": f"rcm/_data/tenants/demo/{p.name}"
            for p in (ROOT / "tenants" / "demo").glob("*.yaml")
        },
        **{
            f"migrations/versions/{p.name}": f"rcm/_data/migrations/versions/{p.name}"
            for p in (ROOT / "migrations" / "versions").glob("*.py")
        },
        # Code-set files (HCPCS copy, POS names, the demo files) and the payer directory, with their
        # provenance notes: package data inside rcm.codes and rcm.payers.
        **{
            str(p.relative_to(ROOT)): str(p.relative_to(ROOT / "src"))
            for package in ("codes", "payers")
            for p in (ROOT / "src" / "rcm" / package / "fixtures").rglob("*")
            if p.is_file()
        },
        # The pages' templates and stylesheet, and the dev issuer's login page (rcm.web, rcm.identity).
        **{
            str(p.relative_to(ROOT)): str(p.relative_to(ROOT / "src"))
            for folder in ("web/templates", "web/static", "identity/templates")
            for p in (ROOT / "src" / "rcm" / folder).rglob("*")
            if p.is_file()
        },
    }
    assert {source for source, packaged in shipped.items() if packaged not in names} == set()
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "src/", "integrations/"))]
    # The connectors ship as packages of their own, each declared under the rcm.connectors entry points.
    assert {
        "sftp_clearinghouse/__init__.py",
        "rest_clearinghouse/__init__.py",
        "sandbox_payer/__init__.py",
    } <= names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    declared = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "[rcm.connectors]" in declared
    assert "sftp = sftp_clearinghouse:SftpClearinghouse" in declared
    assert "sandbox = sandbox_payer:SandboxPayer" in declared


def test_installed_package_runs_outside_the_source_tree(installed: Installed) -> None:
    probe = subprocess.run(  # noqa: S603
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import rcm, rcm.kit.package_data as d; print(rcm.__file__); print(d.data_root());"
            " from rcm.payers.registry import installed_connectors as c;"
            " assert {'sftp', 'rest', 'sandbox'} <= set(c())",
        ],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    )
    module, data_root = probe.stdout.splitlines()
    assert Path(module).is_relative_to(installed.venv), module
    assert Path(data_root).is_relative_to(installed.venv), data_root
    revisions = {p.name for p in (ROOT / "migrations" / "versions").glob("*.py")}
    assert revisions == {p.name for p in (Path(data_root) / "migrations" / "versions").glob("*.py")}


def _embedded_url(installed: Installed) -> str:
    """The running embedded server's superuser URL, asked of the installed package."""
    probe = subprocess.run(  # noqa: S603
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import sys, pathlib; from rcm.kit.embedded import start_embedded_postgres as s;"
            " print(s(pathlib.Path(sys.argv[1]), stop_on_exit=False))",
            installed.env["RCM_DATA_DIR"] + "/pg",
        ],
        cwd=installed.workdir,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rcm serve exited with {process.returncode}")
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.25)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer 200 within 120 s")


def test_migrate_serve_readyz_and_apply_manifest(installed: Installed) -> None:
    if not installed.embedded:
        # This venv lacks the embedded extra: without a database URL the CLI says so in one line.
        env = {k: v for k, v in installed.env.items() if k != "RCM_DATABASE_URL"}
        refused = installed.rcm("migrate", env=env)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [f"Error: {EMBEDDED_MISSING}"]

    migrated = installed.rcm("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "database at head" in migrated.stdout
    # The payer directory ships too (the operator loads it, as the owner); the manifest below enrolls with
    # it. Before the API starts: an operator command stops the embedded server it started when it exits.
    loaded = installed.rcm("payers", "load")
    assert loaded.returncode == 0, loaded.stderr

    # The API holds the app and control roles' URLs only, never the administrative one (issue 5, point 1).
    admin = installed.env.get("RCM_DATABASE_URL") or _embedded_url(installed)
    serve_env = {k: v for k, v in installed.env.items() if k != "RCM_DATABASE_URL"} | {
        "RCM_APP_DATABASE_URL": make_url(admin)
        .set(username="rcm_app", password=None)
        .render_as_string(False),
        "RCM_CONTROL_DATABASE_URL": make_url(admin)
        .set(username="rcm_control", password=None)
        .render_as_string(False),
    }
    port = _free_port()
    log = (installed.workdir / "serve.log").open("w")
    serve = subprocess.Popen(  # noqa: S603
        [str(installed.venv / "bin" / "rcm"), "serve", "--port", str(port)],
        cwd=installed.workdir,
        env=serve_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = _wait_ready(serve, f"http://127.0.0.1:{port}/readyz")
        assert ready.json() == {"status": "ready", "schema": head_revision(), "rate_limit_store": "memory"}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        manifest = installed.workdir / "practice.yaml"
        manifest.write_text(MANIFEST)
        # Operator commands given the control role's URL, as the API is (embedded or not, no admin URL).
        applied = installed.rcm("tenants", "apply", str(manifest), env=serve_env)
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.strip() in {"created tenant wheel-smoke", "updated tenant wheel-smoke"}

        # The schema ships too: a bad manifest is refused field by field, not with a traceback.
        bad = installed.workdir / "bad.yaml"
        bad.write_text(MANIFEST.replace('"1003000126"', '"12"'))
        refused = installed.rcm("tenants", "apply", str(bad), env=serve_env)
        assert refused.returncode == 2
        assert "/billing_provider/npi" in refused.stderr
        assert "Traceback" not in refused.stderr

        # The demo practices ship as package data; the demo itself exists only in dev.
        demo = installed.rcm("demo", env=installed.env | {"RCM_ENV": "dev"})
        assert demo.returncode == 0, demo.stderr
        assert "sunrise-family-medicine" in demo.stdout
        # ...and so do the code-set files it loads (ICD-10-CM from its package, HCPCS and POS from ours).
        releases = installed.rcm("codes", "releases", env=installed.env)
        assert releases.returncode == 0, releases.stderr
        assert {"icd10cm", "hcpcs", "pos", "cpt"} <= {
            line.split()[0] for line in releases.stdout.splitlines()
        }
    finally:
        # Ctrl+C, as `make run` is stopped: uvicorn re-raises SIGTERM after its shutdown, which would skip the
        # atexit hook that stops the embedded PostgreSQL.
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        log.close()


def test_dockerfile_and_chart_describe_this_wheel() -> None:
    """The image is not built here (no container engine): its recipe follows the steps proven above."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    sources = {"pyproject.toml", "README.md"} | {
        path.split("/")[0] for path in [*wheel["packages"], *wheel["force-include"]]
    }
    assert sources <= {name for line in copied for name in line.split()}
    assert sources <= {line.removeprefix("!") for line in allowed if line.startswith("!")}
    assert "pip wheel --no-cache-dir --no-deps" in dockerfile  # as _build_wheel
    assert "pip install --no-cache-dir /dist/rcm-*.whl" in dockerfile  # no extras: no dev tools, no pgserver

    values = yaml.safe_load((ROOT / "helm" / "rcm" / "values.yaml").read_text())
    helpers = (ROOT / "helm" / "rcm" / "templates" / "_helpers.tpl").read_text()
    assert values["image"]["tag"] == project["project"]["version"]
    uid = re.search(r"runAsUser: (\d+)", helpers)
    assert uid is not None
    assert f"USER {uid[1]}:{uid[1]}" in dockerfile
    assert 'command: ["rcm"]' in helpers
    assert 'CMD ["rcm", "serve"' in dockerfile
