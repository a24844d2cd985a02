"""Work queue operations. Services never commit: the request or job boundary does.

A holder is the acting principal's subject (a person's id, or a job's name); who may work which queue is
the next issue's guard, not decided here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal
from rcm.kit.db import driver_connection
from rcm.kit.errors import Conflict
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import StaffScope, SystemScope, TenantScope, Touched, staff_audit_of_row
from rcm.tenancy.staff import staff_member, staff_scope
from rcm.workqueue.models import (
    BillingReason,
    ItemEventType,
    ItemStatus,
    QueueKind,
    SubjectType,
    WorkItem,
    WorkItemEvent,
)
from rcm.workqueue.repository import WorkItemRepository, lease_as_staff

WORK_ITEM = "work_item"
NOT_HELD = "You hold no live lease of this work item; ask for the next item or have it reassigned."
DEFAULT_LEASE = timedelta(minutes=15)
DEFAULT_PRIORITY = 5  # lower is sooner

T = TypeVar("T")


def sla_for(manifest: TenantManifest, kind: QueueKind, *, default: timedelta) -> tuple[int, timedelta]:
    """(priority, time until due) of a new item of ``kind`` for the practice of ``manifest``.

    Its ``sla`` section decides; for coding, the older ``rules.coding_sla_hours`` still gives the due time.
    """
    sla = manifest.sla.coding if kind is QueueKind.CODING else manifest.sla.billing
    if sla is not None:
        return sla.priority, timedelta(hours=sla.due_in_hours)
    hours = manifest.rules.coding_sla_hours if kind is QueueKind.CODING else None
    return DEFAULT_PRIORITY, timedelta(hours=hours) if hours is not None else default


def new_item(
    *,
    kind: QueueKind,
    subject_type: SubjectType,
    subject_id: uuid.UUID,
    due_at: datetime,
    priority: int = DEFAULT_PRIORITY,
    created_at: datetime | None = None,
    reason: BillingReason | None = None,
) -> WorkItem:
    """A work item to hand to ``WorkItemRepository.create`` (in the subject's own transaction)."""
    return WorkItem.build(
        id=uuid.uuid4(),
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        status=ItemStatus.OPEN,
        priority=priority,
        due_at=due_at,
        created_at=created_at,
        reason=reason,
        lease_expires_at=None,  # not leased (and read by created_event)
    )


def created_event(item: WorkItem, *, actor: str | None) -> WorkItemEvent:
    """The ``created`` event of a new item, as ``WorkItemRepository.create`` writes it: for an intake that
    writes the item and its event with its other rows in one statement."""
    return WorkItemEvent.build(
        tenant_id=item.tenant_id,
        id=uuid.uuid4(),
        created_at=item.created_at,
        work_item_id=item.id,
        event=ItemEventType.CREATED,
        status=item.status,
        actor=actor,
        lease_expires_at=item.lease_expires_at,
    )


def holds(holder: str, item: WorkItem) -> bool:
    """``holder`` (a principal's subject) holds the item's lease (the repository checks its expiry)."""
    return item.status is ItemStatus.LEASED and item.leased_by == holder


async def enqueue(scope: TenantScope, item: WorkItem) -> WorkItem:
    """Put ``item`` in its queue for the scope's practice (recorded as its ``created`` event)."""
    await scope.repo(WorkItemRepository).create(item, actor=scope.principal.subject)
    return item


async def lease_next(
    scope: StaffScope | SystemScope,
    kind: QueueKind,
    *,
    ttl: timedelta = DEFAULT_LEASE,
    resume: bool = False,
) -> WorkItem | None:
    """The next item of ``kind`` across the scope's practices, now held by the caller until it expires
    (with ``resume``, the caller's own live lease first, renewed)."""
    # The lease records its own audit event (the item's practice is known only once it is picked): one
    # statement for the pick, the item's event and the access.
    audit = scope.audit_of_row(
        "work_item.lease", Action.UPDATE, resource_type=WORK_ITEM, detail={"kind": kind.value}
    )
    return await scope.repo(WorkItemRepository).lease(
        kind, holder=scope.principal.subject, ttl=ttl, resume=resume, audit=audit
    )


async def lease_next_as_staff(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    request: RequestInfo,
    kind: QueueKind,
    *,
    ttl: timedelta = DEFAULT_LEASE,
    resume: bool = False,
) -> WorkItem | None:
    """``lease_next`` in a staff scope of its own, as one statement that is its own transaction: it binds
    itself to the caller's live assignments (read afresh, as ``staff_scope`` does), leases, logs the item's
    event, records the access in the item's practice, and commits; one round trip. For callers whose unit
    of work is the lease alone (a coder's "next item" that opens the item in a later one)."""
    user_id = staff_member(principal)
    audit = staff_audit_of_row(
        principal,
        request,
        "work_item.lease",
        Action.UPDATE,
        resource_type=WORK_ITEM,
        detail={"kind": kind.value},
    )
    async with driver_connection(sessions) as connection:
        return await lease_as_staff(
            connection, user_id, kind, holder=principal.subject, ttl=ttl, audit=audit, resume=resume
        )


async def lease_and_open(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    principal: Principal,
    request: RequestInfo,
    kind: QueueKind,
    *,
    open_item: Callable[[StaffScope, WorkItem], Awaitable[T]],
) -> T | None:
    """A person's "next item": the lease as one committed statement (``lease_next_as_staff``, their own live
    lease again first, renewed), then the item opened by ``open_item`` in a staff scope of its own. Nothing
    to lease costs one round trip; an open that fails leaves the lease held, and asking again resumes it."""
    item = await lease_next_as_staff(sessions, principal, request, kind, resume=True)
    if item is None:
        return None
    async with staff_scope(sessions, keystore, principal, request) as scope:
        return await open_item(scope, item)


async def _finish(
    scope: StaffScope | SystemScope, item_id: uuid.UUID, event: ItemEventType, status: ItemStatus
) -> WorkItem:
    item = await scope.repo(WorkItemRepository).finish(
        item_id, holder=scope.principal.subject, event=event, status=status
    )
    if item is None:
        raise Conflict("You hold no live lease of this work item.")
    scope.audit(
        f"work_item.{event.value}",
        Action.UPDATE,
        resource_type=WORK_ITEM,
        touched=[Touched(item.tenant_id, item.id)],
    )
    return item


async def release(scope: StaffScope | SystemScope, item_id: uuid.UUID) -> WorkItem:
    """Give a leased item back to its queue, unfinished."""
    return await _finish(scope, item_id, ItemEventType.RELEASED, ItemStatus.OPEN)


async def complete(scope: StaffScope | SystemScope, item_id: uuid.UUID) -> WorkItem:
    return await _finish(scope, item_id, ItemEventType.COMPLETED, ItemStatus.DONE)
