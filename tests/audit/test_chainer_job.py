"""The audit chainer as the worker runs it: the periodic job seals, signs what is due and anchors it; two
replicas running it at once seal nothing twice; running it again changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.anchors import DirectoryAnchorStore, read_anchors
from rcm.audit.checkpoints import key_directory, public_keys_in
from rcm.audit.service import verify
from rcm.config import Settings, app_database_url
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from rcm.worker.scheduler import JobResources, periodic_jobs, run_exclusive
from tests.audit.conftest import MakeEvent, write_events


async def _sealed(owner_engine: AsyncEngine, tenant: Tenant) -> list[tuple[int, str]]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT seq, event_id::text FROM rcm.audit_seal WHERE tenant_id = :t ORDER BY seq"),
            {"t": tenant.id},
        )
        return [(int(r[0]), r[1]) for r in rows]


async def _run_until_sealed(
    resources: list[JobResources], url: str, owner_engine: AsyncEngine, tenant: Tenant, n: int
) -> list[bool]:
    ran: list[bool] = []
    job = periodic_jobs()["audit.seal_and_checkpoint"]
    for _ in range(200):
        ran += await asyncio.gather(*(run_exclusive(job, r, url) for r in resources))
        if len(await _sealed(owner_engine, tenant)) >= n:
            return ran
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not seal the events")


async def test_the_job_seals_checkpoints_and_anchors_once_across_replicas(  # noqa: PLR0917 - fixtures
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    mine = settings.model_copy(update={"data_dir": tmp_path, "audit_checkpoint_every_seconds": 3600.0})
    replicas = [JobResources(mine), JobResources(mine)]
    url = app_database_url(mine)
    try:
        await write_events(sessions, [make_event(tenant.id) for _ in range(4)])
        ran = await _run_until_sealed(replicas, url, owner_engine, tenant, 4)
        assert True in ran
        first = await _sealed(owner_engine, tenant)
        assert [seq for seq, _ in first] == [1, 2, 3, 4]

        # Again, from both replicas at once: nothing new to seal, nothing sealed twice, no new checkpoint
        # (the last one is recent and fewer than N events came since).
        job = periodic_jobs()["audit.seal_and_checkpoint"]
        await asyncio.gather(*(run_exclusive(job, r, url) for r in replicas))
        assert await _sealed(owner_engine, tenant) == first

        store = DirectoryAnchorStore(mine.anchor_dir)
        anchors = read_anchors(store)
        assert [int(a["seq"]) for a in anchors[tenant.id]] == [4]
        assert list(store.names("keys/"))  # the public key is published beside the checkpoints
        async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
            report = await verify(
                session, [tenant.id], public_keys=public_keys_in(key_directory(mine)), anchors=anchors
            )
        assert report.ok, report.for_tenant(tenant.id).problems
    finally:
        for resources in replicas:
            await resources.dispose()


async def test_the_worker_scheduler_seals_and_anchors_within_seconds(  # noqa: PLR0917 - fixtures
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    """What `rcm worker` starts: the shared scheduler with the audit job on its interval."""
    from rcm.worker.cli import start_scheduler

    mine = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "audit_seal_interval_seconds": 0.2,
            "audit_checkpoint_every_seconds": 0.5,
        }
    )
    scheduler = start_scheduler(mine)
    try:
        await write_events(sessions, [make_event(tenant.id) for _ in range(3)])
        store = DirectoryAnchorStore(mine.anchor_dir)
        for _ in range(300):
            anchored = [int(a["seq"]) for a in read_anchors(store, [tenant.id]).get(tenant.id, [])]
            if 3 in anchored:
                break
            await asyncio.sleep(0.1)
        assert [seq for seq, _ in await _sealed(owner_engine, tenant)] == [1, 2, 3]
        assert 3 in anchored
    finally:
        await asyncio.to_thread(scheduler.stop)
