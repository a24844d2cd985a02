"""The lease primitive: one statement, ``FOR UPDATE SKIP LOCKED``; every transition an event on the item."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.kit.errors import Conflict
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import SystemScope
from rcm.tenancy.staff import system_scope
from rcm.workqueue import service
from rcm.workqueue.models import ItemEventType, ItemStatus, QueueKind, SubjectType, WorkItem
from rcm.workqueue.repository import WorkItemRepository

REQUEST = RequestInfo(request_id="workqueue-test", trace_id="")


def worker(name: str) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        subject=f"{name}-{uuid.uuid4().hex[:6]}",
        roles=frozenset({Role.CODER}),
        scopes=frozenset(),
        token_id=uuid.uuid4().hex,
    )


@pytest.fixture
def keystore(settings: Settings) -> KeyStore:
    return KeyStore(key_provider(settings))


class Queue:
    """Units of work over the test's two practices, each as a different holder."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, *tenants: Tenant
    ) -> None:
        self.sessions = sessions
        self.keystore = keystore
        self.tenants = tuple(TenantId(t.id) for t in tenants)

    def scope(self, actor: Principal, *tenants: Tenant) -> AbstractAsyncContextManager[SystemScope]:
        ids = tuple(TenantId(t.id) for t in tenants) or self.tenants
        return system_scope(
            self.sessions, self.keystore, job="workqueue.test", tenant_ids=ids, actor=actor, request=REQUEST
        )

    async def add(
        self, tenant: Tenant, *, priority: int = 5, kind: QueueKind = QueueKind.BILLING
    ) -> WorkItem:
        item = service.new_item(
            kind=kind,
            subject_type=SubjectType.CLAIM,
            subject_id=uuid.uuid4(),
            due_at=datetime.now(UTC) + timedelta(hours=1),
            priority=priority,
        )
        item.tenant_id = tenant.id
        async with self.scope(worker("intake")) as scope:
            await scope.repo(WorkItemRepository).create(item)
        return item

    async def history(self, item: WorkItem) -> list[tuple[ItemEventType, ItemStatus, str | None]]:
        async with self.scope(worker("reader")) as scope:
            events = await scope.repo(WorkItemRepository).history(item.id)
        return [(e.event, e.status, e.actor) for e in events]


@pytest.fixture
def queue(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, tenant: Tenant, other_tenant: Tenant
) -> Queue:
    return Queue(sessions, keystore, tenant, other_tenant)


async def test_two_concurrent_leases_never_take_the_same_item(queue: Queue, tenant: Tenant) -> None:
    first = await queue.add(tenant, priority=1)
    second = await queue.add(tenant, priority=2)
    alice, bob = worker("alice"), worker("bob")
    async with queue.scope(alice, tenant) as a, queue.scope(bob, tenant) as b:
        # Alice's transaction still holds her row when Bob leases: he skips it rather than wait or share it.
        took_a = await service.lease_next(a, QueueKind.BILLING)
        took_b = await service.lease_next(b, QueueKind.BILLING)
        assert took_a is not None
        assert took_b is not None
        assert (took_a.id, took_b.id) == (first.id, second.id)
        assert took_a.status is ItemStatus.LEASED
        assert took_a.leased_by == alice.subject
        assert await service.lease_next(b, QueueKind.BILLING) is None  # nothing else is free


async def test_many_concurrent_leases_take_distinct_items(
    queue: Queue, tenant: Tenant, other_tenant: Tenant
) -> None:
    added = {(await queue.add(t)).id for t in (tenant, other_tenant) for _ in range(4)}

    async def lease_one() -> uuid.UUID | None:
        async with queue.scope(worker("w")) as scope:
            item = await service.lease_next(scope, QueueKind.BILLING)
            await asyncio.sleep(0.05)  # hold the lock while the others look
            return item.id if item else None

    taken = [i for i in await asyncio.gather(*(lease_one() for _ in range(8))) if i is not None]
    assert len(taken) == len(set(taken))
    assert set(taken) <= added


async def test_an_expired_lease_can_be_leased_again(queue: Queue, tenant: Tenant) -> None:
    item = await queue.add(tenant)
    alice, bob = worker("alice"), worker("bob")
    async with queue.scope(alice) as scope:
        held = await service.lease_next(scope, QueueKind.BILLING, ttl=timedelta(minutes=5))
        assert held is not None
        assert held.id == item.id
    async with queue.scope(bob) as scope:
        assert await service.lease_next(scope, QueueKind.BILLING) is None  # Alice's live lease is respected
    async with queue.scope(alice) as scope:
        await service.release(scope, item.id)
    async with queue.scope(alice) as scope:
        assert await service.lease_next(scope, QueueKind.BILLING, ttl=timedelta(milliseconds=1)) is not None
    await asyncio.sleep(0.01)
    async with queue.scope(bob) as scope:
        again = await service.lease_next(scope, QueueKind.BILLING)
        assert again is not None
        assert again.id == item.id
        assert again.leased_by == bob.subject
        with pytest.raises(Conflict):
            # Alice's lease has expired: she cannot complete what Bob now holds.
            async with queue.scope(alice) as hers:
                await service.complete(hers, item.id)
        done = await service.complete(scope, item.id)
        assert done.status is ItemStatus.DONE
        assert done.leased_by is None
    assert await queue.history(item) == [
        (ItemEventType.CREATED, ItemStatus.OPEN, None),
        (ItemEventType.LEASED, ItemStatus.LEASED, alice.subject),
        (ItemEventType.RELEASED, ItemStatus.OPEN, alice.subject),
        (ItemEventType.LEASED, ItemStatus.LEASED, alice.subject),
        (ItemEventType.LEASED, ItemStatus.LEASED, bob.subject),
        (ItemEventType.COMPLETED, ItemStatus.DONE, bob.subject),
    ]


async def test_a_lease_takes_only_the_scopes_practices_by_priority(
    queue: Queue, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await queue.add(other_tenant, priority=0)
    later = await queue.add(tenant, priority=7)
    sooner = await queue.add(tenant, priority=3)
    coding = await queue.add(tenant, priority=0, kind=QueueKind.CODING)
    async with queue.scope(worker("w"), tenant) as scope:
        taken = [await service.lease_next(scope, QueueKind.BILLING) for _ in range(3)]
    assert [t.id if t else None for t in taken] == [sooner.id, later.id, None]
    assert theirs.id not in {t.id for t in taken if t}
    assert coding.id not in {t.id for t in taken if t}


async def test_one_live_item_per_subject_and_queue(queue: Queue, tenant: Tenant) -> None:
    item = await queue.add(tenant)
    again = service.new_item(
        kind=item.kind, subject_type=item.subject_type, subject_id=item.subject_id, due_at=item.due_at
    )
    again.tenant_id = tenant.id
    with pytest.raises(Exception, match="uq_work_item_live_subject"):
        async with queue.scope(worker("w")) as scope:
            await scope.repo(WorkItemRepository).create(again)
    async with queue.scope(worker("w")) as scope:
        cancelled = await scope.repo(WorkItemRepository).cancel_for_subject(
            item.subject_type, item.subject_id, actor="w"
        )
        assert [c.status for c in cancelled] == [ItemStatus.CANCELLED]
        await scope.repo(WorkItemRepository).create(again)  # a cancelled item no longer blocks new work
        assert len(await scope.repo(WorkItemRepository).for_subject(item.subject_type, item.subject_id)) == 2
