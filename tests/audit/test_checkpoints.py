"""``write_checkpoints`` signs each tenant's head whatever iterable names the tenants."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.checkpoints import load_signer, write_checkpoints
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, write_events


async def test_a_generator_of_tenant_ids_is_checkpointed(
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    key_dir: Path,
) -> None:
    await write_events(sessions, [make_event(tenant.id), make_event(tenant.id), make_event(other_tenant.id)])
    ids = [tenant.id, other_tenant.id]
    context = TenantContext.system_cross_tenant(tuple(TenantId(t) for t in ids))
    signer = load_signer(key_dir, create=True)
    async with tenant_transaction(sessions, context) as session:
        # A generator is read once only: the function must not need a second pass over its argument.
        written = await write_checkpoints(session, (t for t in ids), signer)
    assert sorted((row["tenant_id"], row["seq"]) for row in written) == sorted(
        [(tenant.id, 2), (other_tenant.id, 1)]
    )
    async with tenant_transaction(sessions, context) as session:
        stored = await repository.checkpoints(session, ids)
        # Nothing new since: a second run (again from a generator) writes nothing, and says so.
        assert await write_checkpoints(session, iter(ids), signer) == []
    assert sorted((row["tenant_id"], row["seq"]) for row in stored) == sorted(
        [(tenant.id, 2), (other_tenant.id, 1)]
    )
