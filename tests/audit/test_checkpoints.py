"""``write_checkpoints`` signs each tenant's sealed head, whatever iterable names the tenants, when due."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.checkpoints import load_signer, write_checkpoints
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events


async def test_a_generator_of_tenant_ids_is_checkpointed(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
) -> None:
    await write_events(sessions, [make_event(tenant.id), make_event(tenant.id), make_event(other_tenant.id)])
    await seal_all(audit_sessions)
    ids = [tenant.id, other_tenant.id]
    context = TenantContext.system_cross_tenant(tuple(TenantId(t) for t in ids))
    signer = load_signer(key_dir, create=True)
    async with tenant_transaction(audit_sessions, context) as session:
        # A generator is read once only: the function must not need a second pass over its argument.
        written = await write_checkpoints(session, (t for t in ids), signer)
    assert sorted((row["tenant_id"], row["seq"]) for row in written) == sorted(
        [(tenant.id, 2), (other_tenant.id, 1)]
    )
    async with tenant_transaction(audit_sessions, context) as session:
        stored = await repository.checkpoints(session, ids)
        # Nothing new since: a second run (again from a generator) writes nothing, and says so.
        assert await write_checkpoints(session, iter(ids), signer) == []
    assert sorted((row["tenant_id"], row["seq"]) for row in stored) == sorted(
        [(tenant.id, 2), (other_tenant.id, 1)]
    )


async def test_checkpoints_are_due_every_n_events_or_m_seconds(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
) -> None:
    signer = load_signer(key_dir, create=True)
    context = TenantContext.single(TenantId(tenant.id))

    async def due(**every: float) -> list[int]:
        async with tenant_transaction(audit_sessions, context) as session:
            return [row["seq"] for row in await write_checkpoints(session, [tenant.id], signer, **every)]

    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    assert await due(every_events=3, every_seconds=3600) == [1]  # a chain's first checkpoint comes at once
    await write_events(sessions, [make_event(tenant.id), make_event(tenant.id)])
    await seal_all(audit_sessions)
    assert await due(every_events=3, every_seconds=3600) == []  # 2 new events, a second ago: not yet
    assert await due(every_events=2, every_seconds=3600) == [3]  # N events reached
    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    assert await due(every_events=100, every_seconds=0.001) == [4]  # M seconds passed
    assert await due(every_events=1, every_seconds=0.001) == []  # nothing new: nothing to sign
