"""The submission job on the worker: ``claims.submit_batch(tenant_id, batch_id)``, asked for after the
batch's transaction commits (``rcm.claims.batches``, a replay) and again by the relay until it is settled.

Kept free of the submission machinery at import time, so the modules that enqueue it (batching) can import
it without a cycle; the handler is imported when a message runs."""

from __future__ import annotations

import logging
import uuid

from rcm.worker import actor

logger = logging.getLogger(__name__)

# Connector errors are handled inside (retried with backoff by rescheduling, or dead-lettered); dramatiq's
# own retries only cover what is not a connector's fault (the database restarting), and the relay covers the
# rest. The time limit is above the connector timeout and the lease's share of it.
_TIME_LIMIT_MS = 10 * 60 * 1000


@actor(name="claims.submit_batch", max_retries=3, time_limit_ms=_TIME_LIMIT_MS, queue_name="claims")
async def submit_batch_job(*, tenant_id: str, batch_id: str) -> None:
    from rcm.claims.jobs import process_submitter
    from rcm.claims.submission import submit_batch
    from rcm.kit.tenant import TenantId

    outcome = await submit_batch(process_submitter(), TenantId(uuid.UUID(tenant_id)), uuid.UUID(batch_id))
    # Ids and the outcome only (no results backend: the batch row is the record).
    logger.info("submission batch handled", extra={"batch_id": batch_id, "outcome": outcome.value})
