"""Rotation with background re-encryption, re-wrap under a new KEK, crypto-shred."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import request_info_from
from rcm.audit.trail import reencryption_witness
from rcm.config import Settings
from rcm.crypto import DecryptionError, KeysDestroyedError, KeyStore, LocalFileKeyProvider, TenantKeyring
from rcm.crypto.phi import phi_tables
from rcm.crypto.reencrypt import reencrypt_tenant_rows
from rcm.crypto.tasks import reencrypt_tenant, sealed_elsewhere, use_keystore
from rcm.identity.principal import system_principal
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext
from rcm.tenancy.models import Tenant
from rcm.worker import configure_jobs, encode_payload_roundtrip, setup_broker
from tests.conftest import tid
from tests.crypto.conftest import PHI_TABLE, PhiSample

WITNESS = reencryption_witness(system_principal("tests.rotation"), request_info_from(None))

pytestmark = pytest.mark.usefixtures("phi_table")


async def _keyring(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> TenantKeyring:
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        return await store.keyring(session, tid(tenant))


async def _seed(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, count: int
) -> dict[uuid.UUID, str]:
    expected: dict[uuid.UUID, str] = {}
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        keyring = await store.keyring(session, tid(tenant))
        for i in range(count):
            row_id = uuid.uuid4()
            name = f"Patient {i:03d}"
            expected[row_id] = name
            session.add(
                PhiSample(
                    tenant_id=tenant.id,
                    id=row_id,
                    name_enc=keyring.encrypt_str(
                        table=PHI_TABLE, column="name_enc", row_id=row_id, value=name
                    ),
                    note_enc=None
                    if i % 3 == 0
                    else keyring.encrypt_str(
                        table=PHI_TABLE, column="note_enc", row_id=row_id, value=f"note {i}"
                    ),
                )
            )
    return expected


async def _read_all(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> tuple[dict[uuid.UUID, str], set[int]]:
    """Decrypt every row as the application would; returns names and the key versions seen."""
    store.evict(tid(tenant))
    names: dict[uuid.UUID, str] = {}
    versions: set[int] = set()
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        keyring = await store.keyring(session, tid(tenant))
        for row in (await session.execute(select(PhiSample))).scalars():
            value = keyring.decrypt_str(
                table=PHI_TABLE, column="name_enc", row_id=row.id, ciphertext=row.name_enc
            )
            assert value is not None
            names[row.id] = value
            versions.add(int.from_bytes(row.name_enc[1:5], "big"))
            if row.note_enc is not None:
                note = keyring.decrypt_str(
                    table=PHI_TABLE, column="note_enc", row_id=row.id, ciphertext=row.note_enc
                )
                assert note is not None
                assert note.startswith("note ")
    return names, versions


async def _key_states(owner_engine: AsyncEngine, tenant: Tenant) -> dict[tuple[str, int], str]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT purpose, version, state FROM rcm.data_key WHERE tenant_id = :t"), {"t": tenant.id}
        )
        return {(purpose, version): state for purpose, version, state in rows}


def test_registry_finds_declared_phi_columns() -> None:
    entries = {entry.name: entry.columns for entry in phi_tables()}
    assert entries[PHI_TABLE] == ("name_enc", "note_enc")


async def test_rotation_then_background_reencryption_keeps_reads_working(
    *,
    settings: Settings,
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    expected = await _seed(store, sessions, tenant, 10)
    theirs = await _seed(store, sessions, other_tenant, 4)
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        assert await store.rotate(session, tid(tenant)) == 2
    assert await _key_states(owner_engine, tenant) == {
        ("phi", 1): "decrypt_only",
        ("phi", 2): "active",
        ("blind_index", 1): "active",  # blind-index keys are not rotated
    }
    # Straight after the rotation: all rows still on v1, all readable; new writes use v2.
    assert await _read_all(store, sessions, tenant) == (expected, {1})
    expected.update(await _seed(store, sessions, tenant, 1))

    # Re-encrypt in batches of 3 (four transactions for the ten v1 rows; the new row is already on v2).
    sealed = sealed_elsewhere(settings)
    report = await reencrypt_tenant_rows(
        sessions, store, tid(tenant), sealed=sealed, witness=WITNESS, batch_size=3
    )
    assert await _read_all(store, sessions, tenant) == (expected, {2})
    assert report.rows == 10
    assert report.complete
    assert report.retired == 1
    assert (await _key_states(owner_engine, tenant))[("phi", 1)] == "retired"
    # Every row opened and sealed again is in the tenant's audit trail, batch by batch, by the job.
    async with owner_engine.connect() as conn:
        witnessed = (
            await conn.execute(
                text(
                    "SELECT resource_ids, actor_subject FROM rcm.audit_event"
                    " WHERE tenant_id = :t AND event_type = 'phi.reseal'"
                ),
                {"t": tenant.id},
            )
        ).all()
    assert sum(len(ids) for ids, _ in witnessed) == 10
    assert {actor for _, actor in witnessed} == {"system:tests.rotation"}
    # The other tenant was not touched.
    assert await _read_all(store, sessions, other_tenant) == (theirs, {1})
    # Idempotent: a redelivered job finds nothing to do.
    again = await reencrypt_tenant_rows(
        sessions, store, tid(tenant), sealed=sealed, witness=WITNESS, batch_size=3
    )
    assert (again.rows, again.retired, again.complete) == (0, 0, True)


async def test_reads_work_midway_through_reencryption(
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    expected = await _seed(store, sessions, tenant, 6)
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        await store.rotate(session, tid(tenant))
    # Re-encrypt only part of the table (a job interrupted half-way), then read a mix of versions.
    entry = next(e for e in phi_tables() if e.name == PHI_TABLE)
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        keyring = await store.keyring(session, tid(tenant))
        first = sorted(expected)[:3]
        for row_id in first:
            row = await session.get(PhiSample, (tenant.id, row_id))
            assert row is not None
            plain = keyring.decrypt(
                table=PHI_TABLE, column="name_enc", row_id=row_id, ciphertext=row.name_enc
            )
            row.name_enc = keyring.encrypt(table=PHI_TABLE, column="name_enc", row_id=row_id, plaintext=plain)
    names, versions = await _read_all(store, sessions, tenant)
    assert names == expected
    assert versions == {1, 2}
    async with owner_engine.connect() as conn:
        stale = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM rcm.{PHI_TABLE} WHERE tenant_id = :t "  # noqa: S608 - constant name
                    "AND (get_byte(name_enc, 4) = 1 OR coalesce(get_byte(note_enc, 4) = 1, false))"
                ),
                {"t": tenant.id},
            )
        ).scalar_one()
    assert stale >= 3  # the three untouched rows, plus touched rows whose note is still on v1
    # Only the sample table, nothing sealed elsewhere: this tenant has no blobs.
    report = await reencrypt_tenant_rows(
        sessions, store, tid(tenant), sealed=(), witness=WITNESS, batch_size=2, tables=[entry]
    )
    assert report.rows == stale
    assert await _read_all(store, sessions, tenant) == (expected, {2})


async def test_reencrypt_job_runs_from_its_json_payload(
    *,
    settings: Settings,
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    expected = await _seed(store, sessions, tenant, 5)
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        await store.rotate(session, tid(tenant))
    setup_broker(settings.model_copy(update={"broker_url": None}))
    configure_jobs(settings, sessions=sessions)
    use_keystore(store)
    try:
        payload = encode_payload_roundtrip(reencrypt_tenant.message(tenant_id=tenant.id, batch_size=2))
        assert payload == {"tenant_id": str(tenant.id), "batch_size": 2}
        assert await reencrypt_tenant(**json.loads(json.dumps(payload))) == 5
        assert await reencrypt_tenant(**payload) == 0  # at-least-once delivery: the second run is a no-op
    finally:
        use_keystore(None)
    assert await _read_all(store, sessions, tenant) == (expected, {2})
    assert (await _key_states(owner_engine, tenant))[("phi", 1)] == "retired"


async def test_rewrap_under_a_new_kek(
    *,
    provider: LocalFileKeyProvider,
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    kek_dir: Path,
    tenant: Tenant,
) -> None:
    expected = await _seed(store, sessions, tenant, 3)
    old_kek = provider.current_kek_id
    new_kek = provider.add_kek()
    assert new_kek != old_kek
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        assert await store.rewrap(session, tid(tenant)) == 2
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        assert await store.rewrap(session, tid(tenant)) == 0  # already under the current KEK
    async with owner_engine.connect() as conn:
        keks = (
            (
                await conn.execute(
                    text("SELECT DISTINCT kek_id FROM rcm.data_key WHERE tenant_id = :t"), {"t": tenant.id}
                )
            )
            .scalars()
            .all()
        )
    assert keks == [new_kek]
    # The old KEK can now go: a process that only has the new one still reads everything.
    (kek_dir / f"{old_kek}.kek").unlink()
    fresh = KeyStore(LocalFileKeyProvider(kek_dir, create=False))
    assert await _read_all(fresh, sessions, tenant) == (expected, {1})


async def test_shred_makes_phi_unreadable_even_for_a_fresh_store(
    *,
    provider: LocalFileKeyProvider,
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    kek_dir: Path,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    await _seed(store, sessions, tenant, 2)
    theirs = await _seed(store, sessions, other_tenant, 2)
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        await store.shred(session, tid(tenant))
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT state, wrapped IS NULL FROM rcm.data_key WHERE tenant_id = :t"), {"t": tenant.id}
            )
        ).all()
    assert rows
    assert all(row == ("destroyed", True) for row in rows)
    for candidate in (store, KeyStore(LocalFileKeyProvider(kek_dir, create=False))):
        with pytest.raises(KeysDestroyedError):
            await _read_all(candidate, sessions, tenant)
    # No fresh keys are minted for a shredded tenant either.
    with pytest.raises(DecryptionError):
        await _keyring(store, sessions, tenant)
    assert await _read_all(KeyStore(provider), sessions, other_tenant) == (theirs, {1})


async def test_shred_of_a_tenant_without_keys_leaves_a_tombstone(
    store: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
) -> None:
    async with tenant_transaction(
        control_sessions, TenantContext.single(tid(tenant))
    ) as session:  # operator commands: control role
        await store.shred(session, tid(tenant))
    with pytest.raises(KeysDestroyedError):
        await _keyring(store, sessions, tenant)
