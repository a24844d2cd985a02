"""All SQL of the work queues. Every change of an item and its event are ONE statement (a data-modifying
CTE): the transition and its history cannot part, and a lease costs one round trip."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CTE, Select, Table, and_, func, insert, literal, or_, select, update

from rcm.kit.repository import TenantScopedRepository
from rcm.workqueue.models import ItemEventType, ItemStatus, QueueKind, SubjectType, WorkItem, WorkItemEvent

_ITEM = cast(Table, WorkItem.__table__)
_EVENT = cast(Table, WorkItemEvent.__table__)
_EVENT_COLUMNS = (
    "tenant_id",
    "id",
    "created_at",
    "work_item_id",
    "event",
    "status",
    "actor",
    "lease_expires_at",
)


class WorkItemRepository(TenantScopedRepository[WorkItem]):
    model = WorkItem

    def _with_event(self, changed: CTE, event: ItemEventType, actor: str | None) -> Select[tuple[WorkItem]]:
        """``SELECT`` the changed items, logging ``event`` for each in the same statement."""
        logged = insert(_EVENT).from_select(
            list(_EVENT_COLUMNS),
            select(
                changed.c.tenant_id,
                func.gen_random_uuid(),
                changed.c.updated_at,
                changed.c.id,
                literal(event.value),
                changed.c.status,
                literal(actor, _EVENT.c.actor.type),
                changed.c.lease_expires_at,
            ),
        )
        stmt: Select[tuple[WorkItem]] = (
            select(WorkItem)
            .from_statement(  # type: ignore[assignment]
                select(changed).add_cte(logged.cte("logged"))
            )
            .execution_options(populate_existing=True)
        )  # the session may hold the item from an earlier step
        return stmt

    async def _run(self, changed: Any, event: ItemEventType, actor: str | None) -> list[WorkItem]:
        rows = await self._execute(self._with_event(changed.cte("changed"), event, actor))
        return list(rows.scalars())

    async def create(self, *items: WorkItem, actor: str | None = None) -> None:
        """INSERT new items (``open``) and their ``created`` events in one statement."""
        tenants = self.context.tenant_ids
        now = func.now()
        values: list[dict[str, Any]] = []
        for item in items:
            if len(tenants) == 1:
                item.tenant_id = tenants[0]
            elif item.tenant_id not in tenants:
                raise ValueError("item of a tenant outside this unit of work")
            values.append(
                {
                    "tenant_id": item.tenant_id,
                    "id": item.id,
                    "kind": item.kind,
                    "subject_type": item.subject_type,
                    "subject_id": item.subject_id,
                    "status": ItemStatus.OPEN,
                    "priority": item.priority,
                    "due_at": item.due_at,
                    **(
                        {"created_at": item.created_at}
                        if item.created_at is not None
                        else {"created_at": now}
                    ),
                }
            )
        added = insert(_ITEM).values(values).returning(*_ITEM.c).cte("added")
        logged = insert(_EVENT).from_select(
            list(_EVENT_COLUMNS),
            select(
                added.c.tenant_id,
                func.gen_random_uuid(),
                added.c.created_at,
                added.c.id,
                literal(ItemEventType.CREATED.value),
                added.c.status,
                literal(actor, _EVENT.c.actor.type),
                added.c.lease_expires_at,
            ),
        )
        await self._execute(logged.add_cte(added))

    async def lease(self, kind: QueueKind, *, holder: str, ttl: timedelta) -> WorkItem | None:
        """Take the most urgent item of ``kind`` in this scope's practices that nobody holds (or whose lease
        has expired), and hold it for ``ttl``.

        One statement: ``FOR UPDATE SKIP LOCKED`` means two concurrent leases never take the same item and
        neither waits for the other; the lease and its event are written together. (Fairness across practices
        comes with the queue API.)
        """
        available = or_(
            _ITEM.c.status == ItemStatus.OPEN,
            and_(_ITEM.c.status == ItemStatus.LEASED, _ITEM.c.lease_expires_at <= func.now()),
        )
        picked = self.for_update(
            select(_ITEM.c.tenant_id, _ITEM.c.id)
            .where(self.tenant_filter(_ITEM.c.tenant_id), _ITEM.c.kind == kind, available)
            .order_by(_ITEM.c.priority, _ITEM.c.due_at, _ITEM.c.id)
            .limit(1),
            skip_locked=True,
        ).cte("picked")
        changed = (
            update(_ITEM)
            .where(_ITEM.c.tenant_id == picked.c.tenant_id, _ITEM.c.id == picked.c.id)
            .values(
                status=ItemStatus.LEASED,
                leased_by=holder,
                lease_expires_at=func.now() + ttl,
                updated_at=func.clock_timestamp(),
            )
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, ItemEventType.LEASED, holder)
        return rows[0] if rows else None

    async def finish(
        self, item_id: uuid.UUID, *, holder: str, event: ItemEventType, status: ItemStatus
    ) -> WorkItem | None:
        """End ``holder``'s live lease of the item (release, complete); None when they hold no such lease."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.id == item_id,
                _ITEM.c.status == ItemStatus.LEASED,
                _ITEM.c.leased_by == holder,
                _ITEM.c.lease_expires_at > func.now(),
            )
            .values(status=status, leased_by=None, lease_expires_at=None, updated_at=func.clock_timestamp())
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, event, holder)
        return rows[0] if rows else None

    async def cancel_for_subject(
        self, subject_type: SubjectType, subject_id: uuid.UUID, *, actor: str | None
    ) -> list[WorkItem]:
        """Cancel the live items about a subject (it was voided, merged or billed another way)."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.subject_type == subject_type,
                _ITEM.c.subject_id == subject_id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED]),
            )
            .values(
                status=ItemStatus.CANCELLED,
                leased_by=None,
                lease_expires_at=None,
                updated_at=func.clock_timestamp(),
            )
            .returning(*_ITEM.c)
        )
        return await self._run(changed, ItemEventType.CANCELLED, actor)

    async def for_subject(self, subject_type: SubjectType, subject_id: uuid.UUID) -> list[WorkItem]:
        stmt = self.base_statement().where(
            WorkItem.subject_type == subject_type, WorkItem.subject_id == subject_id
        )
        return await self._all(stmt.order_by(WorkItem.created_at, WorkItem.id))

    async def history(self, item_id: uuid.UUID) -> list[WorkItemEvent]:
        stmt = self.statement_for(WorkItemEvent).where(WorkItemEvent.work_item_id == item_id)
        return await self._all(stmt.order_by(WorkItemEvent.created_at, WorkItemEvent.id))
