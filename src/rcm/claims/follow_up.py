"""Follow-ups: a claim the payer has had for longer than its ``status_inquiry_days`` without an answer
(still submitted or accepted) gets a ``follow_up`` item in the billing queue, once, when its payer offers no
electronic status service: a person asks by phone or portal. A payer with one is asked by the 276 job
(``rcm.claims.status_inquiry``), which opens the follow-up itself when the 277 does not settle the claim, so
a claim never gets both. Run by the operator job ``rcm claims follow-ups``."""

from __future__ import annotations

from datetime import UTC, datetime

from rcm.audit.events import Action
from rcm.claims.building import BILLING_SLA, CLAIM
from rcm.claims.repository import BillingQueueRepository, ClaimRepository
from rcm.tenancy.repository import tenant_by_id
from rcm.tenancy.scope import SystemScope, Touched
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType, WorkItem


async def open_follow_ups(scope: SystemScope, *, now: datetime | None = None, limit: int = 10_000) -> int:
    """Open a follow-up item for every claim overdue for an answer from a payer with no status service in
    the scope's practices; returns how many. Each practice's billing SLA (manifest ``sla.billing``) gives
    the item's priority and due date."""
    now = now or datetime.now(UTC)
    due = await scope.repo(ClaimRepository).due_for_follow_up(limit=limit, electronic=False)
    if not due:
        return 0
    slas = {}
    for tenant_id in {tenant for tenant, _ in due}:
        tenant = await tenant_by_id(scope.session, scope.tenant(tenant_id))
        if tenant is not None:
            slas[tenant_id] = workqueue.sla_for(tenant.manifest, QueueKind.BILLING, default=BILLING_SLA)
    items: list[WorkItem] = []
    for tenant_id, claim_id in due:
        priority, due_in = slas.get(tenant_id, (workqueue.DEFAULT_PRIORITY, BILLING_SLA))
        item = workqueue.new_item(
            kind=QueueKind.BILLING,
            subject_type=SubjectType.CLAIM,
            subject_id=claim_id,
            due_at=now + due_in,
            priority=priority,
            created_at=now,
            reason=BillingReason.FOLLOW_UP,
        )
        item.tenant_id = tenant_id
        items.append(item)
    await scope.repo(BillingQueueRepository).create(*items, actor=scope.principal.subject)
    scope.audit(
        "claim.follow_up",
        Action.CREATE,
        resource_type=CLAIM,
        touched=[Touched(item.tenant_id, item.subject_id) for item in items],
        detail={"items": len(items)},
    )
    return len(items)
