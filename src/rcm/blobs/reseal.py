"""Re-sealing blobs under a tenant's active PHI key after a rotation (``SealedElsewhere`` of
``rcm.crypto.reencrypt``, which the re-encryption job is handed).

A blob is sealed under a key derived from one PHI key version and its salt; a rotation leaves it under the
old one. Each stale blob is re-sealed on its own:

1. chunks of the current generation are opened one by one and sealed again under the active version with a
   fresh salt, into the next generation: ``blob_chunk`` rows written in steps of ``chunks_per_step`` (one
   short transaction each), or a new ``.part`` file renamed into place once complete and synced. Memory is
   one step of chunks, whatever the size; the SHA-256 of the plaintext is checked against the row's;
2. one transaction flips ``key_version``, ``salt`` and ``generation`` (only if the row is still the one
   read: not deleted nor re-sealed meanwhile), so a reader gets the old complete blob or the new one;
3. after the commit: the old file is removed (a reader that already opened it keeps reading it; one that
   has not yet opened it reads the metadata again). Old ``blob_chunk`` rows stay for readers under way and
   are deleted by the sweep after its grace period (``superseded_since``).

A crash anywhere leaves the old generation readable and the row pointing at it; the next run (a redelivered
job) deletes the abandoned generation first and starts that blob over. One re-sealer per tenant runs at a
time (a session advisory lock), so "abandoned" is certain, and the sweep keeps off the tenant meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs import repository
from rcm.blobs.models import Blob, BlobBackend
from rcm.blobs.repository import BlobRepository
from rcm.blobs.store import (
    PART_SUFFIX,
    BlobStore,
    close_into_place,
    create_file,
    discard,
    frame,
    parse_file_name,
    read_chunk,
)
from rcm.crypto.keyring import KeyStore
from rcm.crypto.reencrypt import ResealPass, Witness
from rcm.crypto.stream import TAG_BYTES, StreamError, StreamOpener, StreamSealer
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId

logger = logging.getLogger(__name__)

# Called between the steps of one blob's re-seal with the step's name ("chunks", "file", "flipped"); tests
# raise from it to stand for a crash at that point.
StepHook = Callable[[str], Awaitable[None]]


class _Abandoned(Exception):
    """The blob changed under the re-seal (deleted, or flipped by another run): nothing to flip."""


@dataclass(slots=True)
class BlobResealer:
    """Re-seals a tenant's stale blobs; implements ``rcm.crypto.reencrypt.SealedElsewhere``."""

    store: BlobStore
    batch_size: int = 100  # blobs listed per transaction
    chunks_per_step: int = 16  # postgres chunks re-sealed per transaction (16 x 64 KiB: 1 MiB in memory)
    step_hook: StepHook | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return "blob"

    async def count_stale(self, session: AsyncSession, tenant_id: TenantId, *, active_version: int) -> int:
        return await BlobRepository(session, TenantContext.single(tenant_id)).count_stale(active_version)

    async def reseal_stale(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: KeyStore,
        tenant_id: TenantId,
        *,
        active_version: int,
        witness: Witness,
    ) -> ResealPass:
        context = TenantContext.single(tenant_id)
        done = 0
        after = uuid.UUID(int=0)
        async with reseal_lock(sessions, tenant_id):
            while True:
                async with tenant_transaction(sessions, context) as session:
                    keyring = await store.keyring(session, tenant_id)
                    if keyring.active_version != active_version:
                        return ResealPass(done, overtaken=True)
                    batch = await BlobRepository(session, context).stale_batch(
                        active_version, after=after, limit=self.batch_size
                    )
                if not batch:
                    return ResealPass(done, overtaken=False)
                for blob in batch:
                    after = blob.id
                    try:
                        if await self._reseal(sessions, store, context, blob, witness):
                            done += 1
                    except StreamError:
                        # Altered or truncated: re-sealing it would launder the damage. It stays under its
                        # old key, which therefore is not retired; an operator looks at it (id only, no PHI).
                        logger.warning(
                            "blob could not be opened for re-sealing",
                            extra={"tenant_id": tenant_id, "blob_id": blob.id},
                        )

    async def _reseal(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: KeyStore,
        context: TenantContext,
        blob: Blob,
        witness: Witness,
    ) -> bool:
        """Re-seal one blob; False when it changed meanwhile (deleted, re-sealed) and was left alone."""
        tenant_id = context.tenant_id
        old, new = blob.generation, blob.generation + 1
        async with tenant_transaction(sessions, context) as session:
            keyring = await store.keyring(session, tenant_id)
            opener = keyring.stream_opener(blob.id, version=blob.key_version, salt=blob.salt)
            version, salt, sealer = keyring.stream_sealer(blob.id)
            if blob.backend is BlobBackend.POSTGRES:
                # Rows of an earlier attempt that crashed before its flip: nobody reads them.
                await BlobRepository(session, context).drop_generations_above(blob, old)
        if blob.backend is BlobBackend.DIRECTORY:
            await asyncio.to_thread(self._drop_files_above, tenant_id, blob.id, old)
        try:
            if blob.backend is BlobBackend.POSTGRES:
                digest = await self._copy_chunks(
                    sessions, context, blob, generation=new, opener=opener, sealer=sealer
                )
            else:
                digest = await self._copy_file(tenant_id, blob, generation=new, opener=opener, sealer=sealer)
            if digest != blob.sha256:
                raise StreamError("the re-sealed content does not match the blob's SHA-256")
            async with tenant_transaction(sessions, context) as session:
                repo = BlobRepository(session, context)
                flipped = await repo.flip(
                    blob,
                    key_version=version,
                    salt=salt,
                    generation=new,
                    superseded=blob.backend is BlobBackend.POSTGRES,
                )
                if not flipped:
                    raise _Abandoned
                witness(session, tenant_id, kind="blob", ids=[blob.id])
        except _Abandoned:
            await self._drop_generation(sessions, context, blob, new)
            return False
        except StreamError:
            await self._drop_generation(sessions, context, blob, new)
            raise
        await self._step("flipped")
        if blob.backend is BlobBackend.DIRECTORY:
            # Only now that the new generation is committed; a reader holding the old file open keeps it.
            # (A crash right here leaves the old file behind: the sweep removes it after its grace period.)
            await asyncio.to_thread(self.store.path(tenant_id, blob.id, old).unlink, True)
        return True

    async def _copy_chunks(
        self,
        sessions: async_sessionmaker[AsyncSession],
        context: TenantContext,
        blob: Blob,
        *,
        generation: int,
        opener: StreamOpener,
        sealer: StreamSealer,
    ) -> bytes:
        digest = hashlib.sha256()
        last_index = blob.chunk_count - 1
        for start in range(0, blob.chunk_count, self.chunks_per_step):
            stop = min(start + self.chunks_per_step, blob.chunk_count)
            async with tenant_transaction(sessions, context) as session:
                repo = BlobRepository(session, context)
                sealed = await repo.copy_chunks(blob, start, stop)
                for seq in range(start, stop):
                    data = sealed.pop(seq, None)
                    if data is None:
                        raise StreamError(f"chunk {seq} is missing")
                    plaintext = opener.open(data, last=seq == last_index)
                    digest.update(plaintext)
                    sealed_again = sealer.seal(plaintext, last=seq == last_index)
                    await repo.add_chunk(blob, seq, sealed_again, generation=generation)
            await self._step("chunks")
        opener.finish()
        return digest.digest()

    async def _copy_file(
        self, tenant_id: TenantId, blob: Blob, *, generation: int, opener: StreamOpener, sealer: StreamSealer
    ) -> bytes:
        digest = hashlib.sha256()
        last_index = blob.chunk_count - 1
        limit = blob.chunk_size + TAG_BYTES
        final = self.store.path(tenant_id, blob.id, generation)
        part = final.with_name(final.name + PART_SUFFIX)
        try:
            source = await asyncio.to_thread(self.store.path(tenant_id, blob.id, blob.generation).open, "rb")
        except FileNotFoundError:
            raise StreamError("the blob's file is missing") from None
        target: IO[bytes] | None = None
        try:
            target = await asyncio.to_thread(create_file, part)
            for seq in range(blob.chunk_count):
                data = await asyncio.to_thread(read_chunk, source, limit)
                plaintext = opener.open(data, last=seq == last_index)
                digest.update(plaintext)
                sealed = sealer.seal(plaintext, last=seq == last_index)
                await asyncio.to_thread(target.write, frame(sealed))
            if await asyncio.to_thread(source.read, 1):
                raise StreamError("data after the final chunk")
            opener.finish()
            await asyncio.to_thread(close_into_place, target, part, final)
            target = None
            await self._step("file")
        finally:
            await asyncio.to_thread(source.close)
            if target is not None:
                await asyncio.to_thread(discard, target, part)
        return digest.digest()

    async def _drop_generation(
        self, sessions: async_sessionmaker[AsyncSession], context: TenantContext, blob: Blob, generation: int
    ) -> None:
        if blob.backend is BlobBackend.POSTGRES:
            async with tenant_transaction(sessions, context) as session:
                await BlobRepository(session, context).drop_generation(blob, generation)
        else:
            await asyncio.to_thread(self._drop_files_above, context.tenant_id, blob.id, generation - 1)

    def _drop_files_above(self, tenant_id: TenantId, blob_id: uuid.UUID, generation: int) -> None:
        """Files (complete or ``.part``) of this blob's generations above ``generation``: an earlier attempt
        that never flipped. Safe: this process holds the tenant's re-seal lock."""
        directory = self.store.tenant_directory(tenant_id)
        for path in directory.glob(f"{blob_id.hex}*"):
            parsed = parse_file_name(path.name)
            if parsed is not None and parsed.blob_id == blob_id and parsed.generation > generation:
                path.unlink(missing_ok=True)

    async def _step(self, name: str) -> None:
        if self.step_hook is not None:
            await self.step_hook(name)


@asynccontextmanager
async def reseal_lock(sessions: async_sessionmaker[AsyncSession], tenant_id: TenantId) -> AsyncIterator[None]:
    """The tenant's re-seal lock, held on a connection of its own (no transaction stays open) for the run.

    A second job for the same tenant (a redelivery, a rotation soon after another) waits here; an overtaken
    run notices at its next batch and lets go. PostgreSQL releases the lock if this process dies."""
    engine: AsyncEngine = sessions.kw["bind"]
    async with engine.connect() as conn:
        try:
            await repository.hold_reseal_lock(conn, tenant_id)
            await conn.commit()
            yield
        finally:
            try:
                await repository.release_reseal_lock(conn, tenant_id)
                await conn.commit()
            except BaseException:
                # A session lock must not go back to the pool with its connection (the tenant's next
                # re-seal would wait forever): closing the connection ends the session and frees it.
                await conn.invalidate()
                raise
