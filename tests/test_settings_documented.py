"""README's configuration table names every setting of ``rcm.config.Settings``, and nothing that is not one.

Settings are added by many hands; this fails (listing the variables) the day one is added without its row.
"""

from __future__ import annotations

import re
from pathlib import Path

from rcm.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
VARIABLE = re.compile(r"`(RCM_[A-Z0-9_]+)`")


def _configuration_section() -> str:
    text = README.read_text()
    start = text.index("\n## Configuration")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented_variables() -> set[str]:
    """Every ``RCM_...`` named in the first column of the configuration table (a cell may name several)."""
    names: set[str] = set()
    for line in _configuration_section().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names.update(VARIABLE.findall(cells[1]))
    return names


def test_every_setting_is_in_the_readme_table() -> None:
    settings = {
        f"{Settings.model_config.get('env_prefix', '')}{name}".upper() for name in Settings.model_fields
    }
    documented = documented_variables()
    missing = sorted(settings - documented)
    stale = sorted(documented - settings)
    assert not missing, f"README.md's configuration table lacks: {', '.join(missing)}"
    assert not stale, (
        f"README.md's configuration table names variables that are no setting: {', '.join(stale)}"
    )


def test_readme_says_where_the_openapi_document_is() -> None:
    assert "/docs/openapi.json" in README.read_text()
