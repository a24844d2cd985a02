"""Denials recorded as an 835 is applied (``rcm.claims.adjudication`` calls ``record`` once per chunk of
claims it moved to ``denied`` or ``partially_paid``), and a billing-queue item opened per denied claim, due
at its appeal deadline.

Per CLP (see ``rcm.denials.categories`` for what denies):
- each service line (SVC) with a denying CAS is a line denial: its position, CPT/HCPCS, codes, and the
  amount those adjustments took (a line paid nothing whose CAS are all routine is still no denial);
- the claim-level CAS that deny are one claim denial (no line);
- a claim paid nothing with no denying CAS at all (CLP02 4 without CAS) is one claim denial of its whole
  charge, reason unknown (category ``other``).

The appeal deadline is the remittance date (BPR16) plus the payer's ``appeal_days`` from the directory
(``DEFAULT_APPEAL_DAYS`` when it has none); the item is due at the start of that day (UTC), so the queue,
which leases by priority and then due date, hands out the denial whose window closes first.

A claim that already has a live billing item (a follow-up not yet worked) keeps it: one live item per
claim; the denial rows are there all the same, and the denial list shows their clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from rcm.claims.building import BILLING_SLA
from rcm.claims.models import Claim
from rcm.claims.repository import BillingQueueRepository, ResponseMatchRepository
from rcm.claims.states import ClaimState
from rcm.denials.categories import classify, is_denial, main_reason
from rcm.denials.models import Denial, DenialStatus
from rcm.denials.repository import DenialRepository
from rcm.payers.repository import directory_payers
from rcm.tenancy.scope import TenantScope
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType
from rcm.x12.remittance_model import Adjustment
from rcm.x12.remittance_model import Claim as Paid

# When the directory does not say: shorter than most payers' first-level windows (Medicare 120 days,
# most commercial plans 180), so the clock errs early rather than late.
DEFAULT_APPEAL_DAYS = 90
DENYING = frozenset({ClaimState.DENIED, ClaimState.PARTIALLY_PAID})


@dataclass(frozen=True, slots=True)
class Denied:
    """One claim the 835 moved (its ``state`` is where it was moved to), with the CLP that moved it."""

    claim: Claim
    paid: Paid


async def _settle(scope: TenantScope, paid: Sequence[uuid.UUID]) -> None:
    settled = await scope.repo(DenialRepository).close_open(paid)
    if settled:
        await scope.repo(BillingQueueRepository).complete_all_about(
            sorted(settled), actor=scope.principal.subject, reason=BillingReason.DENIAL
        )


def appeal_deadline(remitted_on: date, appeal_days: int | None) -> date:
    return remitted_on + timedelta(days=appeal_days or DEFAULT_APPEAL_DAYS)


def due_at(deadline: date) -> datetime:
    """The work item's due time: the start of the deadline day, UTC."""
    return datetime.combine(deadline, time(0), UTC)


def _denying(adjustments: Sequence[Adjustment]) -> list[tuple[str, str, int]]:
    return [(a.group, a.reason, a.amount) for a in adjustments if is_denial(a.group, a.reason)]


def denials_of(
    claim: Claim, paid: Paid, *, remitted_on: date, deadline: date, file_id: uuid.UUID | None
) -> list[Denial]:
    """The denial rows one CLP makes for ``claim`` (not yet inserted)."""
    claim_rarcs = [*paid.remarks, *paid.inpatient_remarks]
    found: list[Denial] = []

    def row(
        denying: list[tuple[str, str, int]],
        rarcs: list[str],
        amount: int,
        line_number: int | None = None,
        code: str | None = None,
    ) -> Denial:
        main = main_reason(denying)
        return Denial(
            id=uuid.uuid4(),
            tenant_id=claim.tenant_id,
            claim_id=claim.id,
            x12_file_id=file_id,
            payer_id=claim.payer_id,
            line_number=line_number,
            procedure_code=code,
            group_code=main[0] if main else None,
            carc=main[1] if main else None,
            adjustments=list(dict.fromkeys(f"{g}-{r}" for g, r, _ in denying)),
            rarcs=list(dict.fromkeys(rarcs)),
            category=classify(main[1] if main else None, rarcs),
            denied_cents=max(0, amount),
            remitted_on=remitted_on,
            appeal_deadline=deadline,
            status=DenialStatus.OPEN,
        )

    for position, line in enumerate(paid.lines, start=1):
        denying = _denying(line.adjustments)
        if not denying:
            continue
        amount = sum(a for _, _, a in denying)
        if line.paid <= 0:
            amount = max(amount, line.charge)  # a line paid nothing is denied whole
        found.append(
            row(
                denying,
                [*line.remarks, *claim_rarcs],
                amount,
                line_number=position if position <= 999 else None,
                code=line.code,
            )
        )
    denying = _denying(paid.adjustments)
    if denying:
        found.append(row(denying, claim_rarcs, sum(a for _, _, a in denying)))
    if not found and paid.paid <= 0:
        found.append(row([], claim_rarcs, paid.charge - paid.paid))
    return found


async def record(
    scope: TenantScope,
    denied: Sequence[Denied],
    *,
    remitted_on: date,
    file_id: uuid.UUID | None,
    now: datetime | None = None,
) -> int:
    """For the claims the 835 moved: insert the denials of those now denied or partially paid and open a
    denial item per claim that has none live; close the open denials of those now paid (reprocessed in
    full) and finish their denial items. The number of items opened. A few statements per chunk, whatever
    its size."""
    await _settle(scope, [d.claim.id for d in denied if d.claim.state is ClaimState.PAID])
    denied = [d for d in denied if d.claim.state in DENYING]
    if not denied:
        return 0
    now = now or datetime.now(UTC)
    payers = await directory_payers(scope.session, {d.claim.payer_id for d in denied})
    rows: list[Denial] = []
    deadlines: dict[uuid.UUID, date] = {}
    for item in denied:
        payer = payers.get(item.claim.payer_id)
        deadline = appeal_deadline(remitted_on, payer.appeal_days if payer is not None else None)
        made = denials_of(item.claim, item.paid, remitted_on=remitted_on, deadline=deadline, file_id=file_id)
        if made:
            rows.extend(made)
            deadlines[item.claim.id] = min(deadline, deadlines.get(item.claim.id, deadline))
    if not rows:
        return 0
    await scope.repo(DenialRepository).insert(*rows)
    live = await scope.repo(ResponseMatchRepository).with_live_items(list(deadlines))
    priority, _ = workqueue.sla_for(scope.manifest, QueueKind.BILLING, default=BILLING_SLA)
    items = [
        workqueue.new_item(
            kind=QueueKind.BILLING,
            subject_type=SubjectType.CLAIM,
            subject_id=claim_id,
            due_at=due_at(deadline),
            priority=priority,
            created_at=now,
            reason=BillingReason.DENIAL,
        )
        for claim_id, deadline in deadlines.items()
        if claim_id not in live
    ]
    if items:
        await scope.repo(BillingQueueRepository).create(*items, actor=scope.principal.subject)
    return len(items)


async def replaced(scope: TenantScope, original_id: uuid.UUID, replacement_id: uuid.UUID) -> None:
    """A replacement claim (frequency 7) was sent for ``original_id``: its open denials are corrected."""
    repo = scope.repo(DenialRepository)
    open_ = await repo.of_claim(original_id, statuses=[DenialStatus.OPEN])
    await repo.set_status([d.id for d in open_], DenialStatus.CORRECTED, replacement_claim_id=replacement_id)
