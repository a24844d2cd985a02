"""All SQL of the work queues. Every change of an item and its event are ONE statement (a data-modifying
CTE): the transition and its history cannot part, and a lease costs one round trip."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    DateTime,
    Interval,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from rcm.audit.repository import event_of_row
from rcm.kit.db import DriverStatement
from rcm.kit.repository import TenantScopedRepository
from rcm.tenancy.repository import bind_live_assignments_text
from rcm.workqueue.models import (
    BillingReason,
    ItemEventType,
    ItemStatus,
    QueueKind,
    SubjectType,
    WorkItem,
    WorkItemEvent,
)

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
                    "reason": item.reason,
                    **(
                        {"created_at": item.created_at}
                        if item.created_at is not None
                        else {"created_at": now}
                    ),
                }
            )
        added = self._insert_items(values).cte("added")
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

    @staticmethod
    def _insert_items(values: list[dict[str, Any]]) -> Any:
        """One INSERT for any number of items: a few rows as VALUES, many as parallel arrays unnested
        (a statement's parameters are capped at 32,767; ten arrays are ten parameters, whatever the count)."""
        if len(values) <= 100:
            return insert(_ITEM).values(values).returning(*_ITEM.c)
        now = datetime.now(UTC)
        columns = (
            "tenant_id",
            "id",
            "kind",
            "subject_type",
            "subject_id",
            "status",
            "priority",
            "due_at",
            "reason",
        )
        arrays = [
            literal([v[c].value if hasattr(v[c], "value") else v[c] for v in values], ARRAY(_ITEM.c[c].type))
            if c not in ("kind", "subject_type", "status", "reason")
            else literal([None if v[c] is None else str(v[c]) for v in values], ARRAY(Text()))
            for c in columns
        ]
        created = literal(
            [v["created_at"] if isinstance(v["created_at"], datetime) else now for v in values],
            ARRAY(DateTime(timezone=True)),
        )
        rows = select(*(func.unnest(a) for a in arrays), func.unnest(created))
        return insert(_ITEM).from_select([*columns, "created_at"], rows).returning(*_ITEM.c)

    async def lease(
        self,
        kind: QueueKind,
        *,
        holder: str,
        ttl: timedelta,
        audit: Mapping[str, Any],
        resume: bool = False,
    ) -> WorkItem | None:
        """Take the next item of ``kind`` in this scope's practices that nobody holds (or whose lease has
        expired), and hold it for ``ttl``. With ``resume``, the holder's own live lease of ``kind`` comes
        first (renewed): asking for the next item twice hands back the same one.

        One statement (``_lease_statement``), built once and run with this call's parameters; it records the
        access too (``audit``: ``rcm.audit.trail.of_row``'s parameters), in the leased item's practice.
        """
        params = {
            **audit,
            "lease_tenants": list(self.context.tenant_ids),
            "lease_kind": kind.value,
            "lease_holder": holder,
            "lease_ttl": ttl,
            "lease_event": ItemEventType.LEASED.value,
        }
        row = (await self._execute(_lease_statement(resume), params)).first()
        return None if row is None else WorkItem(**row._mapping)

    async def note(self, item_id: uuid.UUID, *, holder: str, event: ItemEventType) -> WorkItem | None:
        """Log ``event`` (a draft saved) on an item ``holder`` holds a live lease of; None otherwise."""
        changed = (
            update(_ITEM)
            .where(*self._held(item_id, holder))
            .values(updated_at=func.clock_timestamp())
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, event, holder)
        return rows[0] if rows else None

    def _held(self, item_id: uuid.UUID, holder: str) -> tuple[ColumnElement[bool], ...]:
        return (
            self.tenant_filter(_ITEM.c.tenant_id),
            _ITEM.c.id == item_id,
            _ITEM.c.status == ItemStatus.LEASED,
            _ITEM.c.leased_by == holder,
            _ITEM.c.lease_expires_at > func.now(),
        )

    async def answered(self, item_id: uuid.UUID, *, actor: str) -> WorkItem | None:
        """A waiting item goes back to its queue (its practice answered the query)."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.id == item_id,
                _ITEM.c.status == ItemStatus.WAITING,
            )
            .values(status=ItemStatus.OPEN, updated_at=func.clock_timestamp())
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, ItemEventType.ANSWERED, actor)
        return rows[0] if rows else None

    async def reassign(self, item_id: uuid.UUID, *, to: str, ttl: timedelta, actor: str) -> WorkItem | None:
        """Hand a live item (open, leased or expired; not one waiting on the practice) to ``to``."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.id == item_id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED]),
            )
            .values(
                status=ItemStatus.LEASED,
                leased_by=to,
                lease_expires_at=func.now() + ttl,
                updated_at=func.clock_timestamp(),
            )
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, ItemEventType.REASSIGNED, actor)
        return rows[0] if rows else None

    async def reprioritise(
        self, item_id: uuid.UUID, *, priority: int, due_at: datetime | None, actor: str
    ) -> WorkItem | None:
        """Change a live item's priority (and due date)."""
        new: dict[str, Any] = {"priority": priority, "updated_at": func.clock_timestamp()}
        if due_at is not None:
            new["due_at"] = due_at
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.id == item_id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
            )
            .values(**new)
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, ItemEventType.REPRIORITISED, actor)
        return rows[0] if rows else None

    async def depth_by_practice(self, kind: QueueKind) -> list[Any]:
        """Per practice: open (incl. expired leases), leased, waiting, overdue, and the oldest live item."""
        live_lease = and_(_ITEM.c.status == ItemStatus.LEASED, _ITEM.c.lease_expires_at > func.now())
        stmt = (
            select(
                _ITEM.c.tenant_id,
                func.count().filter(and_(_ITEM.c.status != ItemStatus.WAITING, ~live_lease)).label("open"),
                func.count().filter(live_lease).label("leased"),
                func.count().filter(_ITEM.c.status == ItemStatus.WAITING).label("waiting"),
                func.count().filter(_ITEM.c.due_at < func.now()).label("overdue"),
                func.min(_ITEM.c.created_at).label("oldest"),
            )
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.kind == kind,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
            )
            .group_by(_ITEM.c.tenant_id)
            .order_by(_ITEM.c.tenant_id)
        )
        return await self._rows(stmt)

    async def held_by_coder(self, kind: QueueKind) -> list[Any]:
        """Per holder of a live lease: items held, how many are overdue, the oldest held."""
        stmt = (
            select(
                _ITEM.c.leased_by,
                func.count().label("held"),
                func.count().filter(_ITEM.c.due_at < func.now()).label("overdue"),
                func.min(_ITEM.c.created_at).label("oldest"),
            )
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.kind == kind,
                _ITEM.c.status == ItemStatus.LEASED,
                _ITEM.c.lease_expires_at > func.now(),
            )
            .group_by(_ITEM.c.leased_by)
            .order_by(_ITEM.c.leased_by)
        )
        return await self._rows(stmt)

    async def completed_by_coder(self, kind: QueueKind, *, since: datetime) -> list[Any]:
        """Per coder: items completed since ``since``, and how many of them after their due date."""
        stmt = (
            select(
                _EVENT.c.actor,
                func.count().label("completed"),
                func.count().filter(_EVENT.c.created_at > _ITEM.c.due_at).label("late"),
            )
            .select_from(
                _EVENT.join(
                    _ITEM,
                    and_(_ITEM.c.tenant_id == _EVENT.c.tenant_id, _ITEM.c.id == _EVENT.c.work_item_id),
                )
            )
            .where(
                self.tenant_filter(_EVENT.c.tenant_id),
                _ITEM.c.kind == kind,
                _EVENT.c.event == ItemEventType.COMPLETED.value,
                _EVENT.c.created_at >= since,
            )
            .group_by(_EVENT.c.actor)
            .order_by(_EVENT.c.actor)
        )
        return await self._rows(stmt)

    async def finish(
        self, item_id: uuid.UUID, *, holder: str, event: ItemEventType, status: ItemStatus
    ) -> WorkItem | None:
        """End ``holder``'s live lease of the item (release, complete); None when they hold no such lease."""
        changed = (
            update(_ITEM)
            .where(*self._held(item_id, holder))
            .values(status=status, leased_by=None, lease_expires_at=None, updated_at=func.clock_timestamp())
            .returning(*_ITEM.c)
        )
        rows = await self._run(changed, event, holder)
        return rows[0] if rows else None

    async def cancel_for_subject(
        self,
        subject_type: SubjectType,
        subject_id: uuid.UUID,
        *,
        actor: str | None,
        reason: BillingReason | None = None,
    ) -> list[WorkItem]:
        """Cancel the live items about a subject (it was voided, merged or billed another way); only those
        opened for ``reason`` when given (what they asked for was done another way)."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.subject_type == subject_type,
                _ITEM.c.subject_id == subject_id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
                true() if reason is None else _ITEM.c.reason == reason,
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


# The staff lease on the driver's connection, outside SQLAlchemy: BEGIN and the staff binding in one
# simple-query message, the lease (prepared, its parameters bound), COMMIT: three round trips for the whole
# unit of work, and no session, ORM or compiled-cache lookup per lease. The lease's SQL is SQLAlchemy's,
# compiled once per shape. (The binding cannot be in the lease statement itself: PostgreSQL plans a statement
# before running any of it, and its estimates read the tenant binding, empty then: all plans expect no rows.)
_ENUMS = {"kind": QueueKind, "subject_type": SubjectType, "status": ItemStatus, "reason": BillingReason}


@functools.cache
def _staff_lease_sql(resume: bool) -> DriverStatement:
    return DriverStatement.compile(_lease_statement(resume, bound=True))


async def lease_as_staff(
    connection: Any,
    user_id: uuid.UUID,
    kind: QueueKind,
    *,
    holder: str,
    ttl: timedelta,
    audit: Mapping[str, Any],
    resume: bool = False,
) -> WorkItem | None:
    """``WorkItemRepository.lease`` for the staff member ``user_id`` as one whole unit of work on
    ``connection`` (asyncpg, no transaction open): bound to the person's live assignments
    (``bind_live_assignments``, read afresh), the lease with its event and audit event, committed.
    Rolled back on any error (``driver_connection`` drops a connection left inside a transaction)."""
    statement = _staff_lease_sql(resume)
    values = {
        **audit,
        "lease_kind": kind.value,
        "lease_holder": holder,
        "lease_ttl": ttl,
        "lease_event": ItemEventType.LEASED.value,
    }
    await connection.execute(f"BEGIN ISOLATION LEVEL READ COMMITTED; {bind_live_assignments_text(user_id)}")
    try:
        row = await connection.fetchrow(statement.sql, *statement.arguments(values))
    except Exception:
        await connection.execute("ROLLBACK")
        raise
    await connection.execute("COMMIT")
    if row is None:
        return None
    fields = dict(row.items())
    for name, vocabulary in _ENUMS.items():
        if fields[name] is not None:
            fields[name] = vocabulary(fields[name])
    return WorkItem(**fields)


# The lease's constants are written into its text, not bound: PostgreSQL plans a prepared statement once
# (a generic plan) only if that plan is about as good as one made for the values, and with the statuses and
# limits as parameters it is not (the queue index is partial on the status, which a parameter cannot be
# proved to match; a parameter LIMIT is costed as many rows), so every lease would be planned afresh.
_OPEN: ColumnElement[str] = literal_column(f"'{ItemStatus.OPEN.value}'")
_LEASED: ColumnElement[str] = literal_column(f"'{ItemStatus.LEASED.value}'")
_ONE: ColumnElement[int] = literal_column("1")


@functools.cache
def _lease_statement(resume: bool, bound: bool = False) -> Select[Any]:
    """The lease, as one statement with bound parameters (``lease_tenants``: the scope's practices;
    ``lease_kind``, ``lease_holder``, ``lease_ttl``, ``lease_event``: named apart from the columns, which an
    UPDATE would otherwise take them for), built once per shape so each lease only binds and runs it.

    Fair across practices (Medplum's fairqueue round-robins projects the same way): the practices are taken
    in turn, the one served least recently (by when its last lease began) first, and within a practice the
    item of the best priority, then the earliest due date, then the oldest. The per-practice pick is a
    LATERAL ``LIMIT 1 FOR UPDATE SKIP LOCKED``, run practice by practice in that order and stopped at the
    first hit (the outer ``LIMIT 1`` over a nested loop): exactly one row is locked, two concurrent leases
    never take the same item and neither waits for the other, and a backlog of 10,000 in one practice costs
    the others one index probe each. The practices are exactly the scope's (``lease_tenants``); RLS, bound
    to the same list, is the backstop. With ``bound``, the practices are those the transaction is bound
    to (``rcm.current_tenant_ids()``, what RLS shows): the staff binding made before it (``lease_as_staff``).
    """
    kind = bindparam("lease_kind", type_=Text())
    holder = bindparam("lease_holder", type_=Text())
    ttl = bindparam("lease_ttl", type_=Interval())
    tenants: ColumnElement[Any] = (
        func.rcm.current_tenant_ids(type_=ARRAY(PG_UUID(as_uuid=True)))
        if bound
        else bindparam("lease_tenants", type_=ARRAY(PG_UUID(as_uuid=True)))
    )
    leasable = or_(
        _ITEM.c.status == _OPEN,
        and_(_ITEM.c.status == _LEASED, _ITEM.c.lease_expires_at <= func.now()),
    )
    # The scope's practices as a one-column table (one array parameter: the statement stays cached).
    turn = func.unnest(tenants).table_valued("tenant_id").render_derived(name="turn")
    past = _ITEM.alias("past")
    served = (
        select(func.max(past.c.leased_at))
        .where(past.c.tenant_id == turn.c.tenant_id, past.c.kind == kind)
        .scalar_subquery()
    )
    # The order of ``turns`` is the order the nested loop visits practices in (no outer ORDER BY: one there
    # would run the locking pick for every practice before sorting).
    turns = select(turn.c.tenant_id).order_by(served.asc().nulls_first(), turn.c.tenant_id).subquery("turns")
    head = (
        select(_ITEM.c.tenant_id, _ITEM.c.id)
        .where(_ITEM.c.tenant_id == turns.c.tenant_id, _ITEM.c.kind == kind, leasable)
        .order_by(_ITEM.c.priority, _ITEM.c.due_at, _ITEM.c.id)
        .limit(_ONE)
        .with_for_update(skip_locked=True)
        .lateral("head")
    )
    fair = select(head.c.tenant_id, head.c.id).select_from(turns.join(head, true())).limit(_ONE)
    picked: CTE
    if resume:
        mine = (
            select(_ITEM.c.tenant_id, _ITEM.c.id)
            .where(
                _ITEM.c.tenant_id == any_(tenants),
                _ITEM.c.kind == kind,
                _ITEM.c.status == _LEASED,
                _ITEM.c.leased_by == holder,
                _ITEM.c.lease_expires_at > func.now(),
            )
            .limit(_ONE)
            .with_for_update()
            .cte("mine")
        )
        # The fair pick runs only when the holder has no live lease (a one-time filter on ``mine``).
        first = select(mine.c.tenant_id, mine.c.id)
        picked = union_all(first, fair.where(~exists(select(mine.c.id)))).limit(_ONE).cte("picked")
    else:
        picked = fair.cte("picked")
    changed = (
        update(_ITEM)
        .where(_ITEM.c.tenant_id == picked.c.tenant_id, _ITEM.c.id == picked.c.id)
        .values(
            # A constant, not a bound value: DML values inside a CTE are left out of the statement's cache
            # key, so a bound one would go missing when the cached statement runs again.
            status=_LEASED,
            leased_by=holder,
            lease_expires_at=func.now() + ttl,
            leased_at=func.now(),
            updated_at=func.clock_timestamp(),
        )
        .returning(*_ITEM.c)
        .cte("changed")
    )
    logged = insert(_EVENT).from_select(
        list(_EVENT_COLUMNS),
        select(
            changed.c.tenant_id,
            func.gen_random_uuid(),
            changed.c.updated_at,
            changed.c.id,
            bindparam("lease_event", type_=Text()),
            changed.c.status,
            holder,
            changed.c.lease_expires_at,
        ),
    )
    audited = event_of_row(changed.c.tenant_id, changed.c.id)
    # Plain rows (no ORM statement around it): the leased item is built from what the UPDATE returned.
    return select(changed).add_cte(logged.cte("logged"), audited.cte("audited"))
