"""``rcm keys rotate`` and ``rcm tenants offboard`` end to end, against the test database.

The CLI runs its own event loop (``asyncio.run``), so it is invoked on a thread beside the tests' loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import request_info_from
from rcm.blobs.models import BlobBackend
from rcm.blobs.store import BlobStore
from rcm.cli import main
from rcm.config import Settings, get_settings
from rcm.crypto import KeysDestroyedError, KeyStore, LocalFileKeyProvider
from rcm.identity.cli import exchange_in_process
from rcm.identity.keys import KeyRing, rotate_signing_key
from rcm.identity.testing import client_principal
from rcm.identity.tokens import verify_access_token
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.tenant import TenantContext
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from tests.conftest import tid
from tests.crypto.conftest import PHI_TABLE, PhiSample
from tests.identity.conftest import audit_rows, make_client

pytestmark = pytest.mark.usefixtures("phi_table")


@pytest.fixture
def cli_env(admin_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield {
        "RCM_DATABASE_URL": admin_url,
        "RCM_DATA_DIR": str(tmp_path),
        "RCM_ENV": "test",
        "RCM_BROKER_URL": "",
    }
    get_settings.cache_clear()


async def _seed_one(store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant) -> uuid.UUID:
    row_id = uuid.uuid4()
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        keyring = await store.keyring(session, tid(tenant))
        session.add(
            PhiSample(
                tenant_id=tenant.id,
                id=row_id,
                name_enc=keyring.encrypt(
                    table=PHI_TABLE, column="name_enc", row_id=row_id, plaintext=b"Ann Lee"
                ),
            )
        )
    return row_id


async def _read(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, row_id: uuid.UUID
) -> bytes:
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        keyring = await store.keyring(session, tid(tenant))
        row = await session.get(PhiSample, (tenant.id, row_id))
        assert row is not None
        return keyring.decrypt(table=PHI_TABLE, column="name_enc", row_id=row_id, ciphertext=row.name_enc)


async def _states(owner_engine: AsyncEngine, tenant: Tenant) -> list[tuple[str, int, str, str]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT purpose, version, state, kek_id FROM rcm.data_key WHERE tenant_id = :t ORDER BY 1, 2"
            ),
            {"t": tenant.id},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _events(owner_engine: AsyncEngine, tenant: Tenant) -> list[tuple[str, str, str]]:
    """Key operations land in the tenant's audit chain (the seeding above records nothing)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event_type, action, resource_type FROM rcm.audit_event WHERE tenant_id = :t "
                "AND event_type IN ('keys.rotate', 'tenant.offboard') ORDER BY occurred_at, xid, id"
            ),
            {"t": tenant.id},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_keys_rotate_with_new_kek(
    cli_env: dict[str, str],
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    store = KeyStore(LocalFileKeyProvider(tmp_path / "keks"))
    row_id = await _seed_one(store, sessions, tenant)
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["keys", "rotate", "--tenant", tenant.slug, "--new-kek"], env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert f"{tenant.slug}: re-wrapped 2 keys, PHI key now v2, re-encrypted 1 rows" in result.output
    assert "new key-encryption key kek-" in result.output
    states = await _states(owner_engine, tenant)
    assert [(p, v, s) for p, v, s, _ in states] == [
        ("blind_index", 1, "active"),
        ("phi", 1, "retired"),
        ("phi", 2, "active"),
    ]
    assert len({kek for *_, kek in states}) == 1  # all under the new KEK
    assert await _events(owner_engine, tenant) == [("keys.rotate", "E", "data_key")]
    fresh = KeyStore(LocalFileKeyProvider(tmp_path / "keks", create=False))
    assert await _read(fresh, sessions, tenant, row_id) == b"Ann Lee"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_keys_rotate_reseals_files_before_retiring_the_old_key(
    cli_env: dict[str, str],
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    """What an operator sees: with no broker, the rotation re-seals the practice's files itself."""
    blobs = BlobStore(BlobBackend.DIRECTORY, tmp_path / "blobs")

    def scope(store: KeyStore) -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            sessions,
            store,
            tid(tenant),
            actor=client_principal(tenant.id),
            request=request_info_from(None),
            job="tests.cli",
        )

    async with scope(KeyStore(LocalFileKeyProvider(tmp_path / "keks"))) as s:
        ref = await blobs.put(s, _one(b"scanned referral letter"), content_type="application/pdf")
    env = {**cli_env, "RCM_BLOB_BACKEND": "directory", "RCM_BLOB_DIR": str(tmp_path / "blobs")}
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["keys", "rotate", "--tenant", tenant.slug], env=env
    )
    assert result.exit_code == 0, result.output
    assert f"{tenant.slug}: re-wrapped 0 keys, PHI key now v2, re-encrypted 0 rows and re-sealed 1 blobs" in (
        result.output
    )
    assert [(p, v, s) for p, v, s, _ in await _states(owner_engine, tenant)] == [
        ("blind_index", 1, "active"),
        ("phi", 1, "retired"),
        ("phi", 2, "active"),
    ]
    assert [p.name for p in (tmp_path / "blobs" / tenant.id.hex).iterdir()] == [f"{ref.id.hex}.g1"]
    async with scope(KeyStore(LocalFileKeyProvider(tmp_path / "keks", create=False))) as s:
        assert await blobs.read_all(s, ref.id) == b"scanned referral letter"


async def test_tenants_offboard_shreds(
    cli_env: dict[str, str],
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    store = KeyStore(LocalFileKeyProvider(tmp_path / "keks"))
    row_id = await _seed_one(store, sessions, tenant)
    refused = await asyncio.to_thread(
        CliRunner().invoke, main, ["tenants", "offboard", tenant.slug], env=cli_env
    )
    assert refused.exit_code == 2
    assert await _read(KeyStore(store.provider), sessions, tenant, row_id) == b"Ann Lee"

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["tenants", "offboard", tenant.slug, "--yes"], env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert "offboarded" in result.output

    async def status() -> str:
        async with owner_engine.connect() as conn:
            found = await conn.execute(text("SELECT status FROM rcm.tenant WHERE id = :t"), {"t": tenant.id})
            return str(found.scalar_one())

    assert await status() == "offboarded"
    assert {s for _, _, s, _ in await _states(owner_engine, tenant)} == {"destroyed"}
    assert await _events(owner_engine, tenant) == [("tenant.offboard", "D", "data_key")]
    with pytest.raises(KeysDestroyedError):
        await _read(KeyStore(store.provider), sessions, tenant, row_id)


async def test_signing_keys_follow_a_new_kek(
    *,
    cli_env: dict[str, str],
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Access-token signing keys are wrapped under the KEK too: after ``--new-kek`` and the old KEK's
    removal, tokens are still issued and verified."""
    own = settings.model_copy(update={"data_dir": Path(cli_env["RCM_DATA_DIR"])})  # the CLI's deployment
    old_kek = LocalFileKeyProvider(own.kek_dir).current_kek_id
    try:
        async with platform_transaction(control_sessions) as session:
            active = await rotate_signing_key(session, own)  # signing key wrapped under the first KEK
        issued = await make_client(control_sessions, tenant)
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["keys", "rotate", "--tenant", tenant.slug, "--new-kek"], env=cli_env
        )
        assert result.exit_code == 0, result.output
        (own.kek_dir / f"{old_kek}.kek").unlink()  # the old KEK is retired

        async with owner_engine.connect() as conn:
            row = await conn.execute(
                text("SELECT kek_id, xmin::text FROM rcm.signing_key WHERE kid = :k"), {"k": active.kid}
            )
            kek_id, xmin = row.one()
        assert kek_id == LocalFileKeyProvider(own.kek_dir, create=False).current_kek_id != old_kek
        rewrap = (await audit_rows(owner_engine, "signing_key.rewrap"))[-1]
        assert rewrap["actor_subject"].startswith("operator:")
        assert rewrap["xmin"] == xmin  # recorded in the re-wrap's transaction

        token = await exchange_in_process(
            own, sessions, client_id=issued.client.client_id, secret=issued.secret
        )
        assert token.status == 200, token.body
        keys = await KeyRing(own).verification_keys(sessions)
        assert verify_access_token(token.body["access_token"], keys, own).client_id == issued.client.client_id
    finally:
        # The rest of the suite signs under the tests' own KEK directory again.
        async with platform_transaction(control_sessions) as session:
            await rotate_signing_key(session, settings)
