"""The statement run on the worker."""

from __future__ import annotations

import uuid

from rcm.blobs.store import BlobStore
from rcm.crypto.tasks import job_keystore
from rcm.kit.tenant import TenantId
from rcm.patient_billing.statements import JOB_NAME, run_job
from rcm.worker import actor, job_context


# Resumable: a retry (or a redelivery after a worker restart) continues after the run's committed cursor.
@actor(name=JOB_NAME, max_retries=10, time_limit_ms=2 * 60 * 60 * 1000)
async def run_statements(*, tenant_id: str, run_id: str) -> str:
    status = await run_job(
        job_context().sessions(),
        job_keystore(),
        BlobStore.from_settings(job_context().settings),
        TenantId(uuid.UUID(tenant_id)),
        uuid.UUID(run_id),
    )
    return status.value
