"""Background jobs on dramatiq: one actor wrapper, send-after-commit, trace propagation, workers."""

from __future__ import annotations

from rcm.worker.actors import (
    JobActor,
    JobPayloadError,
    actor,
    current_broker,
    encode_payload_roundtrip,
    get_actor,
    registered_actors,
    setup_broker,
)
from rcm.worker.context import JobContext, configure_jobs, job_context
from rcm.worker.enqueue import enqueue, pending_messages
from rcm.worker.runner import start_inprocess_worker, stop_inprocess_worker

# Modules whose import declares actors. A worker process imports them all before it starts consuming.
TASK_MODULES: tuple[str, ...] = (
    "rcm.crypto.tasks",
    "rcm.bulk.tasks",
    "rcm.claims.tasks",
    "rcm.claims.submit_tasks",
    "rcm.claims.status_jobs",
    "rcm.webhooks.tasks",
    "rcm.patient_billing.tasks",
)

__all__ = [
    "TASK_MODULES",
    "JobActor",
    "JobContext",
    "JobPayloadError",
    "actor",
    "configure_jobs",
    "current_broker",
    "encode_payload_roundtrip",
    "enqueue",
    "get_actor",
    "job_context",
    "pending_messages",
    "registered_actors",
    "setup_broker",
    "start_inprocess_worker",
    "stop_inprocess_worker",
]
