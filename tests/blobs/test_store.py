"""The blob store on both backends: round trip, isolation, tampering, size limit, flat memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.blobs.models import BlobBackend
from rcm.blobs.store import BlobStore, rechunk
from rcm.crypto.stream import StreamError
from rcm.kit.errors import NotFound, PayloadTooLarge
from rcm.tenancy.models import Tenant
from tests.blobs.conftest import ScopeFor

CHUNK = 1024


async def _stream(data: bytes, piece: int = 700) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture(params=[BlobBackend.POSTGRES, BlobBackend.DIRECTORY])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BlobStore(request.param, tmp_path / "blobs", chunk_size=CHUNK)


async def test_rechunk_cuts_exact_pieces_and_marks_the_last() -> None:
    pieces = [p async for p in rechunk(_stream(b"x" * 2048, 300), 1024)]
    assert [(len(p), last) for p, last in pieces] == [(1024, False), (1024, True)]
    pieces = [p async for p in rechunk(_stream(b""), 1024)]
    assert pieces == [(b"", True)]
    pieces = [p async for p in rechunk(_stream(b"y" * 1025, 1), 1024)]
    assert [(len(p), last) for p, last in pieces] == [(1024, False), (1, True)]


@pytest.mark.parametrize("size", [0, 1, CHUNK, 5 * CHUNK + 17])
async def test_round_trip(store: BlobStore, scope_for: ScopeFor, tenant: Tenant, size: int) -> None:
    data = os.urandom(size)
    async with scope_for(tenant) as scope:
        ref = await store.put(scope, _stream(data), content_type="application/pdf")
    assert ref.size == size
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    async with scope_for(tenant) as scope:
        assert await store.read_all(scope, ref.id) == data
        assert (await store.ref(scope, ref.id)).content_type == "application/pdf"


async def test_another_tenant_cannot_open_or_delete(
    store: BlobStore, scope_for: ScopeFor, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with scope_for(tenant) as scope:
        ref = await store.put(scope, _stream(b"secret"), content_type="text/plain")
    async with scope_for(other_tenant) as scope:
        with pytest.raises(NotFound):
            await store.read_all(scope, ref.id)
        with pytest.raises(NotFound):
            await store.delete(scope, ref.id)


async def test_delete(store: BlobStore, scope_for: ScopeFor, tenant: Tenant) -> None:
    async with scope_for(tenant) as scope:
        ref = await store.put(scope, _stream(b"abc" * 1000), content_type="text/plain")
    async with scope_for(tenant) as scope:
        await store.delete(scope, ref.id)
    async with scope_for(tenant) as scope:
        with pytest.raises(NotFound):
            await store.ref(scope, ref.id)
    if store.directory is not None:
        assert _files(store.directory) == []


async def test_too_large_is_refused_and_leaves_nothing(
    store: BlobStore, scope_for: ScopeFor, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    with pytest.raises(PayloadTooLarge):
        async with scope_for(tenant) as scope:
            await store.put(scope, _stream(b"z" * 5000), content_type="text/plain", max_bytes=4096)
    async with owner_engine.connect() as conn:
        count = (
            await conn.execute(text("SELECT count(*) FROM rcm.blob WHERE tenant_id = :t"), {"t": tenant.id})
        ).scalar_one()
    assert count == 0
    if store.directory is not None:
        assert _files(store.directory) == []


async def test_directory_names_are_opaque_ids(tmp_path: Path, scope_for: ScopeFor, tenant: Tenant) -> None:
    store = BlobStore(BlobBackend.DIRECTORY, tmp_path, chunk_size=CHUNK)
    async with scope_for(tenant) as scope:
        ref = await store.put(scope, _stream(b"Fakename, Testy DOB 1980-02-29"), content_type="text/plain")
    files = _files(tmp_path)
    assert [p.relative_to(tmp_path).parts for p in files] == [(tenant.id.hex, ref.id.hex)]
    assert b"Fakename" not in files[0].read_bytes()


async def test_postgres_chunks_swapped_between_blobs_or_dropped_are_refused(
    scope_for: ScopeFor, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    store = BlobStore(BlobBackend.POSTGRES, chunk_size=CHUNK)
    async with scope_for(tenant) as scope:
        first = await store.put(scope, _stream(os.urandom(3 * CHUNK)), content_type="text/plain")
        second = await store.put(scope, _stream(os.urandom(3 * CHUNK)), content_type="text/plain")
    swap = (
        "UPDATE rcm.blob_chunk SET data = (SELECT data FROM rcm.blob_chunk"
        " WHERE tenant_id = :t AND blob_id = :b AND seq = 0)"
        " WHERE tenant_id = :t AND blob_id = :a AND seq = 0"
    )
    async with owner_engine.begin() as conn:
        await conn.execute(text("SELECT set_config('rcm.tenant_id', :t, true)"), {"t": str(tenant.id)})
        await conn.execute(text(swap), {"t": tenant.id, "a": first.id, "b": second.id})
        # Truncation: the last chunk dropped and the count lowered to match.
        await conn.execute(
            text("DELETE FROM rcm.blob_chunk WHERE tenant_id = :t AND blob_id = :b AND seq = 2"),
            {"t": tenant.id, "b": second.id},
        )
        await conn.execute(
            text("UPDATE rcm.blob SET chunk_count = 2 WHERE tenant_id = :t AND id = :b"),
            {"t": tenant.id, "b": second.id},
        )
    async with scope_for(tenant) as scope:
        with pytest.raises(StreamError, match="chunk 0"):
            await store.read_all(scope, first.id)
        with pytest.raises(StreamError, match="chunk 1"):
            await store.read_all(scope, second.id)


async def test_directory_file_cut_or_extended_is_refused(
    tmp_path: Path, scope_for: ScopeFor, tenant: Tenant
) -> None:
    store = BlobStore(BlobBackend.DIRECTORY, tmp_path, chunk_size=CHUNK)
    async with scope_for(tenant) as scope:
        ref = await store.put(scope, _stream(os.urandom(3 * CHUNK)), content_type="text/plain")
    path = tmp_path / tenant.id.hex / ref.id.hex
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    async with scope_for(tenant) as scope:
        with pytest.raises(StreamError):
            await store.read_all(scope, ref.id)
    path.write_bytes(whole + b"\x00")
    async with scope_for(tenant) as scope:
        with pytest.raises(StreamError, match="after the final"):
            await store.read_all(scope, ref.id)


async def test_memory_stays_flat(store: BlobStore, scope_for: ScopeFor, tenant: Tenant) -> None:
    """16 MiB in and out at 64 KiB chunks: peak allocation stays around a few chunks."""
    big = BlobStore(store.backend, store.directory)
    piece = os.urandom(64 * 1024)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield piece

    tracemalloc.start()
    try:
        async with scope_for(tenant) as scope:
            ref = await big.put(scope, source(), content_type="application/octet-stream")
        async with scope_for(tenant) as scope:
            total = 0
            async for chunk in big.open(scope, ref.id):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 256 * len(piece)
    assert peak < 4 * 1024 * 1024, peak
