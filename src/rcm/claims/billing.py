"""The billing queue: scrub failures, rejections, eligibility problems, dead letters, follow-ups and
enrollment gaps across the practices a biller is assigned to, leased through ``rcm.workqueue`` with the
coding queue's priority, SLA and fairness; finished with an action on the item's claim and a reason.

Supervisors see its depth and age per practice and per reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.claims import schemas, service
from rcm.claims.repository import BillingQueueRepository, ClaimRepository
from rcm.claims.schemas import ClaimAction
from rcm.crypto.keyring import KeyStore
from rcm.denials.models import DenialStatus
from rcm.denials.repository import DenialRepository
from rcm.denials.service import denial_view
from rcm.identity.principal import Principal, Role
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.kit.secrets import SecretResolver
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType, WorkItem
from rcm.workqueue.repository import WorkItemRepository

BILLING_TASK = "billing_task"
NOT_HELD = workqueue.NOT_HELD
# What finishing an item about an encounter (a scrub failure) may say: it was corrected (re-coded and
# scrubbed clean, which builds the claim) or there is nothing to bill.
ENCOUNTER_ACTIONS = frozenset({ClaimAction.CORRECTED, ClaimAction.CLOSE})


def item_view(item: WorkItem) -> schemas.BillingItem:
    return schemas.BillingItem(
        id=item.id,
        tenant_id=item.tenant_id,
        reason=item.reason,
        status=item.status,
        priority=item.priority,
        due_at=item.due_at,
        created_at=item.created_at,
        subject_type=item.subject_type,
        subject_id=item.subject_id,
        leased_by=item.leased_by,
        lease_expires_at=item.lease_expires_at,
    )


async def billing_item(scope: StaffScope, item_id: uuid.UUID) -> tuple[WorkItem, TenantScope]:
    """The billing item (404 outside the caller's practices, or not a billing item) and its practice."""
    item = await scope.repo(WorkItemRepository).get(item_id)
    if item is None or item.kind is not QueueKind.BILLING:
        raise NotFound
    return item, await one_practice(scope, item.tenant_id)


def _holds(scope: StaffScope, item: WorkItem) -> bool:
    return workqueue.holds(scope.principal.subject, item)


async def _task(practice: TenantScope, item: WorkItem) -> schemas.BillingTask:
    claim = None
    patient_ids: list[uuid.UUID] = []
    if item.subject_type is SubjectType.CLAIM:
        found = await practice.repo(ClaimRepository).get_or_404(item.subject_id)
        claim = await service._full(practice, found)
        patient_ids = [found.patient_id]
    practice.audit(
        "billing.task.read",
        Action.READ,
        resource_type=BILLING_TASK,
        resource_ids=[item.id, item.subject_id],
        patient_ids=patient_ids,
    )
    encounter_id = item.subject_id if item.subject_type is SubjectType.ENCOUNTER else None
    denied = (
        await practice.repo(DenialRepository).of_claim(item.subject_id, statuses=[DenialStatus.OPEN])
        if item.reason is BillingReason.DENIAL
        else []
    )
    return schemas.BillingTask(
        item=item_view(item),
        claim=claim,
        encounter_id=encounter_id,
        denials=[denial_view(d) for d in denied],
    )


async def next_task(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, principal: Principal, request: RequestInfo
) -> schemas.BillingTask | None:
    """Lease the next billing item across the caller's practices (their own live lease again, if they hold
    one: asking twice is the same answer) and open it."""
    return await workqueue.lease_and_open(
        sessions, keystore, principal, request, QueueKind.BILLING, open_item=_open
    )


async def _open(scope: StaffScope, item: WorkItem) -> schemas.BillingTask:
    return await _task(await one_practice(scope, item.tenant_id), item)


async def open_task(scope: StaffScope, item_id: uuid.UUID) -> schemas.BillingTask:
    """An item the caller holds (a supervisor may open any item of the practices they supervise)."""
    item, practice = await billing_item(scope, item_id)
    if not _holds(scope, item) and not scope.principal.has_role(Role.SUPERVISOR):
        raise Conflict(NOT_HELD)
    return await _task(practice, item)


async def release(scope: StaffScope, practice: TenantScope, item_id: uuid.UUID) -> schemas.BillingItem:
    item, _ = await billing_item(scope, item_id)
    if not _holds(scope, item):
        raise Conflict(NOT_HELD)
    return item_view(await workqueue.release(scope, item_id))


async def complete(
    scope: StaffScope,
    practice: TenantScope,
    item_id: uuid.UUID,
    data: schemas.CompleteItem,
    *,
    secrets: SecretResolver,
) -> schemas.Completed:
    """Finish an item the caller holds with an action on its claim (resubmit, replace, void, close) or
    ``corrected``; the action and the item's completion commit together or not at all."""
    item, _ = await billing_item(scope, item_id)
    if not _holds(scope, item):
        raise Conflict(NOT_HELD)
    if item.subject_type is not SubjectType.CLAIM and data.action not in ENCOUNTER_ACTIONS:
        raise InvalidInput(
            "An item about an encounter is finished as corrected or closed.",
            errors=[FieldError("/action", "is not corrected or close")],
        )
    # The item first: the action then finds no live item about its claim to resolve. A refused action
    # (409) rolls both back with the request.
    done = await workqueue.complete(scope, item_id)
    claim = (
        await _act(practice, item.subject_id, data, secrets)
        if item.subject_type is SubjectType.CLAIM
        else None
    )
    practice.audit(
        "billing.complete",
        Action.UPDATE,
        resource_type=BILLING_TASK,
        resource_ids=[item.id],
        detail={"action": data.action.value, "reason_length": len(data.reason)},
    )
    return schemas.Completed(item=item_view(done), claim=claim)


async def _act(
    practice: TenantScope, claim_id: uuid.UUID, data: schemas.CompleteItem, secrets: SecretResolver
) -> schemas.Claim:
    if data.action is ClaimAction.RESUBMIT:
        return await service.resubmit(practice, claim_id, schemas.ResubmitClaim(reason=data.reason))
    if data.action is ClaimAction.REPLACE:
        return await service.replace(
            practice, claim_id, schemas.ReplaceClaim(reason=data.reason), secrets=secrets
        )
    if data.action is ClaimAction.VOID:
        return await service.void(practice, claim_id, schemas.VoidClaim(reason=data.reason))
    if data.action is ClaimAction.CLOSE:
        return await service.close(practice, claim_id, schemas.CloseClaim(reason=data.reason))
    return await service.read_claim(practice, claim_id)  # corrected: the claim as it stands


async def queue_report(scope: StaffScope) -> schemas.BillingQueueReport:
    """Depth and age of the billing queue per practice and per reason, over the supervisor's practices."""
    repo = scope.repo(BillingQueueRepository)
    now = datetime.now(UTC)

    def age(oldest: datetime) -> int:
        return max(0, int((now - oldest).total_seconds()))

    practices = [
        schemas.PracticeDepth(
            tenant_id=row.tenant_id,
            open=row.open,
            leased=row.leased,
            waiting=row.waiting,
            overdue=row.overdue,
            oldest_age_seconds=age(row.oldest),
        )
        for row in await repo.depth_by_practice(QueueKind.BILLING)
    ]
    reasons = [
        schemas.ReasonDepth(
            tenant_id=row.tenant_id,
            reason=row.reason,
            live=row.live,
            overdue=row.overdue,
            oldest_age_seconds=age(row.oldest),
        )
        for row in await repo.depth_by_reason()
    ]
    scope.audit(
        "supervision.billing_queue",
        Action.READ,
        resource_type="work_item",
        detail={"kind": QueueKind.BILLING.value},
    )
    return schemas.BillingQueueReport(practices=practices, reasons=reasons)
