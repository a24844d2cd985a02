"""A coder's next item stays lean: its round trips, no statement compiled afresh, and what the fewer
statements still guarantee (exactly the caller's live assignments, read afresh each time; the access
audited in the item's practice, in the lease's own transaction)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.kit.db import RoundTrips, apply_tenant_context, platform_transaction
from rcm.kit.errors import Forbidden
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from rcm.tenancy.repository import system_assigned_tenants
from rcm.tenancy.service import assign_staff
from rcm.tenancy.staff import staff_scope, system_scope
from rcm.workqueue import service
from rcm.workqueue.models import QueueKind, SubjectType, WorkItem
from rcm.workqueue.repository import WorkItemRepository
from tests.conftest import make_tenant
from tests.identity.conftest import audit_rows, make_user

Sessions = async_sessionmaker[AsyncSession]
REQUEST = RequestInfo(request_id="workqueue-hot-path", trace_id="")

# BEGIN, the staff scope (the caller's live assignments read and bound: one statement), the lease (the item,
# its event and the audit event: one statement), COMMIT. The bare reference of bench/queue.py takes as many.
MAX_LEASE_ROUND_TRIPS = 4


@pytest.fixture
def keystore(settings: Settings) -> KeyStore:
    return KeyStore(key_provider(settings))


async def _coder(control_sessions: Sessions, *tenants: Tenant) -> Principal:
    user = await make_user(control_sessions, ["coder"])
    for tenant in tenants:
        async with platform_transaction(control_sessions) as session:
            await assign_staff(session, TenantId(tenant.id), [user.email])
    return Principal(
        kind=PrincipalKind.USER,
        subject=str(user.id),
        roles=frozenset({Role.CODER}),
        scopes=frozenset(),
        token_id=uuid.uuid4().hex,
        user_id=user.id,
    )


async def _items(sessions: Sessions, keystore: KeyStore, tenant: Tenant, count: int) -> list[WorkItem]:
    items = []
    for _ in range(count):
        item = service.new_item(
            kind=QueueKind.CODING,
            subject_type=SubjectType.ENCOUNTER,
            subject_id=uuid.uuid4(),
            due_at=datetime.now(UTC) + timedelta(hours=4),
        )
        item.tenant_id = tenant.id
        items.append(item)
    async with system_scope(
        sessions,
        keystore,
        job="workqueue.test",
        tenant_ids=(TenantId(tenant.id),),
        actor=Principal(
            kind=PrincipalKind.USER,
            subject="intake",
            roles=frozenset({Role.CODER}),
            scopes=frozenset(),
            token_id="intake",
        ),
        request=REQUEST,
    ) as scope:
        await scope.repo(WorkItemRepository).create(*items)
    return items


async def _lease(sessions: Sessions, keystore: KeyStore, coder: Principal) -> WorkItem | None:
    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        return await service.lease_next(scope, QueueKind.CODING)


async def _bound(
    sessions: Sessions, keystore: KeyStore, coder: Principal
) -> tuple[tuple[uuid.UUID, ...], list[uuid.UUID]]:
    """The scope's practices, and the practices its transaction is bound to (what RLS lets it see)."""
    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        bound = (await scope.session.execute(text("SELECT rcm.current_tenant_ids()"))).scalar_one()
        return tuple(scope.tenant_ids), sorted(bound or [])


async def test_a_lease_takes_four_round_trips_compiles_nothing_and_audits_itself(  # noqa: PLR0917 - fixtures
    sessions: Sessions,
    control_sessions: Sessions,
    app_engine: AsyncEngine,
    owner_engine: AsyncEngine,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    unassigned = await make_tenant(control_sessions, "hot")
    coder = await _coder(control_sessions, tenant, other_tenant)
    mine = {i.id for t in (tenant, other_tenant) for i in await _items(sessions, keystore, t, 3)}
    await _items(sessions, keystore, unassigned, 3)
    for _ in range(2):  # warm what a running server has warm: pooled connections, compiled statements
        assert await _lease(sessions, keystore, coder) is not None
    with RoundTrips(app_engine) as counter:
        item = await _lease(sessions, keystore, coder)
    print(f"\nround trips: lease {counter.round_trips}")
    assert item is not None
    assert counter.round_trips <= MAX_LEASE_ROUND_TRIPS
    assert counter.compiled == []
    assert len(counter.statements) == 2
    assert sum("set_config" in s for s in counter.statements) == 1  # the scope binds once, in its read
    assert item.id in mine
    assert item.leased_by == coder.subject

    # The access is in the item's practice's trail, naming the item, committed with the lease itself.
    events = [
        e
        for e in await audit_rows(owner_engine, "work_item.lease", tenant_id=item.tenant_id)
        if e["resource_ids"] == [item.id]
    ]
    assert len(events) == 1
    event = events[0]
    assert (event["action"], event["outcome"], event["resource_type"]) == ("U", "0", "work_item")
    assert (event["actor_kind"], event["actor_subject"], event["actor_roles"]) == (
        "user",
        coder.subject,
        ["coder"],
    )
    assert event["detail"] == {"kind": "coding", "access": "staff_scope"}
    assert event["patient_ids"] == []
    assert event["request_id"] == REQUEST.request_id
    async with owner_engine.connect() as conn:
        leased_in = (
            await conn.execute(
                text("SELECT xmin::text FROM rcm.work_item WHERE tenant_id = :t AND id = :i"),
                {"t": item.tenant_id, "i": item.id},
            )
        ).scalar_one()
    assert event["xmin"] == leased_in


async def test_an_empty_queue_leases_nothing_and_records_nothing(
    sessions: Sessions,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
    keystore: KeyStore,
    tenant: Tenant,
) -> None:
    coder = await _coder(control_sessions, tenant)
    assert await _lease(sessions, keystore, coder) is None
    assert await audit_rows(owner_engine, "work_item.lease", tenant_id=tenant.id) == []


async def test_a_system_scope_lease_names_its_job(
    sessions: Sessions, owner_engine: AsyncEngine, keystore: KeyStore, tenant: Tenant, other_tenant: Tenant
) -> None:
    (queued,) = await _items(sessions, keystore, other_tenant, 1)
    worker = Principal(
        kind=PrincipalKind.USER,
        subject="router",
        roles=frozenset({Role.BILLER}),
        scopes=frozenset(),
        token_id="router",
    )
    tenants = (TenantId(tenant.id), TenantId(other_tenant.id))
    async with system_scope(
        sessions, keystore, job="workqueue.route", tenant_ids=tenants, actor=worker, request=REQUEST
    ) as scope:
        item = await service.lease_next(scope, QueueKind.CODING)
    assert item is not None
    assert item.id == queued.id
    (event,) = await audit_rows(owner_engine, "work_item.lease", tenant_id=other_tenant.id)
    assert event["resource_ids"] == [queued.id]
    assert event["detail"] == {"kind": "coding", "access": "system", "job": "workqueue.route"}
    assert await audit_rows(owner_engine, "work_item.lease", tenant_id=tenant.id) == []


async def test_the_scope_is_bound_to_exactly_the_live_assignments_read_afresh_each_time(
    sessions: Sessions,
    control_sessions: Sessions,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """No caching: a suspended practice, an ended assignment or a deactivated person is gone from the very
    next unit of work, and the transaction is bound to what the scope names, no wider."""
    unassigned = await make_tenant(control_sessions, "not")
    third = await make_tenant(control_sessions, "third")
    coder = await _coder(control_sessions, tenant, other_tenant, third)
    await _coder(control_sessions, unassigned)  # someone else's assignment grants nothing to this coder
    await _items(sessions, keystore, tenant, 2)
    expected = sorted([tenant.id, other_tenant.id, third.id])
    assert await _bound(sessions, keystore, coder) == (tuple(expected), expected)

    async with platform_transaction(control_sessions) as session:
        await session.execute(update(Tenant).where(Tenant.id == third.id).values(status="suspended"))
    expected = sorted([tenant.id, other_tenant.id])
    assert await _bound(sessions, keystore, coder) == (tuple(expected), expected)

    async with platform_transaction(control_sessions) as session:
        await apply_tenant_context(session, TenantContext.single(TenantId(tenant.id)))
        await session.execute(
            delete(StaffAssignment).where(
                StaffAssignment.tenant_id == tenant.id, StaffAssignment.user_id == coder.user_id
            )
        )
    assert await _bound(sessions, keystore, coder) == ((other_tenant.id,), [other_tenant.id])
    assert await _lease(sessions, keystore, coder) is None  # the ended assignment's items are out of reach

    async with platform_transaction(control_sessions) as session:
        await session.execute(update(AppUser).where(AppUser.id == coder.user_id).values(active=False))
    assert await _bound(sessions, keystore, coder) == ((), [])

    # The auditor's path (the auth layer) reads every assignment, suspended practices included, and leaves
    # the transaction bound to nothing.
    async with sessions() as session, session.begin():
        assert coder.user_id is not None
        assert await system_assigned_tenants(session, coder.user_id) == tuple(
            sorted([other_tenant.id, third.id])
        )
        assert (await session.execute(text("SELECT rcm.current_tenant_ids()"))).scalar_one() is None


# --- the lease as its own unit of work (service.lease_next_as_staff): three round trips on the driver


async def _lease_alone(sessions: Sessions, coder: Principal, *, resume: bool = False) -> WorkItem | None:
    return await service.lease_next_as_staff(sessions, coder, REQUEST, QueueKind.CODING, resume=resume)


async def test_a_lease_of_its_own_binds_leases_audits_and_commits_on_the_driver(  # noqa: PLR0917 - fixtures
    sessions: Sessions,
    control_sessions: Sessions,
    app_engine: AsyncEngine,
    owner_engine: AsyncEngine,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    unassigned = await make_tenant(control_sessions, "alone")
    coder = await _coder(control_sessions, tenant, other_tenant)
    mine = {i.id for t in (tenant, other_tenant) for i in await _items(sessions, keystore, t, 2)}
    theirs = {i.id for i in await _items(sessions, keystore, unassigned, 3)}
    with RoundTrips(app_engine) as counter:
        taken = [await _lease_alone(sessions, coder) for _ in range(5)]
    assert counter.statements == []  # nothing through SQLAlchemy
    assert counter.transactions == 0  # its BEGIN, binding, lease and COMMIT go to the driver
    leased = [item for item in taken if item is not None]
    assert {item.id for item in leased} == mine  # the assigned practices' items, each once, and no other
    assert taken[-1] is None
    assert not {item.id for item in leased} & theirs
    # Fair across the two practices: they take turns.
    assert [item.tenant_id for item in leased[:2]] in (
        [tenant.id, other_tenant.id],
        [other_tenant.id, tenant.id],
    )
    item = leased[0]
    assert item.leased_by == coder.subject
    assert item.status.value == "leased"
    assert item.kind is QueueKind.CODING

    events = [
        e
        for e in await audit_rows(owner_engine, "work_item.lease", tenant_id=item.tenant_id)
        if e["resource_ids"] == [item.id]
    ]
    assert len(events) == 1
    event = events[0]
    assert (event["actor_kind"], event["actor_subject"], event["actor_roles"]) == (
        "user",
        coder.subject,
        ["coder"],
    )
    assert event["detail"] == {"kind": "coding", "access": "staff_scope"}
    async with owner_engine.connect() as conn:
        leased_in = (
            await conn.execute(
                text("SELECT xmin::text FROM rcm.work_item WHERE tenant_id = :t AND id = :i"),
                {"t": item.tenant_id, "i": item.id},
            )
        ).scalar_one()
    assert event["xmin"] == leased_in  # the access committed with the lease itself

    # The binding ended with the statement: the pooled connection carries no tenant into its next use.
    async with app_engine.connect() as conn:
        assert (await conn.execute(text("SELECT rcm.current_tenant_ids()"))).scalar_one() is None


async def test_a_lease_of_its_own_resumes_and_follows_the_live_assignments(  # noqa: PLR0917 - fixtures
    sessions: Sessions,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    coder = await _coder(control_sessions, tenant, other_tenant)
    assert await _lease_alone(sessions, coder, resume=True) is None  # an empty queue: nothing, no event
    assert await audit_rows(owner_engine, "work_item.lease", tenant_id=tenant.id) == []
    await _items(sessions, keystore, tenant, 2)
    await _items(sessions, keystore, other_tenant, 2)
    first = await _lease_alone(sessions, coder, resume=True)
    again = await _lease_alone(sessions, coder, resume=True)
    assert first is not None
    assert again is not None
    assert again.id == first.id  # asking twice is the same answer

    async with platform_transaction(control_sessions) as session:
        await apply_tenant_context(session, TenantContext.single(TenantId(tenant.id)))
        await session.execute(
            delete(StaffAssignment).where(
                StaffAssignment.tenant_id == tenant.id, StaffAssignment.user_id == coder.user_id
            )
        )
    taken = [await _lease_alone(sessions, coder) for _ in range(3)]
    # The other practice's queued items still come (two, less the one first leased if it was theirs), and
    # nothing more of the practice the assignment was removed from.
    still = 2 if first.tenant_id == tenant.id else 1
    assert [item.tenant_id for item in taken if item is not None] == [other_tenant.id] * still
    async with platform_transaction(control_sessions) as session:
        await session.execute(update(AppUser).where(AppUser.id == coder.user_id).values(active=False))
    await _items(sessions, keystore, other_tenant, 1)
    assert await _lease_alone(sessions, coder) is None  # a deactivated person binds nothing

    outsider = Principal(
        kind=PrincipalKind.USER,
        subject="no-staff",
        roles=frozenset(),
        scopes=frozenset(),
        token_id="no-staff",
        user_id=uuid.uuid4(),
    )
    with pytest.raises(Forbidden):
        await _lease_alone(sessions, outsider)


async def test_fifty_coders_leasing_alone_at_once_never_share_an_item(
    sessions: Sessions, control_sessions: Sessions, keystore: KeyStore, tenant: Tenant, other_tenant: Tenant
) -> None:
    coders = [await _coder(control_sessions, tenant, other_tenant) for _ in range(5)]
    items = {i.id for t in (tenant, other_tenant) for i in await _items(sessions, keystore, t, 30)}
    taken = await asyncio.gather(*(_lease_alone(sessions, coders[n % 5]) for n in range(50)))
    ids = [item.id for item in taken if item is not None]
    assert len(ids) == len(set(ids))  # no item twice
    assert set(ids) <= items
    assert len(ids) == 50
