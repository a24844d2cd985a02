"""The chainer and checkpointer: seal committed events into each tenant's hash chain, then sign and anchor.

Requests only INSERT their events (``rcm.audit.trail``), each stamped with its transaction id. This job,
connected as ``rcm_audit`` (the only role that may write seals, chain heads and checkpoints), seals every
event whose transaction id is below the snapshot's xmin: all transactions that could still add an earlier
event have ended, so nothing is skipped and nothing sealed twice (the watermark moves in the same
transaction as the seals; ``audit_seal`` refuses a second seal of one event or one position). Chain order is
seal order: by tenant, then time, transaction id and event id within each sealed window.

It works across tenants through one loudly named system path: the tenant context names every registered
tenant and the platform's own chain; row-level security stays on.

The horizon is the oldest transaction still running in this database (transactions of other databases on
the same server cannot write our events and are not waited for): a session of ours left idle in a
transaction that holds an xid stalls sealing (not the requests) until it ends, so production databases
should set ``idle_in_transaction_session_timeout``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.anchors import AnchorStore, publish_checkpoint, publish_public_key
from rcm.audit.checkpoints import CheckpointSigner, public_key_pem, write_checkpoints
from rcm.audit.records import GENESIS_HASH, AuditRecord
from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId

logger = logging.getLogger(__name__)

SEAL_BATCH = 5000  # events per sealing transaction


@dataclass(slots=True)
class ChainerRun:
    sealed: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    unpublished: int = 0  # checkpoints committed but not (yet) copied to the anchor store


async def all_tenants_context(session: AsyncSession) -> TenantContext:
    """Every registered tenant plus the platform's chain: the chainer's system path."""
    ids = tuple(TenantId(t) for t in await repository.all_tenant_ids(session))
    return TenantContext.system_cross_tenant((PLATFORM_TENANT, *ids))


async def seal_pending(sessions: async_sessionmaker[AsyncSession], *, batch: int = SEAL_BATCH) -> int:
    """Seal every event that can no longer be preceded by another; returns how many were sealed."""
    total = 0
    while True:
        sealed, more = await _seal_one_window(sessions, batch=batch)
        total += sealed
        if not more:
            return total


async def _seal_one_window(sessions: async_sessionmaker[AsyncSession], *, batch: int) -> tuple[int, bool]:
    async with sessions() as session, session.begin():
        await repository.lock_chainer(session)
        low, horizon = await repository.watermark_and_horizon(session)
        # The tenant list is read after the horizon: every transaction below it has committed by now, so a
        # tenant it created is listed and its events are visible under the context.
        context = await all_tenants_context(session)
        await apply_tenant_context(session, context)
        high = await repository.window_end(session, low, horizon, batch=batch)
        if high <= low:
            return 0, False
        events = await repository.events_to_seal(session, low, high)
        # An event whose id is already sealed (or repeats within the window) was planted beneath the API:
        # it is left unsealed, so verify reports it as skipped, and everyone else's events still get sealed.
        taken = await repository.sealed_event_ids(session, [e.id for e in events])
        by_tenant: dict[TenantId, list[AuditRecord]] = defaultdict(list)
        for event in events:
            if (event.tenant_id, event.id) in taken:
                logger.warning("audit chainer left an event with a repeated id unsealed")
                continue
            taken.add((event.tenant_id, event.id))
            by_tenant[TenantId(event.tenant_id)].append(event)
        # Heads are locked in tenant order, so a second chainer (which the advisory lock already keeps out)
        # could not deadlock with this one.
        for tenant_id in sorted(by_tenant):
            await _seal_tenant(session, tenant_id, by_tenant[tenant_id])
        await repository.set_watermark(session, high)
        return len(events), high < horizon


async def _seal_tenant(session: AsyncSession, tenant_id: TenantId, events: Sequence[AuditRecord]) -> None:
    seq, head = await repository.lock_head(session, tenant_id, GENESIS_HASH)
    seals: list[dict[str, Any]] = []
    for event in events:
        try:
            digest = event.computed_hash(seq=seq + 1, prev_hash=head)
        except (RecursionError, ValueError, TypeError):
            # Only a row written beneath the API can fail here (e.g. a detail nested thousands deep): it
            # stays unsealed and verify reports it, instead of stalling every tenant's sealing.
            logger.warning("audit chainer left an event it cannot hash unsealed")
            continue
        seq += 1
        seals.append(
            {
                "tenant_id": tenant_id,
                "seq": seq,
                "event_id": event.id,
                "occurred_at": event.occurred_at,
                "prev_hash": head,
                "hash": digest,
            }
        )
        head = digest
    await repository.insert_seals(session, seals)
    await repository.move_head(session, tenant_id, seq, head)


async def checkpoint_due(
    sessions: async_sessionmaker[AsyncSession],
    signer: CheckpointSigner,
    store: AnchorStore | None,
    *,
    every_events: int | None,
    every_seconds: float | None,
) -> ChainerRun:
    """Sign the tenants whose unanchored tail is due, commit, then copy each checkpoint to the store.

    Database first: a checkpoint the store lacks (the process died in between) is re-published by
    ``republish_latest``; the store never holds a checkpoint the database did not commit.
    """
    run = ChainerRun()
    async with sessions() as session, session.begin():
        # The chainer's lock here too: the CLI and the worker's job never sign the same head twice.
        await repository.lock_chainer(session)
        context = await all_tenants_context(session)
        await apply_tenant_context(session, context)
        run.checkpoints = await write_checkpoints(
            session, context.tenant_ids, signer, every_events=every_events, every_seconds=every_seconds
        )
    if store is not None and run.checkpoints:
        publish_public_key(store, signer.key_id, public_key_pem(signer))
        run.unpublished = _publish(store, run.checkpoints)
    return run


async def republish_latest(sessions: async_sessionmaker[AsyncSession], store: AnchorStore) -> int:
    """Copy each tenant's newest checkpoint to the store if it is missing there (after a crash between the
    commit and the copy). Write-once: an existing copy is never replaced. Returns the copies that failed."""
    async with sessions() as session, session.begin():
        context = await all_tenants_context(session)
        await apply_tenant_context(session, context)
        rows = await repository.latest_checkpoints(session, context.tenant_ids)
    return _publish(store, rows)


def _publish(store: AnchorStore, rows: Sequence[dict[str, Any]]) -> int:
    failed = 0
    for row in rows:
        try:
            if not publish_checkpoint(store, row):
                # Another document already sits at this name: never overwritten; verify reports the clash.
                logger.error("anchor store holds a different checkpoint", extra={"seq": row["seq"]})
                failed += 1
        except OSError:
            logger.exception("checkpoint not copied to the anchor store", extra={"seq": row["seq"]})
            failed += 1
    return failed


async def run_chainer(
    sessions: async_sessionmaker[AsyncSession],
    signer: CheckpointSigner,
    store: AnchorStore | None,
    *,
    every_events: int | None,
    every_seconds: float | None,
) -> ChainerRun:
    """One pass of the periodic job: seal, then sign and anchor what is due."""
    sealed = await seal_pending(sessions)
    run = await checkpoint_due(
        sessions, signer, store, every_events=every_events, every_seconds=every_seconds
    )
    run.sealed = sealed
    return run
