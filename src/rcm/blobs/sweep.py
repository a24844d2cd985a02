"""The blob sweep: what the store leaves behind when a writer does not get to finish.

- Directory backend: a file is written before its transaction commits, so an upload whose transaction rolls
  back (a later validation error, a lost connection) leaves a file with no row; a crashed re-seal leaves a
  next-generation file (or ``.part``) the row never pointed at, or an old generation it no longer points
  at. A file is removed only when all of these hold:

  * its name is one the store writes (``<blob id>[.g<n>][.part]``: opaque ids, so the name alone says what
    it is; anything else is left alone);
  * no committed row has that blob in the directory backend at that generation, or it is a ``.part``;
  * it was last written longer ago than the grace period, and before the oldest transaction still running
    in this database started (a writer's transaction starts before its file is written, so a file newer
    than that may belong to a transaction still in progress, whose row nobody can see yet);
  * no re-seal is running for the tenant (its advisory lock, held by the sweep while it removes).

- PostgreSQL backend: a rolled-back upload's chunks go with its transaction. A re-seal leaves the previous
  generation's chunks for readers already under way (``superseded_since``); they are deleted after the
  grace period.

Idempotent and safe to repeat; it runs on the shared scheduler (``rcm.blobs.jobs``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.blobs import repository
from rcm.blobs.models import BlobBackend
from rcm.blobs.repository import BlobRepository
from rcm.blobs.store import BlobFileName, parse_file_name
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId

logger = logging.getLogger(__name__)

_BATCH = 500


@dataclass(frozen=True, slots=True)
class SweepReport:
    files_removed: int
    chunks_removed: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    path: Path
    name: BlobFileName


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    *,
    directory: Path | None,
    tenant_ids: tuple[TenantId, ...],
    grace: timedelta,
) -> SweepReport:
    """Sweep ``directory`` (if the deployment has one) and the superseded chunks of ``tenant_ids``: only
    those tenants' folders. A folder of a tenant this database does not know (another deployment's, a
    restored backup's) is left alone: with no rows to see, every file in it would look orphaned."""
    files = 0
    if directory is not None:
        wanted = set(tenant_ids)
        for tenant_id in await asyncio.to_thread(_tenant_directories, directory):
            if tenant_id in wanted:
                files += await sweep_tenant_directory(sessions, directory, tenant_id, grace=grace)
    chunks = await sweep_superseded_chunks(sessions, tenant_ids, grace=grace)
    if files or chunks:
        logger.info("blob sweep removed leftovers", extra={"count": files, "chunks": chunks})
    return SweepReport(files, chunks)


async def sweep_tenant_directory(
    sessions: async_sessionmaker[AsyncSession], directory: Path, tenant_id: TenantId, *, grace: timedelta
) -> int:
    """Remove the tenant's files that no committed row stands for (see the module's rules)."""
    base = directory / tenant_id.hex
    context = TenantContext.single(tenant_id)
    removed = 0
    async with tenant_transaction(sessions, context) as session:
        if not await repository.try_reseal_lock_for_transaction(session, tenant_id):
            return 0  # a re-seal is writing this tenant's next generations: next tick
        cutoff = datetime.now(UTC) - grace
        oldest = await repository.oldest_running_transaction(session)
        if oldest is not None:
            cutoff = min(cutoff, oldest)
        candidates = await asyncio.to_thread(_old_files, base, cutoff.timestamp())
        repo = BlobRepository(session, context)
        for start in range(0, len(candidates), _BATCH):
            batch = candidates[start : start + _BATCH]
            rows = await repo.generations(sorted({c.name.blob_id for c in batch}))
            doomed = [c.path for c in batch if not _kept(c.name, rows)]
            removed += await asyncio.to_thread(_unlink_all, doomed)
    return removed


def _kept(name: BlobFileName, rows: dict[uuid.UUID, tuple[BlobBackend, int]]) -> bool:
    found = rows.get(name.blob_id)
    return (
        found is not None
        and not name.partial
        and found[0] is BlobBackend.DIRECTORY
        and found[1] == name.generation
    )


async def sweep_superseded_chunks(
    sessions: async_sessionmaker[AsyncSession], tenant_ids: tuple[TenantId, ...], *, grace: timedelta
) -> int:
    """Delete chunks that a re-seal superseded longer than ``grace`` ago, in bounded transactions."""
    if not tenant_ids:
        return 0
    # Housekeeping over every tenant: the loudly named cross-tenant path.
    context = TenantContext.system_cross_tenant(tenant_ids)
    removed = 0
    while True:
        async with tenant_transaction(sessions, context) as session:
            repo = BlobRepository(session, context)
            blobs = await repo.lock_superseded(datetime.now(UTC) - grace, limit=_BATCH)
            removed += await repo.drop_superseded(blobs)
        if len(blobs) < _BATCH:
            return removed


def _tenant_directories(directory: Path) -> list[TenantId]:
    found: list[TenantId] = []
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        try:
            tenant = uuid.UUID(hex=entry.name)
        except ValueError:
            continue  # not ours
        if entry.is_dir() and entry.name == tenant.hex:
            found.append(TenantId(tenant))
    return found


def _old_files(base: Path, cutoff: float) -> list[_Candidate]:
    found: list[_Candidate] = []
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return found
    for entry in entries:
        name = parse_file_name(entry.name)
        if name is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            written = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # removed meanwhile (a delete, a re-seal's cleanup)
        if written < cutoff:
            found.append(_Candidate(Path(entry.path), name))
    return found


def _unlink_all(paths: list[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
