"""Background jobs of the claims package: fetching payer responses and applying them, per practice."""

from __future__ import annotations

import uuid

from rcm.audit.events import request_info_from
from rcm.blobs.store import BlobStore
from rcm.claims.responses import JOB, FetchReport, Practice, apply_one, fetch_practice
from rcm.crypto.tasks import job_keystore
from rcm.identity.principal import system_principal
from rcm.kit.errors import NotFound
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.worker import actor, job_context
from rcm.worker.scheduler import JobResources, periodic

# How often the scheduler queues a fetch for every active practice (a clearinghouse mailbox is polled).
FETCH_EVERY_SECONDS = 300.0


def _practice(tenant_id: str, job: str) -> Practice:
    context = job_context()
    return Practice(
        sessions=context.sessions(),
        keystore=job_keystore(),
        tenant_id=TenantId(uuid.UUID(tenant_id)),
        actor=system_principal(job),
        request=request_info_from(None),
    )


@actor(name=JOB, max_retries=3, time_limit_ms=15 * 60 * 1000)
async def fetch_responses(*, tenant_id: str) -> str:
    """Fetch, keep, acknowledge and apply the practice's payer responses; returns the counts (no content)."""
    settings = job_context().settings
    try:
        report: FetchReport = await fetch_practice(
            _practice(tenant_id, JOB), BlobStore.from_settings(settings), SecretResolver(settings.secrets_dir)
        )
    except NotFound:  # suspended or offboarded since the fetch was queued: nothing to fetch for it
        return "practice not active"
    return report.summary()


@actor(name="claims.apply_response", max_retries=3, time_limit_ms=15 * 60 * 1000)
async def apply_response(*, tenant_id: str, file_id: str) -> str:
    """Apply one kept inbound file (idempotent: a processed file is left as it is)."""
    store = BlobStore.from_settings(job_context().settings)
    outcome = await apply_one(_practice(tenant_id, "claims.apply_response"), store, uuid.UUID(file_id))
    return outcome.status.value


@periodic(name="claims.fetch_responses", every_seconds=lambda s: FETCH_EVERY_SECONDS)
async def queue_fetches(resources: JobResources) -> int:
    """Queue one ``claims.fetch_responses`` per active practice (each practice's fetch is its own message:
    one slow mailbox does not hold up the others)."""
    from rcm.config import app_database_url
    from rcm.kit.db import platform_transaction
    from rcm.tenancy.repository import not_offboarded_tenants

    sessions = resources.sessions(app_database_url(resources.settings), application_name="rcm-fetch")
    async with platform_transaction(sessions) as session:
        tenants = await not_offboarded_tenants(session)
    for tenant_id, _ in tenants:
        fetch_responses.send_now(tenant_id=str(tenant_id))
    return len(tenants)
