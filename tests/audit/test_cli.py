"""``rcm audit checkpoint`` and ``rcm audit verify`` against the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from rcm.cli import main
from rcm.config import Settings, get_settings
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert settings.database_url is not None
    monkeypatch.setenv("RCM_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RCM_ENV", "test")
    get_settings.cache_clear()
    yield tmp_path  # type: ignore[misc]
    get_settings.cache_clear()


async def test_checkpoint_then_verify_a_tenant(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    cli_env: Path,
    superuser: AsyncConnection,
) -> None:
    await write_events(sessions, [make_event(tenant.id) for _ in range(3)])
    await seal_all(audit_sessions)  # the CLI seals too, but another session's open transaction may hold it
    runner = CliRunner()
    out = cli_env / "checkpoints.jsonl"
    # click runs asyncio.run itself: hand it a thread without our running loop.
    import asyncio

    made = await asyncio.to_thread(runner.invoke, main, ["audit", "checkpoint", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert list((cli_env / "audit-keys").glob("*.pub.pem"))
    mine = [json.loads(line) for line in out.read_text().splitlines() if str(tenant.id) in line]
    assert [c["seq"] for c in mine] == [3]

    ok = await asyncio.to_thread(runner.invoke, main, ["audit", "verify", "--tenant", tenant.slug])
    assert ok.exit_code == 0, ok.output
    assert "audit log intact" in ok.output

    await superuser.execute(
        text(
            "UPDATE rcm.audit_event SET outcome = '4' WHERE tenant_id = :t AND id = "
            "(SELECT event_id FROM rcm.audit_seal WHERE tenant_id = :t AND seq = 2)"
        ),
        {"t": tenant.id},
    )
    await superuser.commit()
    bad = await asyncio.to_thread(runner.invoke, main, ["audit", "verify", "--tenant", tenant.slug])
    assert bad.exit_code == 1
    assert "seq 2: edited" in bad.output
    assert "AUDIT LOG INTEGRITY PROBLEMS FOUND" in bad.output


async def test_verify_reports_a_tenant_that_vanished_from_the_database(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    cli_env: Path,
    superuser: AsyncConnection,
) -> None:
    """A superuser removes a practice's whole trail and the practice itself: only the external anchor copy
    still knows it existed, and verify says so."""
    import asyncio

    await write_events(sessions, [make_event(tenant.id) for _ in range(2)])
    await seal_all(audit_sessions)
    runner = CliRunner()
    made = await asyncio.to_thread(runner.invoke, main, ["audit", "checkpoint"])
    assert made.exit_code == 0, made.output
    for table in ("audit_event", "audit_seal", "audit_chain_head", "audit_checkpoint", "tenant"):
        column = "id" if table == "tenant" else "tenant_id"
        await superuser.execute(text(f"DELETE FROM rcm.{table} WHERE {column} = :t"), {"t": tenant.id})  # noqa: S608
    await superuser.commit()

    result = await asyncio.to_thread(runner.invoke, main, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"{tenant.id} NOT REGISTERED IN THE DATABASE: TAMPERED" in result.output
    assert "seq 2: chain_vanished" in result.output
    assert "seq 2: checkpoint_missing" in result.output
