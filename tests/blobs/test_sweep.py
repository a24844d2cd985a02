"""The blob sweep: files with no committed row go once old enough; committed blobs' files and files of a
transaction still in progress stay."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.blobs.jobs import sweep_all_tenants
from rcm.blobs.models import BlobBackend
from rcm.blobs.reseal import reseal_lock
from rcm.blobs.store import BlobRef, BlobStore, parse_file_name
from rcm.blobs.sweep import sweep_tenant_directory
from rcm.tenancy.models import Tenant
from rcm.worker.scheduler import periodic_jobs
from tests.blobs.conftest import ScopeFor
from tests.conftest import tid

CHUNK = 1024
HOUR = timedelta(hours=1)


class RolledBack(Exception):
    """Makes the unit of work roll back after the blob's file was written."""


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _names(root: Path, tenant: Tenant) -> set[str]:
    return {p.name for p in (root / tenant.id.hex).iterdir()}


async def _put_rolled_back(
    store: BlobStore,
    scope_for: ScopeFor,
    tenant: Tenant,
    data: bytes,
    before_rollback: Callable[[BlobRef], Awaitable[None]] | None = None,
) -> BlobRef:
    """Put a blob in a unit of work that then rolls back (its file is written, its row never commits)."""
    ref: BlobRef | None = None
    try:
        async with scope_for(tenant) as scope:
            ref = await store.put(scope, _stream(data), content_type="text/plain")
            if before_rollback is not None:
                await before_rollback(ref)
            raise RolledBack
    except RolledBack:
        pass
    assert ref is not None
    return ref


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(BlobBackend.DIRECTORY, tmp_path / "blobs", chunk_size=CHUNK)


async def test_an_orphan_file_is_swept_and_a_committed_blobs_file_kept(
    store: BlobStore,
    scope_for: ScopeFor,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    assert store.directory is not None
    async with scope_for(tenant) as scope:
        kept = await store.put(scope, _stream(b"committed " * 300), content_type="text/plain")
    orphan = await _put_rolled_back(store, scope_for, tenant, b"rolled back " * 300)
    async with scope_for(other_tenant) as scope:
        theirs = await store.put(scope, _stream(b"theirs"), content_type="text/plain")
    assert _names(store.directory, tenant) == {kept.id.hex, orphan.id.hex}
    tenant_dir = store.directory / tenant.id.hex
    # Leftovers the store may find: a writer that died mid-file, and a file nobody here wrote.
    (tenant_dir / f"{kept.id.hex}.g3.part").write_bytes(b"\x00" * 10)
    (tenant_dir / "README.txt").write_bytes(b"operator notes")

    # Too young: nothing goes, whatever it is.
    assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=HOUR) == 0
    for path in tenant_dir.iterdir():
        _age(path, 2 * 3600)
    assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=HOUR) == 2
    assert _names(store.directory, tenant) == {kept.id.hex, "README.txt"}
    async with scope_for(tenant) as scope:
        assert await store.read_all(scope, kept.id) == b"committed " * 300
    # Idempotent, and the other practice's file is not this tenant's business.
    assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=HOUR) == 0
    assert _names(store.directory, other_tenant) == {theirs.id.hex}


async def test_a_file_of_a_transaction_still_in_progress_is_kept(
    store: BlobStore, scope_for: ScopeFor, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    assert store.directory is not None
    directory = store.directory
    seen: list[int] = []

    async def sweep_meanwhile(pending: BlobRef) -> None:
        # No grace at all: only the writer's running transaction protects its file (its row is invisible
        # to the sweep until it commits).
        seen.append(await sweep_tenant_directory(sessions, directory, tid(tenant), grace=timedelta(0)))
        assert _names(directory, tenant) == {pending.id.hex}

    await _put_rolled_back(store, scope_for, tenant, b"not yet committed", sweep_meanwhile)
    assert seen == [0]
    assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=timedelta(0)) == 1
    assert _names(store.directory, tenant) == set()


async def test_the_scheduled_sweep_covers_every_tenant(
    store: BlobStore,
    scope_for: ScopeFor,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    assert store.directory is not None
    for who in (tenant, other_tenant):
        ref = await _put_rolled_back(store, scope_for, who, b"x")
        _age(store.directory / who.id.hex / ref.id.hex, 2 * 3600)
    (store.directory / "not-a-tenant").mkdir()
    # A folder of a tenant this database does not know: nothing in it can be judged, so nothing goes.
    stranger = store.directory / uuid.uuid4().hex
    stranger.mkdir()
    (stranger / uuid.uuid4().hex).write_bytes(b"someone else's")
    _age(next(stranger.iterdir()), 2 * 3600)
    report = await sweep_all_tenants(sessions, store, grace=HOUR)
    assert report.files_removed == 2
    assert _names(store.directory, tenant) == _names(store.directory, other_tenant) == set()
    assert (store.directory / "not-a-tenant").is_dir()
    assert len(list(stranger.iterdir())) == 1
    assert "blobs.sweep" in periodic_jobs()


def test_file_names_say_what_they_are_and_nothing_else() -> None:
    blob = "0123456789abcdef0123456789abcdef"
    assert parse_file_name(blob) is not None
    parsed = parse_file_name(f"{blob}.g12.part")
    assert parsed is not None
    assert (parsed.blob_id.hex, parsed.generation, parsed.partial) == (blob, 12, True)
    for name in (f"{blob}.g0", f"{blob}.g1.tmp", "notes.txt", f"{blob.upper()}", f"{blob}.part.g1"):
        assert parse_file_name(name) is None, name


async def test_no_file_goes_while_a_reseal_of_the_tenant_runs(
    store: BlobStore, scope_for: ScopeFor, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    """A re-seal writes next-generation files no row points at yet: the sweep keeps off the tenant."""
    assert store.directory is not None
    orphan = await _put_rolled_back(store, scope_for, tenant, b"x")
    _age(store.directory / tenant.id.hex / orphan.id.hex, 2 * 3600)
    async with reseal_lock(sessions, tid(tenant)):
        assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=HOUR) == 0
    assert await sweep_tenant_directory(sessions, store.directory, tid(tenant), grace=HOUR) == 1
