"""Recording: same-transaction writes without a lock; the chainer seals them into a gapless hash chain, also
under concurrent inserting transactions; failure semantics."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.chainer import seal_pending
from rcm.audit.events import Action, Outcome
from rcm.audit.records import GENESIS_HASH, AuditRecord
from rcm.audit.service import verify
from rcm.audit.trail import record, record_now
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events


async def chain(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> list[AuditRecord]:
    """The tenant's sealed events in chain order (read beneath RLS, as the superuser)."""
    async with owner_engine.connect() as conn:
        await conn.execute(text("SELECT set_config('rcm.tenant_id', :t, false)"), {"t": str(tenant_id)})
        rows = (
            await conn.execute(
                text(
                    "SELECT e.*, s.seq, s.prev_hash, s.hash FROM rcm.audit_event e JOIN rcm.audit_seal s "
                    "ON s.tenant_id = e.tenant_id AND s.event_id = e.id WHERE e.tenant_id = :t ORDER BY s.seq"
                ),
                {"t": tenant_id},
            )
        ).mappings()
        return [AuditRecord.from_row(r) for r in rows]


async def test_events_chain_in_order_with_valid_hashes(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    events = [make_event(tenant.id, detail={"n": i}) for i in range(30)]
    await write_events(sessions, events)
    assert await chain(owner_engine, tenant.id) == []  # inserted, not yet sealed
    await seal_all(audit_sessions)
    records = await chain(owner_engine, tenant.id)
    assert [r.seq for r in records] == list(range(1, 31))
    assert [r.id for r in records] == [e.id for e in events]
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    assert all(r.computed_hash() == r.hash for r in records)
    # What was recorded is what the event said (no field lost or altered on the way).
    first, event = records[0], events[0]
    assert (first.event_type, first.action, first.outcome) == ("patient.read", "R", "0")
    assert first.actor_subject == event.actor.subject if event.actor else False
    assert first.actor_roles == ("coder",)
    assert first.patient_ids == event.patient_ids
    assert first.source_ip == "203.0.113.7"
    assert first.occurred_at == event.occurred_at


async def test_concurrent_writers_on_one_tenant_get_gapless_seq(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    async def writer(n: int) -> None:
        async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
            for i in range(3):
                record(session, make_event(tenant.id, detail={"writer": n, "i": i}))
            await asyncio.sleep(0)  # let the others interleave before commit

    await asyncio.gather(*(writer(n) for n in range(12)))
    await seal_all(audit_sessions)
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        seqs = (
            (
                await session.execute(
                    text("SELECT seq FROM rcm.audit_seal WHERE tenant_id = :t ORDER BY seq"), {"t": tenant.id}
                )
            )
            .scalars()
            .all()
        )
        report = await verify(session, [tenant.id], public_keys={})
    assert seqs == list(range(1, 37))
    assert report.ok, report


async def test_chainer_under_concurrent_inserts_skips_nothing_and_seals_once(  # noqa: PLR0917 - fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    """Writers keep inserting (some holding their transaction open across a chainer run) while two chainers
    run in a loop: every committed event ends up sealed exactly once, each chain is gapless, and what was
    sealed never moves."""
    written: list[uuid.UUID] = []
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(8):
            tenant_id = tenant.id if (n + i) % 2 else other_tenant.id
            async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant_id))) as session:
                # An xid is taken early, then the transaction lingers: a chainer run in between must wait.
                await session.execute(text("SELECT pg_current_xact_id()"))
                event = make_event(tenant_id, detail={"writer": n, "i": i})
                record(session, event)
                await asyncio.sleep(0.01 * (i % 3))
            written.append(event.id)

    async def chainer() -> None:
        while not stop.is_set():
            await seal_pending(audit_sessions)
            await asyncio.sleep(0)

    chainers = [asyncio.create_task(chainer()) for _ in range(2)]
    first_seen: dict[uuid.UUID, int] = {}
    await asyncio.gather(*(writer(n) for n in range(6)))
    sealed_early = await chain(owner_engine, tenant.id)
    for _ in range(200):  # the running chainers seal within moments; the check below needs some sealed
        if sealed_early:
            break
        await asyncio.sleep(0.05)
        sealed_early = await chain(owner_engine, tenant.id)
    for record_ in sealed_early:
        assert record_.seq is not None
        first_seen[record_.id] = record_.seq
    assert first_seen, "the chainers sealed nothing while running"
    stop.set()
    await asyncio.gather(*chainers)
    await seal_all(audit_sessions)

    mine, theirs = await chain(owner_engine, tenant.id), await chain(owner_engine, other_tenant.id)
    sealed = [r.id for r in mine + theirs]
    assert sorted(sealed) == sorted(written)  # every event, once
    for records in (mine, theirs):
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert records[0].prev_hash == GENESIS_HASH
        for before, after in itertools.pairwise(records):
            assert after.prev_hash == before.hash
        assert all(r.computed_hash() == r.hash for r in records)
    # Positions given while writers were still busy are the positions kept (chain order = seal order).
    assert {r.id: r.seq for r in mine if r.id in first_seen} == first_seen


async def test_two_tenants_chains_are_independent(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    # One transaction with both tenants in its context: each event lands in its own tenant's chain.
    ctx = TenantContext.system_cross_tenant((TenantId(tenant.id), TenantId(other_tenant.id)))
    async with tenant_transaction(sessions, ctx) as session:
        record(session, make_event(tenant.id))
        record(session, make_event(other_tenant.id))
        record(session, make_event(tenant.id))
    await write_events(sessions, [make_event(other_tenant.id)])
    await seal_all(audit_sessions)
    mine, theirs = await chain(owner_engine, tenant.id), await chain(owner_engine, other_tenant.id)
    assert [r.seq for r in mine] == [1, 2]
    assert [r.seq for r in theirs] == [1, 2]
    assert mine[0].prev_hash == theirs[0].prev_hash == GENESIS_HASH
    assert {r.tenant_id for r in mine} == {tenant.id}
    # The app role sees only the tenant of its context.
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        seen = set((await session.execute(text("SELECT tenant_id FROM rcm.audit_event"))).scalars())
    assert seen == {tenant.id}


async def test_rolled_back_transaction_leaves_nothing(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    class Boom(Exception):
        pass

    async def access_that_fails() -> None:
        async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
            record(session, make_event(tenant.id))
            raise Boom

    with pytest.raises(Boom):
        await access_that_fails()
    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    records = await chain(owner_engine, tenant.id)
    # Nothing from the rolled-back transaction, and no gap in seq because of it.
    assert [r.seq for r in records] == [1]


async def test_failing_audit_insert_fails_the_commit(
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    """An event for a tenant outside the transaction's context is refused by RLS: the whole
    transaction, including the access it recorded, must not commit."""
    async with owner_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS rcm.audit_probe (id uuid PRIMARY KEY)"))
        await conn.execute(text("GRANT SELECT, INSERT ON rcm.audit_probe TO rcm_app"))
    probe = uuid.uuid4()

    async def access_with_unwritable_audit() -> None:
        async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
            await session.execute(text("INSERT INTO rcm.audit_probe (id) VALUES (:id)"), {"id": probe})
            record(session, make_event(other_tenant.id))

    with pytest.raises(DBAPIError, match="row-level security"):
        await access_with_unwritable_audit()
    async with owner_engine.connect() as conn:
        found = (
            await conn.execute(text("SELECT count(*) FROM rcm.audit_probe WHERE id = :id"), {"id": probe})
        ).scalar_one()
        await conn.execute(text("DROP TABLE rcm.audit_probe"))
        await conn.commit()
    assert found == 0


async def test_record_now_commits_on_its_own(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    make_event: MakeEvent,
) -> None:
    denial = make_event(
        PLATFORM_TENANT,
        event_type="access.denied",
        action=Action.EXECUTE,
        outcome=Outcome.SERIOUS_FAILURE,
        actor=None,
        actor_hint="client-x",
        patient_ids=(),
        resource_ids=(),
    )
    await record_now(sessions, denial)
    await seal_all(audit_sessions)
    records = await chain(owner_engine, PLATFORM_TENANT)
    stored = next(r for r in records if r.id == denial.id)
    assert (stored.outcome, stored.actor_subject, stored.actor_hint) == ("8", None, "client-x")


async def test_detail_refuses_values_that_cannot_be_codes(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, make_event: MakeEvent
) -> None:
    async with sessions() as session:
        with pytest.raises(TypeError):
            record(session, make_event(tenant.id, detail={"amount": 1.5}))


async def test_a_watermark_set_back_seals_nothing_twice(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    await write_events(sessions, [make_event(tenant.id) for _ in range(3)])
    await seal_all(audit_sessions)
    before = [(r.seq, r.id) for r in await chain(owner_engine, tenant.id)]
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE rcm.audit_chainer_state SET sealed_below = '1'"))
    await seal_all(audit_sessions)
    assert [(r.seq, r.id) for r in await chain(owner_engine, tenant.id)] == before
