"""``rcm claims batch``: the operator's job batches a practice's ready claims and prints each batch."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcm.config import get_settings
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims
from tests.support import Api


@pytest.fixture
async def ready_claim(intake: Api, practice: Tenant, claims: Claims) -> uuid.UUID:
    return await claims.new(intake, practice)


def test_claims_batch_prints_each_batch(
    ready_claim: uuid.UUID, practice: Tenant, admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rcm.cli import main

    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATABASE_URL", admin_url)
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(main, ["claims", "batch", practice.slug])
        again = CliRunner().invoke(main, ["claims", "batch", practice.slug])
        unknown = CliRunner().invoke(main, ["claims", "batch", "no-such-practice"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    lines = first.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{practice.id} DEMO-MCR")
    assert "sender=SUBMIT01 claims=1" in lines[0]
    assert again.output.strip() == "no ready claims to batch"
    assert unknown.exit_code != 0
    assert "no-such-practice" in unknown.output
