"""``rcm claims batch``: the operator's job batches a practice's ready claims and prints each batch."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from rcm.config import Settings, get_settings
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


def test_claims_batch_render_keeps_each_837_or_says_why_not(
    *,
    ready_claim: uuid.UUID,
    practice: Tenant,
    billing_practice: Tenant,
    billing_ready: uuid.UUID,
    admin_url: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rcm.cli import main

    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATABASE_URL", admin_url)
    # The practices' keys: rendering opens their patients' PHI.
    monkeypatch.setenv("RCM_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            main, ["claims", "batch", "--render", practice.slug, billing_practice.slug]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4  # two batches, then one line each about its 837
    rendered = [line for line in lines if " rendered 837P file=" in line]
    refused = [line for line in lines if " not rendered: " in line]
    assert len(rendered) == 1
    assert len(refused) == 1
    assert "/address" in refused[0]
    assert "/submitter_contact" in refused[0]


@pytest.fixture
async def billing_ready(billing_intake: Api, billing_practice: Tenant, claims: Claims) -> uuid.UUID:
    return await claims.new(billing_intake, billing_practice)
