"""`rcm codes load` as an operator runs it: refusals before anything is written. (Loading through the
command is exercised by the wheel smoke test, `tests/test_wheel.py`.)"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rcm.config import Settings
from tests.codes.conftest import write

RCM = str(Path(sys.executable).with_name("rcm"))


@dataclass(frozen=True)
class Result:
    exit_code: int
    output: str


@pytest.fixture
def cli_env(admin_url: str, settings: Settings) -> dict[str, str]:
    """The installed command in its own process, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCM_")}
    return env | {"RCM_DATABASE_URL": admin_url, "RCM_DATA_DIR": str(settings.data_dir), "RCM_ENV": "test"}


async def _rcm(env: dict[str, str], *args: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        RCM, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    return Result(await process.wait(), output.decode())


async def test_load_refuses_bad_files_and_missing_dates(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = write(tmp_path / "carc.csv", "code,description\n45,Charge exceeds fee schedule\n4567,Too long\n")
    refused = await _rcm(cli_env, "codes", "load", "carc", str(bad), "--effective-from", "2026-01-01")
    assert refused.exit_code == 2
    assert "carc.csv:3:1: not a carc code: '4567'" in refused.output
    undated = await _rcm(cli_env, "codes", "load", "carc", str(bad))
    assert undated.exit_code == 2
    assert "--effective-from" in undated.output
