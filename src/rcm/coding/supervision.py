"""Supervisors: queue depth, age and SLA breaches per practice and per coder; reassigning and
re-prioritising items; who they may assign to the practices they supervise.

A supervisor supervises the practices they are themselves assigned to (their own staff assignments: the
``StaffScope`` every route here opens). They assign and unassign staff through the admins' privileged path
(``rcm.identity.admin_people``: the control role, audited on the practice's chain) with three limits: only
practices they supervise, never themselves (that would give them routine access to a practice they would
otherwise reach through break-glass, which needs another approver), and only coders and billers (a
supervisor who could assign another supervisor could, by a trade, assign themselves).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.coding import schemas
from rcm.coding.service import CODING_TASK, coding_item, item_view
from rcm.identity.admin_people import AssignmentCheck
from rcm.identity.principal import Principal, Role, parse_roles
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.repository import assignment_of, person_by_id, tenant_by_slug
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.workqueue.models import QueueKind
from rcm.workqueue.repository import WorkItemRepository
from rcm.workqueue.service import DEFAULT_LEASE

# Roles a supervisor may assign to a practice they supervise.
SUPERVISOR_ASSIGNABLE = frozenset({Role.CODER, Role.BILLER})


async def queue_report(scope: StaffScope, kind: QueueKind, *, since: datetime) -> schemas.QueueReport:
    repo = scope.repo(WorkItemRepository)
    now = datetime.now(UTC)
    practices = [
        schemas.PracticeQueue(
            tenant_id=row.tenant_id,
            open=row.open,
            leased=row.leased,
            waiting=row.waiting,
            overdue=row.overdue,
            oldest_age_seconds=max(0, int((now - row.oldest).total_seconds())),
        )
        for row in await repo.depth_by_practice(kind)
    ]
    coders: dict[str, schemas.CoderLoad] = {}
    for row in await repo.held_by_coder(kind):
        coders[row.leased_by] = schemas.CoderLoad(
            coder=row.leased_by, held=row.held, held_overdue=row.overdue, completed=0, completed_late=0
        )
    for row in await repo.completed_by_coder(kind, since=since):
        load = coders.setdefault(
            row.actor,
            schemas.CoderLoad(coder=row.actor, held=0, held_overdue=0, completed=0, completed_late=0),
        )
        load.completed, load.completed_late = row.completed, row.late
    scope.audit("supervision.queue", Action.READ, resource_type="work_item", detail={"kind": kind.value})
    return schemas.QueueReport(
        kind=kind, since=since, practices=practices, coders=[coders[c] for c in sorted(coders)]
    )


async def reassign(
    scope: StaffScope, practice: TenantScope, item_id: uuid.UUID, data: schemas.Reassign
) -> schemas.WorkItem:
    """Hand an item to a coder of its practice (their lease from now, for the usual lease time)."""
    await coding_item(scope, item_id)
    target = await assignment_of(scope.session, practice.tenant_id, data.coder)
    person = await person_by_id(scope.session, data.coder)
    if target is None or person is None or not parse_roles(person.roles) & {Role.CODER, Role.SUPERVISOR}:
        raise InvalidInput(
            "The item can only go to a coder of its practice.",
            errors=[FieldError("/coder", "is not a coder assigned to the item's practice")],
        )
    item = await practice.repo(WorkItemRepository).reassign(
        item_id, to=str(data.coder), ttl=DEFAULT_LEASE, actor=scope.principal.subject
    )
    if item is None:
        raise Conflict(
            "Only an item in the queue (not done, cancelled or waiting on the practice) is reassigned."
        )
    practice.audit(
        "coding.reassign",
        Action.UPDATE,
        resource_type=CODING_TASK,
        resource_ids=[item.id],
        detail={"to": str(data.coder)},
    )
    return item_view(item)


async def reprioritise(
    scope: StaffScope, practice: TenantScope, item_id: uuid.UUID, data: schemas.Reprioritise
) -> schemas.WorkItem:
    await coding_item(scope, item_id)
    item = await practice.repo(WorkItemRepository).reprioritise(
        item_id, priority=data.priority, due_at=data.due_at, actor=scope.principal.subject
    )
    if item is None:
        raise Conflict("Only a live item (not done or cancelled) is re-prioritised.")
    practice.audit(
        "coding.reprioritise",
        Action.UPDATE,
        resource_type=CODING_TASK,
        resource_ids=[item.id],
        detail={"priority": data.priority, "due_at": data.due_at.isoformat() if data.due_at else None},
    )
    return item_view(item)


def assignment_check(supervised: tuple[uuid.UUID, ...]) -> AssignmentCheck:
    """The supervisors' limits on the admins' assignment path (see the module's docstring)."""

    async def check(session: AsyncSession, actor: Principal, person: AppUser, tenant: Tenant) -> None:
        if tenant.id not in supervised:
            raise NotFound
        if actor.user_id == person.id:
            raise Conflict(
                "Supervisors cannot assign or unassign themselves; ask an administrator "
                "(or request break-glass access).",
                errors=[FieldError("/user_id", "is yourself")],
            )
        roles = parse_roles(person.roles)
        if not roles or roles - SUPERVISOR_ASSIGNABLE:
            raise Conflict(
                "Supervisors assign coders and billers only; ask an administrator.",
                errors=[FieldError("/user_id", "holds a role a supervisor does not assign")],
            )

    return check


def default_since() -> datetime:
    return datetime.now(UTC) - timedelta(days=1)


async def supervised(scope: StaffScope, slug: str) -> Tenant:
    """One of the practices the supervisor supervises, by slug (any other: the field names no practice)."""
    tenant = await tenant_by_slug(scope.session, slug)
    if tenant is None or tenant.id not in scope.tenant_ids:
        # The same answer as for a slug that names no practice at all (the admins' assignment API's).
        raise InvalidInput("No such practice.", errors=[FieldError("/tenant", "names no practice")])
    return tenant


async def practice_by_slug(scope: StaffScope, slug: str) -> TenantScope:
    """A supervised practice as a tenant scope (its keyring opened in this transaction)."""
    return await one_practice(scope, (await supervised(scope, slug)).id)
