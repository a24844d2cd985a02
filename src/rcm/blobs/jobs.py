"""The blob sweep on the shared scheduler (``rcm.worker.scheduler``): hourly, and when a worker starts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.blobs.sweep import SweepReport, sweep
from rcm.worker.scheduler import JobResources, periodic

SWEEP_EVERY_SECONDS = 3600.0


async def sweep_all_tenants(
    sessions: async_sessionmaker[AsyncSession], store: BlobStore, *, grace: timedelta
) -> SweepReport:
    from rcm.kit.db import platform_transaction
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.repository import tenant_ids

    # Every practice, offboarded ones too: their leftovers are unreadable, but still leftovers.
    async with platform_transaction(sessions) as session:
        tenants = tuple(TenantId(t) for t in await tenant_ids(session))
    return await sweep(sessions, directory=store.directory, tenant_ids=tenants, grace=grace)


@periodic(name="blobs.sweep", every_seconds=lambda s: SWEEP_EVERY_SECONDS)
async def sweep_blobs(resources: JobResources) -> SweepReport:
    from rcm.config import app_database_url

    settings = resources.settings
    sessions = resources.sessions(app_database_url(settings), application_name="rcm-blob-sweep")
    return await sweep_all_tenants(
        sessions,
        BlobStore.from_settings(settings),
        grace=timedelta(seconds=settings.blob_sweep_grace_seconds),
    )
