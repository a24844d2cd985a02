"""The audit trail's periodic job: seal, sign and anchor, every few seconds, in one process of the fleet."""

from __future__ import annotations

import time

from rcm.audit.anchors import anchor_store
from rcm.audit.chainer import ChainerRun, checkpoint_due, republish_latest, seal_pending
from rcm.audit.checkpoints import key_directory, load_signer
from rcm.audit.partitions import ensure_partitions
from rcm.config import audit_database_url
from rcm.worker.scheduler import JobResources, periodic

PARTITIONS_EVERY_SECONDS = 3600.0  # monthly partitions are made months ahead; hourly is plenty


@periodic(name="audit.seal_and_checkpoint", every_seconds=lambda s: s.audit_seal_interval_seconds)
async def seal_and_checkpoint(resources: JobResources) -> ChainerRun:
    """Seal committed events, checkpoint the tenants that are due, copy checkpoints to the anchor store.

    Runs as rcm_audit (RCM_AUDIT_DATABASE_URL) with the signing key under <data_dir>/audit-keys: only the
    process running this job holds either.
    """
    settings = resources.settings
    state = resources.state
    store = anchor_store(settings, create=True)
    sessions = resources.sessions(audit_database_url(settings), application_name="rcm-audit-chainer")
    last_partitions = state.get("audit.partitions_at")
    if (
        not isinstance(last_partitions, float)
        or time.monotonic() - last_partitions >= PARTITIONS_EVERY_SECONDS
    ):
        async with sessions() as session, session.begin():
            await ensure_partitions(session)
        state["audit.partitions_at"] = time.monotonic()
    # Sealing needs no key: it goes on even while the signing key is missing (that is logged each tick).
    sealed = await seal_pending(sessions)
    signer = load_signer(key_directory(settings), create=settings.env != "prod")
    # First run of this process, or a copy failed last time: re-copy each tenant's newest checkpoint (a
    # process that died between commit and copy left it only in the database).
    if store is not None and not state.get("audit.anchors_synced"):
        state["audit.anchors_synced"] = await republish_latest(sessions, store) == 0
    run = await checkpoint_due(
        sessions,
        signer,
        store,
        every_events=settings.audit_checkpoint_every_events,
        every_seconds=settings.audit_checkpoint_every_seconds,
    )
    run.sealed = sealed
    if run.unpublished:
        state["audit.anchors_synced"] = False
    return run
