"""Re-sealing blobs after a key rotation, on both backends, through the re-encryption job's core.

Rotate, run the job: every blob is under the new version with its content and SHA-256 unchanged, and the
old key is retired only once no blob needs it. A crash between two steps of a blob leaves the old version
readable and a rerun finishes; a reader running across the re-seal gets the whole old or new content.
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import request_info_from
from rcm.audit.trail import reencryption_witness
from rcm.blobs.models import BlobBackend
from rcm.blobs.reseal import BlobResealer
from rcm.blobs.store import BlobRef, BlobStore
from rcm.blobs.sweep import sweep_superseded_chunks, sweep_tenant_directory
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.reencrypt import ReencryptReport, reencrypt_tenant_rows
from rcm.crypto.tasks import sealed_elsewhere
from rcm.identity.principal import system_principal
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from tests.blobs.conftest import ScopeFor
from tests.conftest import tid

CHUNK = 1024
HOUR = timedelta(hours=1)
SIZES = (0, 1, CHUNK, 5 * CHUNK + 17)


class Crash(Exception):
    """Stands for the process dying between two steps of a re-seal."""


@pytest.fixture(params=[BlobBackend.POSTGRES, BlobBackend.DIRECTORY])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BlobStore(request.param, tmp_path / "blobs", chunk_size=CHUNK)


async def _stream(data: bytes, piece: int = 700) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def _put_all(
    blobs: BlobStore, scope_for: ScopeFor, tenant: Tenant, sizes: tuple[int, ...] = SIZES
) -> dict[BlobRef, bytes]:
    stored: dict[BlobRef, bytes] = {}
    async with scope_for(tenant) as scope:
        for size in sizes:
            data = os.urandom(size)
            stored[await blobs.put(scope, _stream(data), content_type="application/pdf")] = data
    return stored


async def _rotate(control_sessions: async_sessionmaker[AsyncSession], keys: KeyStore, tenant: Tenant) -> int:
    async with tenant_transaction(control_sessions, TenantContext.single(tid(tenant))) as session:
        version = await keys.rotate(session, tid(tenant))
    keys.evict(tid(tenant))
    return version


async def _job(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyStore,
    tenant: Tenant,
    resealer: BlobResealer,
) -> ReencryptReport:
    # tables=(): the PHI columns are the crypto tests' business; these tenants have no PHI rows.
    return await reencrypt_tenant_rows(
        sessions,
        keys,
        tid(tenant),
        sealed=[resealer],
        witness=reencryption_witness(system_principal("tests.reseal"), request_info_from(None)),
        tables=(),
    )


async def _rows(owner_engine: AsyncEngine, tenant: Tenant) -> dict[object, tuple[int, int, bytes]]:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT id, key_version, generation, sha256 FROM rcm.blob WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
        return {row.id: (row.key_version, row.generation, bytes(row.sha256)) for row in found}


async def _chunk_generations(owner_engine: AsyncEngine, tenant: Tenant) -> set[tuple[object, int]]:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT DISTINCT blob_id, generation FROM rcm.blob_chunk WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
        return {(row.blob_id, row.generation) for row in found}


async def _phi_key_states(owner_engine: AsyncEngine, tenant: Tenant) -> dict[int, str]:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT version, state FROM rcm.data_key WHERE tenant_id = :t AND purpose = 'phi'"),
            {"t": tenant.id},
        )
        return {row.version: row.state for row in found}


def _names(store: BlobStore, tenant: Tenant) -> set[str]:
    assert store.directory is not None
    return {p.name for p in (store.directory / tenant.id.hex).iterdir()}


async def _assert_readable(
    blobs: BlobStore, scope_for: ScopeFor, tenant: Tenant, stored: dict[BlobRef, bytes]
) -> None:
    async with scope_for(tenant) as scope:
        for ref, data in stored.items():
            assert await blobs.read_all(scope, ref.id) == data
            assert (await blobs.ref(scope, ref.id)).sha256 == hashlib.sha256(data).hexdigest() == ref.sha256


async def test_rotation_reseals_every_blob_then_retires_the_old_key(
    *,
    blobs: BlobStore,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    stored = await _put_all(blobs, scope_for, tenant)
    theirs = await _put_all(blobs, scope_for, other_tenant, (3 * CHUNK,))
    assert await _rotate(control_sessions, keys, tenant) == 2
    assert {v for v, _, _ in (await _rows(owner_engine, tenant)).values()} == {1}
    await _assert_readable(blobs, scope_for, tenant, stored)  # still on v1, readable throughout

    report = await _job(sessions, keys, tenant, BlobResealer(blobs, batch_size=3, chunks_per_step=2))
    assert (report.resealed, report.retired, report.complete) == (len(SIZES), 1, True)
    assert await _phi_key_states(owner_engine, tenant) == {1: "retired", 2: "active"}
    rows = await _rows(owner_engine, tenant)
    assert {ref.id: (2, 1, bytes.fromhex(ref.sha256)) for ref in stored} == rows
    await _assert_readable(blobs, scope_for, tenant, stored)
    # Each blob opened and sealed again is in the practice's audit trail, with its flip.
    async with owner_engine.connect() as conn:
        witnessed = await conn.execute(
            text(
                "SELECT resource_ids FROM rcm.audit_event"
                " WHERE tenant_id = :t AND event_type = 'phi.reseal' AND resource_type = 'blob'"
            ),
            {"t": tenant.id},
        )
        assert sorted(i for (ids,) in witnessed for i in ids) == sorted(ref.id for ref in stored)
    # The other practice's blob is untouched.
    assert {v for v, _, _ in (await _rows(owner_engine, other_tenant)).values()} == {1}
    await _assert_readable(blobs, scope_for, other_tenant, theirs)

    if blobs.backend is BlobBackend.DIRECTORY:
        # One file per blob, the new generation's; the old ones went once the flips committed.
        assert _names(blobs, tenant) == {f"{ref.id.hex}.g1" for ref in stored}
    else:
        # The old generation stays for readers under way, until the sweep's grace period has passed.
        generations = await _chunk_generations(owner_engine, tenant)
        assert generations == {(ref.id, g) for ref in stored for g in (0, 1)}
        assert await sweep_superseded_chunks(sessions, (tid(tenant),), grace=HOUR) == 0
    # A redelivered job finds nothing to do.
    again = await _job(sessions, keys, tenant, BlobResealer(blobs))
    assert (again.resealed, again.retired, again.complete) == (0, 0, True)


async def test_the_job_composes_the_blob_store_from_settings(settings: Settings) -> None:
    (only,) = sealed_elsewhere(settings)
    assert isinstance(only, BlobResealer)
    assert only.store.backend is BlobBackend(settings.blob_backend)
    assert only.name == "blob"


async def test_a_blob_that_cannot_be_resealed_keeps_its_key_from_retiring(
    *,
    blobs: BlobStore,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    stored = await _put_all(blobs, scope_for, tenant, (2 * CHUNK, 3 * CHUNK))
    damaged, intact = list(stored)
    if blobs.backend is BlobBackend.DIRECTORY:
        path = blobs.directory / tenant.id.hex / damaged.id.hex
        whole = bytearray(path.read_bytes())
        whole[-1] ^= 1
        path.write_bytes(bytes(whole))
    else:
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rcm.blob_chunk SET data = set_byte(data, 0, get_byte(data, 0) # 1)"
                    " WHERE tenant_id = :t AND blob_id = :b AND seq = 1"
                ),
                {"t": tenant.id, "b": damaged.id},
            )
    await _rotate(control_sessions, keys, tenant)
    report = await _job(sessions, keys, tenant, BlobResealer(blobs))
    assert (report.resealed, report.retired, report.complete) == (1, 0, False)
    assert await _phi_key_states(owner_engine, tenant) == {1: "decrypt_only", 2: "active"}
    rows = await _rows(owner_engine, tenant)
    assert rows[damaged.id][:2] == (1, 0)
    assert rows[intact.id][:2] == (2, 1)
    await _assert_readable(blobs, scope_for, tenant, {intact: stored[intact]})
    if blobs.backend is BlobBackend.DIRECTORY:
        # The failed attempt left nothing behind.
        assert _names(blobs, tenant) == {damaged.id.hex, f"{intact.id.hex}.g1"}


@pytest.mark.parametrize(
    ("backend", "step"),
    [
        (BlobBackend.POSTGRES, "chunks"),  # some chunks of the new generation written
        (BlobBackend.DIRECTORY, "file"),  # the new file complete and in place, not yet flipped
        (BlobBackend.POSTGRES, "flipped"),  # committed; the old generation still there
        (BlobBackend.DIRECTORY, "flipped"),  # committed; the old file not yet removed
    ],
)
async def test_a_crash_between_steps_leaves_the_old_version_readable_and_a_rerun_completes(
    *,
    backend: BlobBackend,
    step: str,
    tmp_path: Path,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    blobs = BlobStore(backend, tmp_path / "blobs", chunk_size=CHUNK)
    stored = await _put_all(blobs, scope_for, tenant, (5 * CHUNK + 17,))
    (ref,) = stored
    await _rotate(control_sessions, keys, tenant)

    async def crash(name: str) -> None:
        if name == step:
            raise Crash

    with pytest.raises(Crash):
        await _job(sessions, keys, tenant, BlobResealer(blobs, chunks_per_step=2, step_hook=crash))
    assert await _phi_key_states(owner_engine, tenant) == {1: "decrypt_only", 2: "active"}
    await _assert_readable(blobs, scope_for, tenant, stored)
    if step == "flipped":
        assert (await _rows(owner_engine, tenant))[ref.id][:2] == (2, 1)
        if blobs.backend is BlobBackend.DIRECTORY:
            assert _names(blobs, tenant) == {ref.id.hex, f"{ref.id.hex}.g1"}  # the old file, for the sweep
    else:
        # Died before the flip: the row still points at the old generation, and the new one lies about.
        assert (await _rows(owner_engine, tenant))[ref.id][:2] == (1, 0)
        if blobs.backend is BlobBackend.DIRECTORY:
            assert _names(blobs, tenant) == {ref.id.hex, f"{ref.id.hex}.g1"}
        else:
            assert await _chunk_generations(owner_engine, tenant) == {(ref.id, 0), (ref.id, 1)}

    report = await _job(sessions, keys, tenant, BlobResealer(blobs, chunks_per_step=2))
    assert report.complete
    assert report.retired == 1
    assert report.resealed == (0 if step == "flipped" else 1)
    assert (await _rows(owner_engine, tenant))[ref.id][:2] == (2, 1)
    await _assert_readable(blobs, scope_for, tenant, stored)
    if blobs.backend is BlobBackend.DIRECTORY:
        assert blobs.directory is not None
        if step == "flipped":
            # The old file the crash left behind is the sweep's, once older than its grace period.
            for path in (blobs.directory / tenant.id.hex).iterdir():
                os.utime(path, (time.time() - 7200, time.time() - 7200))
            assert await sweep_tenant_directory(sessions, blobs.directory, tid(tenant), grace=HOUR) == 1
        assert _names(blobs, tenant) == {f"{ref.id.hex}.g1"}
        await _assert_readable(blobs, scope_for, tenant, stored)


async def test_reads_across_a_reseal_return_the_whole_old_or_new_content(
    *,
    blobs: BlobStore,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
) -> None:
    stored = await _put_all(blobs, scope_for, tenant, (6 * CHUNK + 5,))
    ((ref, data),) = stored.items()
    await _rotate(control_sessions, keys, tenant)

    def reader() -> Callable[[], AbstractAsyncContextManager[TenantScope]]:
        return lambda: scope_for(tenant)

    # 1. A reader that started before the re-seal and finishes after it.
    before = blobs.open_in_steps(reader(), ref.id, chunks_per_step=1)
    first = await anext(before)

    # 2. Readers in the middle of it: after each step, a whole read.
    seen_during: list[str] = []

    async def read_between(name: str) -> None:
        async with scope_for(tenant) as scope:
            assert await blobs.read_all(scope, ref.id) == data
        seen_during.append(name)

    report = await _job(
        sessions, keys, tenant, BlobResealer(blobs, chunks_per_step=2, step_hook=read_between)
    )
    assert report.resealed == 1
    assert seen_during[-1] == "flipped"
    assert len(seen_during) >= 2
    assert first + b"".join([chunk async for chunk in before]) == data

    # 3. A reader that read the metadata, then the blob was re-sealed again before it opened the chunks.
    await _rotate(control_sessions, keys, tenant)
    raced = False

    @asynccontextmanager
    async def racing() -> AsyncIterator[TenantScope]:
        nonlocal raced
        async with scope_for(tenant) as scope:
            yield scope
        if not raced:
            raced = True
            assert (await _job(sessions, keys, tenant, BlobResealer(blobs))).resealed == 1

    assert b"".join([chunk async for chunk in blobs.open_in_steps(racing, ref.id)]) == data
    assert raced


async def test_superseded_chunks_are_swept_after_the_grace_period(
    *,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    blobs = BlobStore(BlobBackend.POSTGRES, chunk_size=CHUNK)
    stored = await _put_all(blobs, scope_for, tenant, (3 * CHUNK,))
    (ref,) = stored
    await _rotate(control_sessions, keys, tenant)
    await _job(sessions, keys, tenant, BlobResealer(blobs))
    assert await sweep_superseded_chunks(sessions, (tid(tenant),), grace=HOUR) == 0
    assert await _chunk_generations(owner_engine, tenant) == {(ref.id, 0), (ref.id, 1)}
    assert await sweep_superseded_chunks(sessions, (tid(tenant),), grace=timedelta(0)) == 3
    assert await _chunk_generations(owner_engine, tenant) == {(ref.id, 1)}
    async with owner_engine.connect() as conn:
        mark = (
            await conn.execute(text("SELECT superseded_since FROM rcm.blob WHERE id = :b"), {"b": ref.id})
        ).scalar_one()
    assert mark is None
    await _assert_readable(blobs, scope_for, tenant, stored)
    assert await sweep_superseded_chunks(sessions, (tid(tenant),), grace=timedelta(0)) == 0


async def test_resealing_a_large_blob_keeps_memory_flat(
    *,
    blobs: BlobStore,
    scope_for: ScopeFor,
    keys: KeyStore,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
) -> None:
    """16 MiB at 64 KiB chunks re-sealed: peak allocation stays around a few steps of chunks."""
    big = BlobStore(blobs.backend, blobs.directory)
    piece = os.urandom(64 * 1024)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield piece

    async with scope_for(tenant) as scope:
        ref = await big.put(scope, source(), content_type="application/octet-stream")
    await _rotate(control_sessions, keys, tenant)
    tracemalloc.start()
    try:
        report = await _job(sessions, keys, tenant, BlobResealer(big))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.resealed == 1
    assert peak < 4 * 1024 * 1024, peak
    digest = hashlib.sha256()
    async with scope_for(tenant) as scope:
        async for chunk in big.open(scope, ref.id):
            digest.update(chunk)
    assert digest.hexdigest() == ref.sha256 == hashlib.sha256(piece * 256).hexdigest()
