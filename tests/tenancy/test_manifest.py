from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcm.cli import main
from rcm.config import get_settings
from rcm.kit.errors import InvalidInput
from rcm.kit.package_data import data_path
from rcm.tenancy.manifest import load_manifest, validate_manifest


def test_demo_manifests_validate() -> None:
    paths = [p for p in sorted(data_path("tenants", "demo").glob("*.yaml")) if p.name != "people.yaml"]
    assert len(paths) >= 3
    for path in paths:
        assert load_manifest(path).slug == path.stem


def test_invalid_manifest_names_every_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_manifest(
            {"slug": "Bad Slug", "name": "", "billing_provider": {"npi": "12", "name": "x"}, "extra": 1}
        )
    pointers = {e.pointer for e in refused.value.errors}
    # An unknown field is named by its own pointer (issue 5, point 6), not by its parent's.
    assert pointers == {"/slug", "/name", "/billing_provider/npi", "/extra"}


def test_manifest_numbers_are_not_coerced() -> None:
    document = {
        "slug": "ok-slug",
        "name": "X",
        "billing_provider": {"npi": "1003000126", "name": "Y"},
        "payers": [{"payer_id": "P", "name": "P", "timely_filing_days": "90"}],
        "rules": {"coding_sla_hours": 4, "typo_rule": True},
    }
    with pytest.raises(InvalidInput) as refused:
        validate_manifest(document)
    assert {e.pointer for e in refused.value.errors} == {"/payers/0/timely_filing_days", "/rules/typo_rule"}


async def test_cli_apply_refuses_an_invalid_file_and_writes_nothing(tmp_path: Path, admin_url: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slug: Not-Valid\nname: X\nbilling_provider: {npi: '1', name: Y}\n")
    get_settings.cache_clear()
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["tenants", "apply", str(bad)],
        env={"RCM_DATABASE_URL": admin_url, "RCM_ENV": "test"},
    )
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert f"{bad}: /slug:" in result.output
    assert f"{bad}: /billing_provider/npi:" in result.output
