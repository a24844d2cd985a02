"""Periodic purge of stored first responses, on the shared scheduler (``rcm.worker.scheduler``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.worker.scheduler import JobResources, periodic

PURGE_EVERY_SECONDS = 3600.0


async def purge_all_tenants(sessions: async_sessionmaker[AsyncSession], *, older_than: timedelta) -> int:
    """Forget stored responses older than ``older_than`` in every tenant; returns how many."""
    from rcm.idempotency.service import purge_expired
    from rcm.kit.db import platform_transaction, tenant_transaction
    from rcm.kit.tenant import TenantContext, TenantId
    from rcm.tenancy.repository import tenant_ids

    async with platform_transaction(sessions) as session:
        every_tenant = tuple(TenantId(t) for t in await tenant_ids(session))
    if not every_tenant:
        return 0
    # Housekeeping over every tenant: the loudly named cross-tenant path.
    async with tenant_transaction(sessions, TenantContext.system_cross_tenant(every_tenant)) as session:
        return await purge_expired(session, older_than=older_than)


@periodic(name="idempotency.purge", every_seconds=lambda s: PURGE_EVERY_SECONDS)
async def purge(resources: JobResources) -> int:
    from rcm.config import app_database_url

    settings = resources.settings
    sessions = resources.sessions(app_database_url(settings), application_name="rcm-idempotency-purge")
    return await purge_all_tenants(sessions, older_than=timedelta(hours=settings.idempotency_retention_hours))
