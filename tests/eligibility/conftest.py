"""Enrolled practices and their systems (tests/claims' fixtures), a sandbox payer in a directory of the
test's own, and its enrollment credentials set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.claims.conftest import (  # noqa: F401 - fixtures shared with the claims tests
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
)


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox payer's state under this test's directory (``sandbox:NAME`` endpoints resolve there)."""
    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    # The DEMO-MCR enrollment names its credentials by reference; the sandbox ignores their value.
    monkeypatch.setenv("DEMO_MCR_CREDENTIALS", "sandbox-token")
    return tmp_path / "sandbox-payer"
