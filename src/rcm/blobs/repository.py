"""All SQL for blobs and their chunks."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert, select, update

from rcm.blobs.models import Blob, BlobChunk, BlobState
from rcm.kit.repository import TenantScopedRepository


class BlobRepository(TenantScopedRepository[Blob]):
    model = Blob

    async def add_chunk(self, blob: Blob, seq: int, data: bytes) -> None:
        await self.insert_rows(BlobChunk(tenant_id=blob.tenant_id, blob_id=blob.id, seq=seq, data=data))

    async def insert_rows(self, *rows: BlobChunk) -> None:
        for row in rows:
            if row.tenant_id not in self.context.tenant_ids:
                raise ValueError("row of a tenant outside this unit of work")
        await self.session.execute(
            insert(BlobChunk),
            [{"tenant_id": r.tenant_id, "blob_id": r.blob_id, "seq": r.seq, "data": r.data} for r in rows],
        )

    async def chunk(self, blob: Blob, seq: int) -> bytes | None:
        stmt = select(BlobChunk.data).where(
            self.tenant_filter(BlobChunk.tenant_id),
            BlobChunk.tenant_id == blob.tenant_id,
            BlobChunk.blob_id == blob.id,
            BlobChunk.seq == seq,
        )
        found: bytes | None = (await self._execute(stmt)).scalar_one_or_none()
        return found

    async def chunks(self, blob: Blob, start: int, stop: int) -> dict[int, bytes]:
        """Chunks ``start <= seq < stop`` of ``blob`` by sequence number, in one statement."""
        stmt = select(BlobChunk.seq, BlobChunk.data).where(
            self.tenant_filter(BlobChunk.tenant_id),
            BlobChunk.tenant_id == blob.tenant_id,
            BlobChunk.blob_id == blob.id,
            BlobChunk.seq >= start,
            BlobChunk.seq < stop,
        )
        return {int(row.seq): bytes(row.data) for row in (await self._execute(stmt)).all()}

    async def complete(self, blob: Blob, *, chunk_count: int, size: int, sha256: bytes) -> None:
        await self._execute(
            update(Blob)
            .where(self.tenant_filter(Blob.tenant_id), Blob.tenant_id == blob.tenant_id, Blob.id == blob.id)
            .values(state=BlobState.COMPLETE, chunk_count=chunk_count, size=size, sha256=sha256)
        )
        blob.state, blob.chunk_count, blob.size, blob.sha256 = BlobState.COMPLETE, chunk_count, size, sha256

    async def remove(self, blob: Blob) -> None:
        """Delete the blob row (its PostgreSQL chunks go with it: ON DELETE CASCADE)."""
        await self._execute(
            delete(Blob).where(
                self.tenant_filter(Blob.tenant_id), Blob.tenant_id == blob.tenant_id, Blob.id == blob.id
            )
        )

    async def get_complete(self, blob_id: uuid.UUID) -> Blob | None:
        return await self._first(
            self.base_statement().where(Blob.id == blob_id, Blob.state == BlobState.COMPLETE)
        )
