"""A newcomer's path: the public URL follows RCM_HOST/RCM_PORT (or RCM_BASE_URL), the banner says "up" only
once the port accepts connections, and a bad setting is one line naming the variable, never a traceback.

The CLI runs as a real subprocess (the installed ``rcm`` script), against this run's test database.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.keys import KeyRing
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.identity.tokens import InvalidToken, verify_access_token

RCM = str(Path(sys.executable).with_name("rcm"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without RCM_ variables (RCM_ENV unset: production), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCM_")}
    env.update(extra)
    return env


def _payload(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


# --- the public URL ----------------------------------------------------------------------------------------


def test_base_url_is_derived_from_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RCM_BASE_URL", "RCM_HOST", "RCM_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().base_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("RCM_PORT", "9123")
    assert Settings().base_url == "http://127.0.0.1:9123"
    monkeypatch.setenv("RCM_HOST", "0.0.0.0")  # noqa: S104 - a wildcard bind is reached on the loopback
    assert Settings().base_url == "http://127.0.0.1:9123"
    monkeypatch.setenv("RCM_HOST", "::1")
    assert Settings().base_url == "http://[::1]:9123"
    # A documented RCM_BASE_URL wins (a proxy or TLS terminator in front); a trailing slash is dropped.
    monkeypatch.setenv("RCM_BASE_URL", "https://rcm.example.test/")
    assert Settings().base_url == "https://rcm.example.test"


async def test_token_issuer_follows_the_port(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    monkeypatch.setenv("RCM_PORT", "9123")
    monkeypatch.delenv("RCM_BASE_URL", raising=False)
    monkeypatch.delenv("RCM_HOST", raising=False)
    on_9123 = Settings(env="test", database_url=settings.database_url, data_dir=settings.data_dir)
    token = await mint_access_token(user_principal(Role.CODER), sessions=sessions, settings=on_9123)
    assert _payload(token)["iss"] == "http://127.0.0.1:9123"
    keys = await KeyRing(on_9123).verification_keys(sessions)
    assert verify_access_token(token, keys, on_9123).roles == frozenset({Role.CODER})
    # The same token is not accepted by a deployment on another port: the issuer is part of the check.
    assert settings.base_url == "http://127.0.0.1:8000"
    with pytest.raises(InvalidToken):
        verify_access_token(token, keys, settings)


# --- "up" only once the port is bound --------------------------------------------------------------------


@pytest.fixture
def served(
    admin_url: str, settings: Settings
) -> Iterator[tuple[int, subprocess.Popen[str], queue.Queue[str]]]:
    """``rcm serve`` on a free port given only as RCM_PORT; its stdout lines arrive on a queue."""
    port = _free_port()
    env = _clean_env(
        RCM_ENV="test", RCM_DATABASE_URL=admin_url, RCM_DATA_DIR=str(settings.data_dir), RCM_PORT=str(port)
    )
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [RCM, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield port, process, lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_banner_appears_only_once_the_port_accepts_connections(
    served: tuple[int, subprocess.Popen[str], queue.Queue[str]],
) -> None:
    port, process, lines = served
    base = f"http://127.0.0.1:{port}"
    banner: list[str] = []
    deadline = time.monotonic() + 60
    while not any("RCM is up" in line for line in banner):
        assert process.poll() is None, f"rcm serve exited: {process.stderr.read() if process.stderr else ''}"
        assert time.monotonic() < deadline, "no banner within 60 s"
        try:
            banner.append(lines.get(timeout=0.5))
        except queue.Empty:
            continue
    # The moment "up" is printed, a connection succeeds at the first attempt: no retry, no wait.
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    while banner[-1].strip():  # the rest of the banner, up to its closing blank line
        banner.append(lines.get(timeout=10))
    text = "".join(banner)
    assert f"RCM is up at {base}" in text
    assert f"{base}/docs/openapi.json" in text
    metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == base
    assert metadata["token_endpoint"] == f"{base}/oauth/token"
    assert metadata["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert httpx.get(f"{base}/docs/openapi.json", timeout=10).status_code == 200


# --- one clear line for a bad setting -------------------------------------------------------------------

BAD_SETTINGS = [
    pytest.param(["serve"], {"RCM_PORT": "abc"}, "RCM_PORT", id="port-not-a-number"),
    pytest.param(["serve"], {"RCM_PORT": "70000"}, "RCM_PORT", id="port-out-of-range"),
    pytest.param(
        ["migrate"],
        {"RCM_DATABASE_URL": "mysql://rcm:hunter2@db.invalid/rcm"},
        "RCM_DATABASE_URL",
        id="not-pg",
    ),
    pytest.param(["serve"], {"RCM_BASE_URL": "ftp://rcm.invalid"}, "RCM_BASE_URL", id="base-url"),
    pytest.param(["serve"], {"RCM_OIDC_ISSUERS": "[{]"}, "RCM_OIDC_ISSUERS", id="issuers-not-json"),
    pytest.param(["serve"], {"RCM_ENV": "staging"}, "RCM_ENV", id="unknown-env"),
    # Development-only commands without RCM_ENV=dev (unset means production).
    pytest.param(["dev"], {}, "RCM_ENV", id="dev-needs-dev"),
    pytest.param(["demo"], {}, "RCM_ENV", id="demo-needs-dev"),
    pytest.param(["token", "--user", "coder@demo.rcm.test"], {}, "RCM_ENV", id="dev-login-needs-dev"),
]


def _one_line_failure(result: subprocess.CompletedProcess[str], variable: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {result.stderr!r}"
    assert variable in lines[0]
    return lines[0]


@pytest.mark.parametrize(("args", "env", "variable"), BAD_SETTINGS)
def test_bad_setting_is_one_line_naming_the_variable(
    args: list[str], env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    # A database URL that nothing could reach: each command must stop before it would connect.
    full_env = _clean_env(
        **{
            "RCM_DATABASE_URL": "postgresql://rcm:hunter2@db.invalid/rcm",
            "RCM_DATA_DIR": str(tmp_path),
            **env,
        }
    )
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [RCM, *args], env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    line = _one_line_failure(result, variable)
    assert "hunter2" not in line  # values are never echoed: a URL may hold a password
    assert result.returncode == 2


def test_a_taken_port_is_one_line_naming_the_variable(admin_url: str, settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _clean_env(
            RCM_ENV="test",
            RCM_DATABASE_URL=admin_url,
            RCM_DATA_DIR=str(settings.data_dir),
            RCM_PORT=str(port),
        )
        result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [RCM, "serve"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    assert str(port) in _one_line_failure(result, "RCM_PORT")
    assert "RCM is up" not in result.stdout
