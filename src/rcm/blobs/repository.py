"""All SQL for blobs and their chunks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from rcm.blobs.models import Blob, BlobBackend, BlobChunk, BlobState
from rcm.kit.repository import TenantScopedRepository
from rcm.kit.tenant import TenantId


class BlobRepository(TenantScopedRepository[Blob]):
    model = Blob

    async def add_chunk(self, blob: Blob, seq: int, data: bytes, *, generation: int | None = None) -> None:
        """Chunk ``seq`` of ``blob``'s current generation, or of ``generation`` (a re-seal's next one)."""
        generation = blob.generation if generation is None else generation
        await self.insert_rows(
            BlobChunk(tenant_id=blob.tenant_id, blob_id=blob.id, generation=generation, seq=seq, data=data)
        )

    async def insert_rows(self, *rows: BlobChunk) -> None:
        for row in rows:
            if row.tenant_id not in self.context.tenant_ids:
                raise ValueError("row of a tenant outside this unit of work")
        await self.session.execute(
            insert(BlobChunk),
            [
                {
                    "tenant_id": r.tenant_id,
                    "blob_id": r.blob_id,
                    "generation": r.generation,
                    "seq": r.seq,
                    "data": r.data,
                }
                for r in rows
            ],
        )

    async def chunks(self, blob: Blob, start: int, stop: int, *, generation: int) -> dict[int, bytes]:
        """Chunks ``start <= seq < stop`` of ``blob``'s ``generation`` by sequence number, in one statement.

        The generation is the one the reader saw in the metadata: a re-seal that flips the blob meanwhile
        leaves those chunks in place (until the sweep's grace period), so a reader never mixes two."""
        stmt = select(BlobChunk.seq, BlobChunk.data).where(
            self.tenant_filter(BlobChunk.tenant_id),
            BlobChunk.tenant_id == blob.tenant_id,
            BlobChunk.blob_id == blob.id,
            BlobChunk.generation == generation,
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
            self.base_statement()
            .where(Blob.id == blob_id, Blob.state == BlobState.COMPLETE)
            # A long reader opens the metadata again after a re-seal: the row as committed now, not as this
            # session's identity map last saw it.
            .execution_options(populate_existing=True)
        )

    # Re-sealing under a newer key (rcm.blobs.reseal) ---------------------------------------------------

    async def stale_batch(self, active_version: int, *, after: uuid.UUID, limit: int) -> list[Blob]:
        """The next ``limit`` complete blobs sealed under an older key version than ``active_version``, in
        id order after ``after`` (keyset: a blob that cannot be re-sealed is passed over, not retried).
        Older only: a blob already under a newer version (a rotation overtook this run, and this process's
        keyring has not seen it yet) is left for that rotation's own job, never sealed back down."""
        return await self._all(
            self.base_statement()
            .where(
                Blob.key_version < active_version,
                Blob.state == BlobState.COMPLETE,
                Blob.id > after,
            )
            .order_by(Blob.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )

    async def count_stale(self, active_version: int) -> int:
        """Blobs, complete or not, under another key version than ``active_version``: any of them keeps the
        older keys from retiring (as a PHI row under another version does)."""
        stmt = select(func.count()).where(
            self.tenant_filter(Blob.tenant_id), Blob.key_version != active_version
        )
        return int((await self._execute(stmt)).scalar_one())

    async def copy_chunks(self, blob: Blob, start: int, stop: int) -> dict[int, bytes]:
        """Chunks of the blob's current generation, for re-sealing them."""
        return await self.chunks(blob, start, stop, generation=blob.generation)

    async def drop_generations_above(self, blob: Blob, generation: int) -> None:
        """Chunks of a re-seal that never flipped (a crash, a lost race): no reader can know them."""
        await self._execute(
            delete(BlobChunk).where(
                self.tenant_filter(BlobChunk.tenant_id),
                BlobChunk.tenant_id == blob.tenant_id,
                BlobChunk.blob_id == blob.id,
                BlobChunk.generation > generation,
            )
        )

    async def drop_generation(self, blob: Blob, generation: int) -> None:
        await self._execute(
            delete(BlobChunk).where(
                self.tenant_filter(BlobChunk.tenant_id),
                BlobChunk.tenant_id == blob.tenant_id,
                BlobChunk.blob_id == blob.id,
                BlobChunk.generation == generation,
            )
        )

    async def flip(
        self, blob: Blob, *, key_version: int, salt: bytes, generation: int, superseded: bool
    ) -> bool:
        """Switch ``blob`` to its new generation in one UPDATE, only if it is still the one re-sealed (same
        generation and key version: not deleted, not re-sealed by someone else meanwhile). Readers see the
        old row or the new one, never a part of each."""
        result = await self._execute(
            update(Blob)
            .where(
                self.tenant_filter(Blob.tenant_id),
                Blob.tenant_id == blob.tenant_id,
                Blob.id == blob.id,
                Blob.generation == blob.generation,
                Blob.key_version == blob.key_version,
            )
            .values(
                key_version=key_version,
                salt=salt,
                generation=generation,
                superseded_since=func.now() if superseded else Blob.superseded_since,
            )
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    # The sweep (rcm.blobs.sweep) --------------------------------------------------------------------------

    async def generations(self, blob_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[BlobBackend, int]]:
        """Backend and current generation of each committed blob among ``blob_ids``, in one statement."""
        stmt = select(Blob.id, Blob.backend, Blob.generation).where(
            self.tenant_filter(Blob.tenant_id), Blob.id.in_(blob_ids)
        )
        return {row.id: (BlobBackend(row.backend), int(row.generation)) for row in await self._rows(stmt)}

    async def lock_superseded(self, before: datetime, *, limit: int) -> list[tuple[Any, uuid.UUID, int]]:
        """Up to ``limit`` blobs whose older chunks were superseded before ``before``, locked (a re-seal's
        flip waits; rows another transaction holds are passed over)."""
        stmt = (
            select(Blob.tenant_id, Blob.id, Blob.generation)
            .where(
                self.tenant_filter(Blob.tenant_id),
                Blob.superseded_since.is_not(None),
                Blob.superseded_since < before,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(row.tenant_id, row.id, int(row.generation)) for row in await self._rows(stmt)]

    async def drop_superseded(self, blobs: Sequence[tuple[Any, uuid.UUID, int]]) -> int:
        """Delete the chunks of generations older than each blob's current one and clear the mark."""
        deleted = 0
        for tenant_id, blob_id, generation in blobs:
            result = await self._execute(
                delete(BlobChunk).where(
                    self.tenant_filter(BlobChunk.tenant_id),
                    BlobChunk.tenant_id == tenant_id,
                    BlobChunk.blob_id == blob_id,
                    BlobChunk.generation < generation,
                )
            )
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
        if blobs:
            await self._execute(
                update(Blob)
                .where(
                    self.tenant_filter(Blob.tenant_id),
                    tuple_(Blob.tenant_id, Blob.id).in_([(t, b) for t, b, _ in blobs]),
                )
                .values(superseded_since=None)
            )
        return deleted


# One re-sealer per tenant at a time, and the sweep keeps off a tenant while one runs: both take this
# advisory lock (the re-sealer for its whole run, on a connection of its own; the sweep for a transaction).
_RESEAL_KEY = "hashtextextended('rcm.blob_reseal:' || :tenant, 0)"
_HOLD_RESEAL = text(f"SELECT pg_advisory_lock({_RESEAL_KEY})")
_RELEASE_RESEAL = text(f"SELECT pg_advisory_unlock({_RESEAL_KEY})")
_TRY_RESEAL_XACT = text(f"SELECT pg_try_advisory_xact_lock({_RESEAL_KEY})")


async def hold_reseal_lock(conn: AsyncConnection, tenant_id: TenantId) -> None:
    """Wait for and take the tenant's re-seal lock for the life of ``conn``'s session."""
    await conn.execute(_HOLD_RESEAL, {"tenant": str(tenant_id)})


async def release_reseal_lock(conn: AsyncConnection, tenant_id: TenantId) -> None:
    await conn.execute(_RELEASE_RESEAL, {"tenant": str(tenant_id)})


async def try_reseal_lock_for_transaction(session: AsyncSession, tenant_id: TenantId) -> bool:
    """The tenant's re-seal lock until this transaction ends, or False at once if a re-sealer holds it."""
    found = await session.execute(_TRY_RESEAL_XACT, {"tenant": str(tenant_id)})
    return bool(found.scalar_one())


# Transactions of this database that started before a time and still run (the sweep's second guard: a file
# written by a transaction still in progress has no visible row yet, whatever its age). pg_stat_activity
# shows xact_start for sessions of our own role, which is the role that writes blobs.
_OLDEST_RUNNING = text(
    "SELECT min(xact_start) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
)


async def oldest_running_transaction(session: AsyncSession) -> datetime | None:
    found: datetime | None = (await session.execute(_OLDEST_RUNNING)).scalar_one()
    return found
