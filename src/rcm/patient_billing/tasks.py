"""The statement run on the worker."""

from __future__ import annotations

import uuid

from dramatiq.middleware import CurrentMessage

from rcm.blobs.store import BlobStore
from rcm.config import app_database_url
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.crypto.tasks import job_keystore
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.patient_billing.statements import CYCLES, JOB_NAME, fail_run, run_job, start_cycles
from rcm.tenancy.repository import not_offboarded_tenants
from rcm.worker import actor, job_context
from rcm.worker.scheduler import JobResources, periodic

# A cycle is counted in days: four looks a day start each practice's run within hours of its cycle start.
EVERY_SECONDS = 6 * 3600.0
MAX_RETRIES = 10


# Resumable: a retry (or a redelivery after a worker restart) continues after the run's committed cursor.
@actor(name=JOB_NAME, max_retries=MAX_RETRIES, time_limit_ms=2 * 60 * 60 * 1000)
async def run_statements(*, tenant_id: str, run_id: str) -> str:
    context = job_context()
    tenant, run = TenantId(uuid.UUID(tenant_id)), uuid.UUID(run_id)
    try:
        status = await run_job(
            context.sessions(), job_keystore(), BlobStore.from_settings(context.settings), tenant, run
        )
    except Exception:
        message = CurrentMessage.get_current_message()
        if message is not None and message.options.get("retries", 0) >= MAX_RETRIES:
            await fail_run(context.sessions(), job_keystore(), tenant, run)
        raise
    return status.value


@periodic(name=CYCLES, every_seconds=lambda s: EVERY_SECONDS)
async def statement_cycles(resources: JobResources) -> int:
    """Each practice asking for automatic runs gets this cycle's run (idempotent: one run per cycle)."""
    settings = resources.settings
    sessions = resources.sessions(app_database_url(settings), application_name="rcm-statement-cycles")
    async with platform_transaction(sessions) as session:
        ids = [TenantId(t) for t, _ in await not_offboarded_tenants(session)]
    return await start_cycles(sessions, KeyStore(key_provider(settings)), ids)
