"""Administrative changes and their audit events commit in ONE transaction (or not at all).

``xmin`` is the id of the transaction that wrote a row version: a change and its audit row with the same
xmin committed together. A trigger that refuses one audit insert shows the change is rolled back with it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.cli import main
from rcm.config import Settings, get_settings
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.tenancy.models import Tenant
from tests.identity.conftest import Mint, audit_rows, idem, make_user

Client = AsyncTestClient[Litestar]


async def _xmin(owner_engine: AsyncEngine, table: str, column: str, value: object) -> str:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text(f"SELECT xmin::text FROM rcm.{table} WHERE {column} = :v"),  # noqa: S608 - test constants
            {"v": value},
        )
        return str(found.scalar_one())


async def test_client_issue_rotate_revoke_commit_with_their_events(
    client: Client, mint: Mint, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    base = f"/api/v1/admin/tenants/{tenant.slug}/clients"
    issued = await client.post(base, json={"name": "Sunrise EHR"}, headers=idem(headers))
    assert issued.status_code == 201, issued.text
    client_id = issued.json()["client_id"]
    for step, path in (("issue", None), ("rotate", "rotate"), ("revoke", "revoke")):
        if path:
            assert (await client.post(f"{base}/{client_id}/{path}", headers=idem(headers))).status_code == 200
        rows = await audit_rows(owner_engine, f"api_client.{step}", tenant_id=tenant.id)
        assert len(rows) == 1
        assert rows[0]["actor_roles"] == ["admin"]
        assert rows[0]["xmin"] == await _xmin(owner_engine, "api_client", "client_id", client_id), step


async def test_break_glass_open_and_onboarding_commit_with_their_events(
    *,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    mint: Mint,
    tenant: Tenant,
    owner_engine: AsyncEngine,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["biller"])
    staff = {"Authorization": f"Bearer {await mint(user_principal(Role.BILLER, user_id=user.id, mfa=True))}"}
    opened = await client.post(
        f"/api/v1/tenants/{tenant.slug}/break-glass",
        json={"category": "payer_deadline", "reason": "Payer on the phone about a denied claim"},
        headers=idem(staff),
    )
    assert opened.status_code == 201, opened.text
    grant_id = uuid.UUID(opened.json()["id"])
    [event] = await audit_rows(owner_engine, "break_glass.open", tenant_id=tenant.id)
    assert event["resource_ids"] == [grant_id]
    assert event["xmin"] == await _xmin(owner_engine, "break_glass_grant", "id", grant_id)

    admin = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    slug = f"onboard-{uuid.uuid4().hex[:8]}"
    manifest = {
        "slug": slug,
        "name": "Onboarded (TEST)",
        "billing_provider": {"npi": "1234567893", "name": "X"},
    }
    created = await client.post("/api/v1/admin/tenants", json=manifest, headers=admin)
    assert created.status_code == 201, created.text
    tenant_id = uuid.UUID(created.json()["id"])
    [onboard] = await audit_rows(owner_engine, "tenant.onboard", tenant_id=tenant_id)
    assert onboard["action"] == "C"
    assert onboard["xmin"] == await _xmin(owner_engine, "tenant", "id", tenant_id)

    report = await client.get("/api/v1/admin/break-glass", headers=admin)
    assert report.status_code == 200
    reports = [
        r for r in await audit_rows(owner_engine, "break_glass.report") if grant_id in r["resource_ids"]
    ]
    assert len(reports) == 1
    assert reports[0]["actor_roles"] == ["admin"]


@pytest.fixture
async def refuse_audit_of(owner_engine: AsyncEngine) -> object:
    """Install a trigger making the audit insert of one (tenant, event type) fail, as a full disk would."""
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    installed: list[str] = []

    async def install(tenant_id: uuid.UUID, event_type: str) -> None:
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    f"CREATE FUNCTION rcm.{name}() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit write refused by test'; END $$"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT ON rcm.audit_event FOR EACH ROW "
                    f"WHEN (NEW.tenant_id = '{tenant_id}' AND NEW.event_type = '{event_type}') "
                    f"EXECUTE FUNCTION rcm.{name}()"
                )
            )
        installed.append(name)

    yield install
    async with owner_engine.begin() as conn:
        for trigger in installed:
            await conn.execute(text(f"DROP TRIGGER {trigger} ON rcm.audit_event"))
            await conn.execute(text(f"DROP FUNCTION rcm.{trigger}()"))


async def test_a_failed_audit_write_rolls_the_change_back(
    client: Client, mint: Mint, tenant: Tenant, owner_engine: AsyncEngine, refuse_audit_of: object
) -> None:
    await refuse_audit_of(tenant.id, "api_client.issue")  # type: ignore[operator]
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    response = await client.post(
        f"/api/v1/admin/tenants/{tenant.slug}/clients", json={"name": "Never issued"}, headers=idem(headers)
    )
    assert response.status_code == 500
    assert "client_secret" not in response.text
    async with owner_engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM rcm.api_client WHERE tenant_id = :t"), {"t": tenant.id}
        )
        assert count.scalar_one() == 0


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(admin_url: str, settings: Settings) -> Iterator[dict[str, str]]:
    # The tests' own data directory: a signing key the CLI makes must unwrap in the app under test too.
    get_settings.cache_clear()
    yield {"RCM_DATABASE_URL": admin_url, "RCM_DATA_DIR": str(settings.data_dir), "RCM_ENV": "test"}
    get_settings.cache_clear()


async def _cli(env: dict[str, str], *args: str) -> str:
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_cli_client_commands_record_their_events_in_the_same_transaction(
    cli_env: dict[str, str], tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    import json

    out = await _cli(cli_env, "identity", "clients", "create", tenant.slug, "--name", "CLI EHR")
    client_id = json.loads(out[: out.rindex("}") + 1])["client_id"]
    for step in ("issue", "rotate", "revoke"):
        if step != "issue":
            await _cli(cli_env, "identity", "clients", step, tenant.slug, client_id)
        [row] = await audit_rows(owner_engine, f"api_client.{step}", tenant_id=tenant.id)
        assert row["actor_subject"].startswith("operator:")
        assert row["xmin"] == await _xmin(owner_engine, "api_client", "client_id", client_id), step


async def test_cli_signing_key_rotation_and_tenant_apply_record_their_events(
    cli_env: dict[str, str], owner_engine: AsyncEngine, tmp_path: Path
) -> None:
    out = await _cli(cli_env, "identity", "rotate-signing-key")
    kid = out.strip().rsplit(" ", 1)[-1]
    rotations = [
        r for r in await audit_rows(owner_engine, "signing_key.rotate") if r["detail"].get("kid") == kid
    ]
    assert len(rotations) == 1
    assert rotations[0]["actor_subject"].startswith("operator:")
    assert rotations[0]["xmin"] == await _xmin(owner_engine, "signing_key", "kid", kid)

    slug = f"cli-{uuid.uuid4().hex[:8]}"
    manifest = tmp_path / "practice.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {"slug": slug, "name": "CLI Practice", "billing_provider": {"npi": "1234567893", "name": "X"}}
        )
    )
    await _cli(cli_env, "tenants", "apply", str(manifest))
    async with owner_engine.connect() as conn:
        tenant_id = (
            await conn.execute(text("SELECT id FROM rcm.tenant WHERE slug = :s"), {"s": slug})
        ).scalar_one()
    [applied] = await audit_rows(owner_engine, "tenant.onboard", tenant_id=tenant_id)
    assert applied["actor_subject"].startswith("operator:")
    assert applied["xmin"] == await _xmin(owner_engine, "tenant", "id", tenant_id)
