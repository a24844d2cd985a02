from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from rcm.cli import main
from rcm.config import get_settings
from rcm.kit.embedded import MISSING


def test_missing_embedded_extra_without_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # pgserver is the optional `embedded` extra; None in sys.modules makes its import fail as if uninstalled.
    monkeypatch.setitem(sys.modules, "pgserver", None)
    monkeypatch.delenv("RCM_DATABASE_URL", raising=False)
    data_dir = tmp_path_factory.mktemp("no-embedded")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["migrate"], env={"RCM_DATA_DIR": str(data_dir)})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {MISSING}"]
    assert not (data_dir / "pg").exists()  # nothing written on the way to the error
