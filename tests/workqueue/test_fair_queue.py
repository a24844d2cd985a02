"""The coding queue under load: 50 coders pulling from one queue (no item held twice, none lost, expired
leases reclaimed), fairness across practices, and the one-item-per-coder resume."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings, app_database_url
from rcm.crypto.keyring import KeyStore
from rcm.kit.db import create_engine, session_factory
from rcm.kit.errors import Conflict
from rcm.tenancy.models import Tenant
from rcm.workqueue import service
from rcm.workqueue.models import ItemEventType, ItemStatus, QueueKind, SubjectType, WorkItem
from rcm.workqueue.repository import WorkItemRepository
from tests.workqueue.test_lease import Queue, keystore, queue, worker

__all__ = ["keystore", "queue"]


@pytest.fixture
async def wide_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A pool that lets 50 coders hold a transaction each at the same time."""
    engine = create_engine(app_database_url(settings), pool_size=25, application_name="rcm-tests-queue")
    yield engine
    await engine.dispose()


async def fill(
    queue: Queue, tenant: Tenant, count: int, *, priority: int = 5, age: timedelta
) -> list[WorkItem]:
    """``count`` items in one multi-row INSERT, the oldest ``age`` ago (older first, as intake makes them)."""
    start = datetime.now(UTC) - age
    step = age / max(count, 1)
    items = []
    for n in range(count):
        created = start + step * n
        item = service.new_item(
            kind=QueueKind.CODING,
            subject_type=SubjectType.ENCOUNTER,
            subject_id=uuid.uuid4(),
            due_at=created + timedelta(hours=48),
            priority=priority,
            created_at=created,
        )
        item.tenant_id = tenant.id
        items.append(item)
    async with queue.scope(worker("intake"), tenant) as scope:
        await scope.repo(WorkItemRepository).create(*items)
    return items


async def test_fifty_coders_never_share_an_item_and_lose_none(
    wide_engine: AsyncEngine, keystore: KeyStore, tenant: Tenant, other_tenant: Tenant
) -> None:
    sessions: async_sessionmaker[AsyncSession] = session_factory(wide_engine)
    queue = Queue(sessions, keystore, tenant, other_tenant)
    added = {i.id for t in (tenant, other_tenant) for i in await fill(queue, t, 150, age=timedelta(hours=1))}
    rng = random.Random(6)
    abandoned: list[uuid.UUID] = []

    async def coder(n: int) -> list[uuid.UUID]:
        me = worker(f"coder{n}")
        done = []
        while True:
            # About one lease in twenty is walked away from: it is short, so it comes back quickly (the
            # others are long enough to outlast a loaded machine).
            walk_away = rng.random() < 0.05
            ttl = timedelta(milliseconds=200) if walk_away else timedelta(seconds=60)
            async with queue.scope(me) as scope:
                item = await service.lease_next(scope, QueueKind.CODING, ttl=ttl)
            if item is None:
                return done
            await asyncio.sleep(rng.random() * 0.01)
            if walk_away:
                abandoned.append(item.id)  # this coder walks away: the lease must expire and be reclaimed
                continue
            async with queue.scope(me) as scope:
                try:
                    await service.complete(scope, item.id)
                    done.append(item.id)
                except Conflict:  # the lease expired meanwhile: someone else finishes it
                    continue

    async def until_empty() -> list[uuid.UUID]:
        finished: list[uuid.UUID] = []
        for _ in range(20):  # abandoned items come back when their lease expires
            rounds = await asyncio.gather(*(coder(n) for n in range(50)))
            finished += [i for r in rounds for i in r]
            if set(finished) >= added:
                return finished
            await asyncio.sleep(0.25)
        return finished

    finished = await asyncio.wait_for(until_empty(), timeout=120)
    assert len(finished) == len(set(finished)), "an item was completed twice"
    assert set(finished) == added, "an item was lost"
    assert abandoned, "the test abandoned no lease"
    # Every abandoned item was leased again after its lease expired, and no two leases overlapped.
    async with queue.scope(worker("reader")) as scope:
        repo = scope.repo(WorkItemRepository)
        for item_id in added:
            held_until: datetime | None = None
            leases = 0
            for event in await repo.history(item_id):
                if event.event is ItemEventType.LEASED:
                    if held_until is not None:
                        assert event.created_at >= held_until, f"{item_id} leased twice at once"
                    held_until = event.lease_expires_at
                    leases += 1
                elif event.event in (ItemEventType.RELEASED, ItemEventType.COMPLETED):
                    held_until = None
            if item_id in abandoned:
                assert leases >= 2, "an expired lease was not reclaimed"
            assert event.event is ItemEventType.COMPLETED
            assert event.status is ItemStatus.DONE


async def test_a_big_backlog_does_not_starve_a_small_practice(
    queue: Queue, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Practice A's 10,000 items are all older than practice B's 10: oldest-first alone would serve A only.
    await fill(queue, tenant, 10_000, age=timedelta(days=3))
    small = {i.id for i in await fill(queue, other_tenant, 10, age=timedelta(minutes=5))}
    served: list[uuid.UUID] = []
    me = worker("coder")
    for _ in range(20):
        async with queue.scope(me) as scope:
            item = await service.lease_next(scope, QueueKind.CODING)
            assert item is not None
            served.append(item.id)
    assert small <= set(served), "the small practice waited behind the big backlog"
    # In turn: every second lease is the small practice's.
    assert [i in small for i in served] in ([True, False] * 10, [False, True] * 10)


async def test_within_a_practice_priority_then_due_date_then_oldest(queue: Queue, tenant: Tenant) -> None:
    late = await fill(queue, tenant, 2, priority=5, age=timedelta(hours=2))
    urgent = await fill(queue, tenant, 1, priority=1, age=timedelta(minutes=1))
    order = []
    async with queue.scope(worker("c"), tenant) as scope:
        for _ in range(3):
            item = await service.lease_next(scope, QueueKind.CODING)
            assert item is not None
            order.append(item.id)
    assert order == [urgent[0].id, late[0].id, late[1].id]


async def test_asking_again_resumes_the_coders_own_item(queue: Queue, tenant: Tenant) -> None:
    await fill(queue, tenant, 3, age=timedelta(hours=1))
    me = worker("coder")
    async with queue.scope(me) as scope:
        first = await service.lease_next(scope, QueueKind.CODING, resume=True)
    async with queue.scope(me) as scope:
        again = await service.lease_next(scope, QueueKind.CODING, resume=True)
    assert first is not None
    assert again is not None
    assert again.id == first.id
    assert again.lease_expires_at is not None
    assert first.lease_expires_at is not None
    assert again.lease_expires_at >= first.lease_expires_at
    async with queue.scope(worker("other")) as scope:
        theirs = await service.lease_next(scope, QueueKind.CODING, resume=True)
    assert theirs is not None
    assert theirs.id != first.id
    counts: dict[ItemEventType, int] = defaultdict(int)
    for event, _status, _actor in await queue.history(first):
        counts[event] += 1
    assert counts[ItemEventType.LEASED] == 2
