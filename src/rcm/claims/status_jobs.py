"""The status inquiry job (``rcm.claims.status_inquiry``) three ways: the ``claims.status_inquiries`` actor
for one practice (ids only in its message), a periodic run over every practice not offboarded on the shared
scheduler, and the operator command ``rcm claims status-inquiries``. All run the same idempotent work."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.status_inquiry import JOB, run_status_inquiries
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.tasks import job_keystore
from rcm.identity.principal import Principal, system_principal
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.breaker import breaker_for
from rcm.worker import actor, job_context
from rcm.worker.scheduler import JobResources, periodic

EVERY_SECONDS = 6 * 3600.0  # status_inquiry_days is counted in days: four looks a day are plenty


async def inquire_in(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenant_ids: Sequence[TenantId],
    *,
    actor: Principal | None = None,
    request_id: str = JOB,
) -> Counter[str]:
    return await run_status_inquiries(
        sessions,
        keystore,
        tenant_ids=tenant_ids,
        store=BlobStore.from_settings(settings),
        secrets=SecretResolver(settings.secrets_dir),
        deadline_seconds=settings.connector_timeout_seconds,
        breaker=breaker_for(settings),
        actor=actor or system_principal(JOB),
        request=RequestInfo(request_id=request_id, trace_id=""),
    )


@actor(name=JOB, max_retries=3, time_limit_ms=30 * 60 * 1000)
async def status_inquiries(*, tenant_id: str) -> dict[str, int]:
    """One practice's due claims asked about; returns the outcome counts."""
    context = job_context()
    counts = await inquire_in(
        context.settings, context.sessions(), job_keystore(), [TenantId(uuid.UUID(tenant_id))]
    )
    return dict(counts)


@periodic(name=JOB, every_seconds=lambda s: EVERY_SECONDS)
async def status_inquiries_everywhere(resources: JobResources) -> Counter[str]:
    from rcm.config import app_database_url
    from rcm.kit.db import platform_transaction
    from rcm.tenancy.repository import not_offboarded_tenants

    settings = resources.settings
    sessions = resources.sessions(app_database_url(settings), application_name="rcm-status-inquiries")
    async with platform_transaction(sessions) as session:
        ids = [TenantId(t) for t, _ in await not_offboarded_tenants(session)]
    from rcm.crypto.provider import key_provider

    return await inquire_in(settings, sessions, KeyStore(key_provider(settings)), ids)
