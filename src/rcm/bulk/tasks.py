"""The bulk intake job on the worker."""

from __future__ import annotations

import uuid
from datetime import timedelta

from rcm.blobs.store import BlobStore
from rcm.bulk.service import JOB_NAME, run_job
from rcm.crypto.tasks import job_keystore
from rcm.kit.tenant import TenantId
from rcm.worker import actor, job_context

# Its own queue: long jobs do not hold up the short ones, and workers can be scaled for bulk alone.
QUEUE = "bulk"


# Resumable: a retry (or a redelivery after a worker restart) continues after the job's committed cursor.
@actor(name=JOB_NAME, max_retries=10, time_limit_ms=6 * 60 * 60 * 1000, queue_name=QUEUE)
async def run_intake(*, tenant_id: str, job_id: str) -> str:
    settings = job_context().settings
    status = await run_job(
        job_context().sessions(),
        job_keystore(),
        BlobStore.from_settings(settings),
        TenantId(uuid.UUID(tenant_id)),
        uuid.UUID(job_id),
        batch_lines=settings.bulk_batch_lines,
        skew=timedelta(days=settings.future_date_skew_days),
    )
    return status.value
