"""Building claims from a coded encounter: on a clean scrub (one per responsible payer: the encounter's
coverage, the primary today; a secondary is built after the primary adjudicates, by the remittance work),
and as a replacement or void of a claim the payer holds.

Kept apart from ``service`` so the scrubber can call it without importing the claim routes' service."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from rcm.audit.events import Action
from rcm.claims.models import Claim, ClaimLine
from rcm.claims.repository import BillingQueueRepository, ClaimRepository
from rcm.claims.states import Cause, ClaimState, Frequency, Responsibility
from rcm.eligibility.models import CheckStatus
from rcm.eligibility.repository import EligibilityRepository
from rcm.ledger import service as ledger
from rcm.payers.repository import EnrollmentRepository
from rcm.scrub.inputs import DiagnosisIn, LineIn, ScrubInput
from rcm.tenancy.scope import TenantScope
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType

CLAIM = "claim"
BILLING_SLA = timedelta(hours=24)  # when the practice's manifest sets no billing SLA
ENROLLMENT_PRIORITY = 4  # lower is sooner
ELIGIBILITY_PRIORITY = 3
PCN_PREFIX = "C"


def patient_control_number(claim_id: uuid.UUID) -> str:
    """CLM01: 17 characters (some payers keep no more than 17 in the 835's CLP01), upper-case letters and
    digits from the claim's random id: unique per practice (the id is), and nothing about the patient."""
    return PCN_PREFIX + base64.b32encode(claim_id.bytes).decode()[:16]


def _responsibility(priority: str) -> Responsibility:
    # The coverage's priority is validated at intake; anything else is a defect, never a silent "primary".
    return Responsibility(priority)


def new_claim(
    data: ScrubInput,
    *,
    payer_id: str,
    coverage_id: uuid.UUID | None,
    responsibility: Responsibility,
    frequency: Frequency,
    now: datetime,
    original: Claim | None = None,
) -> tuple[Claim, list[ClaimLine]]:
    """A claim in ``created`` and its lines, from the coded encounter as ``data`` holds it."""
    claim_id = uuid.uuid4()
    claim = Claim(
        id=claim_id,
        created_at=now,
        encounter_id=data.encounter_id,
        patient_id=data.patient_id,
        coverage_id=coverage_id,
        payer_id=payer_id,
        responsibility=responsibility,
        state=ClaimState.CREATED,
        frequency=int(frequency),
        patient_control_number=patient_control_number(claim_id),
        original_claim_id=original.id if original is not None else None,
        original_payer_claim_control_number=(
            original.payer_claim_control_number if original is not None else None
        ),
        # A replacement or void of a secondary (tertiary) claim follows the same claims before it (2320).
        primary_claim_id=original.primary_claim_id if original is not None else None,
        service_date=data.service_date,
        place_of_service=data.place_of_service,
        diagnoses=[d.code for d in sorted(data.diagnoses, key=lambda d: d.sequence)],
        total_charge_cents=sum(line.charge_cents for line in data.lines),
        claim_type=data.claim_type,  # 837P or 837I: batched apart
        state_changed_at=now,
        updated_at=now,
    )
    lines = [
        ClaimLine(
            id=uuid.uuid4(),
            created_at=now,
            claim_id=claim_id,
            line_number=line.line_number,
            procedure_code=line.procedure_code,
            modifiers=list(line.modifiers),
            units=line.units,
            charge_cents=line.charge_cents,
            diagnosis_pointers=list(line.diagnosis_pointers),
            service_date=line.service_date,
            revenue_code=line.revenue_code,
        )
        for line in data.lines
    ]
    return claim, lines


def snapshot(claim: Claim, lines: Sequence[ClaimLine]) -> ScrubInput:
    """The original claim as built, in the shape claims are built from (a void repeats the original; a
    secondary claim bills what the primary did)."""
    return ScrubInput(
        encounter_id=claim.encounter_id,
        patient_id=claim.patient_id,
        status="",
        service_date=claim.service_date,
        place_of_service=claim.place_of_service,
        patient_sex="",
        providers=(),
        coverage=None,
        diagnoses=tuple(DiagnosisIn(i, code) for i, code in enumerate(claim.diagnoses, start=1)),
        lines=tuple(
            LineIn(
                line_number=line.line_number,
                procedure_code=line.procedure_code,
                modifiers=tuple(line.modifiers),
                units=line.units,
                charge_cents=line.charge_cents,
                diagnosis_pointers=tuple(line.diagnosis_pointers),
                service_date=line.service_date,
                revenue_code=line.revenue_code,
            )
            for line in lines
        ),
        claim_type=claim.claim_type,
    )


async def make_ready(scope: TenantScope, claim: Claim, *, cause: Cause, now: datetime) -> Claim:
    """``created`` -> ``ready`` when the practice is enrolled with the claim's payer; otherwise the claim
    waits in ``created`` and the billing queue gets an ``enrollment`` item about it."""
    actor = scope.principal.subject
    if await scope.repo(EnrollmentRepository).for_payer(claim.payer_id) is not None:
        moved = await scope.repo(ClaimRepository).transition(
            claim.id, expected=ClaimState.CREATED, to=ClaimState.READY, cause=cause, actor=actor
        )
        return moved or claim
    await open_billing_item(scope, claim.id, BillingReason.ENROLLMENT, now=now, priority=ENROLLMENT_PRIORITY)
    return claim


async def open_billing_item(
    scope: TenantScope,
    claim_id: uuid.UUID,
    reason: BillingReason,
    *,
    now: datetime,
    priority: int | None = None,
    subject_type: SubjectType = SubjectType.CLAIM,
) -> uuid.UUID:
    """The claim's one live billing item (opened now with ``reason``, or the one already open): for
    rejections, eligibility problems, dead letters and follow-ups as much as for enrollment. Another
    ``subject_type`` (a submission batch's dead letter) names its subject by ``claim_id`` likewise."""
    items = scope.repo(BillingQueueRepository)
    live = await items.live_about(claim_id)
    if live is not None:
        return live.id
    sla_priority, due_in = workqueue.sla_for(scope.manifest, QueueKind.BILLING, default=BILLING_SLA)
    item = workqueue.new_item(
        kind=QueueKind.BILLING,
        subject_type=subject_type,
        subject_id=claim_id,
        due_at=now + due_in,
        priority=priority if priority is not None else sla_priority,
        created_at=now,
        reason=reason,
    )
    await items.create(item, actor=scope.principal.subject)
    return item.id


async def claims_for_clean_scrub(scope: TenantScope, data: ScrubInput, *, now: datetime) -> uuid.UUID | None:
    """The encounter passed the scrubber: its original claim to the responsible payer (built once: a second
    clean scrub finds it and builds nothing). None when the encounter has no coverage (nothing to bill a
    payer), or when its coverage's latest eligibility check says inactive (a billing item instead). The
    scrubber holds the encounter's row lock, and the unique index backs it up."""
    claims = scope.repo(ClaimRepository)
    coverage = data.coverage  # read with the encounter, under its row lock (rcm.scrub.repository)
    if coverage is None or coverage.coverage_id is None or coverage.priority is None:
        return None
    if coverage.original_claim_id is not None:
        return coverage.original_claim_id
    coverage_id, payer_id, priority = coverage.coverage_id, coverage.payer_id, coverage.priority
    if await _inactive(scope, coverage_id, patient_id=data.patient_id, now=now):
        return None
    responsibility = _responsibility(priority)
    claim, lines = new_claim(
        data,
        payer_id=payer_id,
        coverage_id=coverage_id,
        responsibility=responsibility,
        frequency=Frequency.ORIGINAL,
        now=now,
    )
    if not await claims.insert_new(claim, lines):
        found = await claims.original_of(data.encounter_id, responsibility)
        return found.id if found is not None else None
    await claims.log_created(claim, cause=Cause.SCRUB, actor=scope.principal.subject, reason=None)
    await ledger.post_charges(scope, claim, lines)  # balances exist before any payment
    claim = await make_ready(scope, claim, cause=Cause.SCRUB, now=now)
    scope.audit(
        "claim.create",
        Action.CREATE,
        resource_type=CLAIM,
        resource_ids=[claim.id],
        patient_ids=[data.patient_id],
        detail={"frequency": claim.frequency, "state": claim.state.value, "payer": claim.payer_id},
    )
    return claim.id


async def _inactive(
    scope: TenantScope, coverage_id: uuid.UUID, *, patient_id: uuid.UUID, now: datetime
) -> bool:
    """The coverage's latest answered eligibility check (``rcm.eligibility``) says inactive: no claim is
    built; the billing queue gets an ``eligibility`` item about that check (one live item per check, so a
    second encounter on the same coverage joins it). A coverage never checked, or whose checks were all
    refused, is billed as before: eligibility is checked at the desk, not required before a claim. Once a
    newer check says active (or the coverage is fixed), the next clean scrub builds the claim."""
    latest = await scope.repo(EligibilityRepository).latest(coverage_id)
    if latest is None or latest.status != CheckStatus.INACTIVE:
        return False
    items = scope.repo(BillingQueueRepository)
    if await items.live_about(latest.id) is None:
        sla_priority, due_in = workqueue.sla_for(scope.manifest, QueueKind.BILLING, default=BILLING_SLA)
        item = workqueue.new_item(
            kind=QueueKind.BILLING,
            subject_type=SubjectType.ELIGIBILITY_CHECK,
            subject_id=latest.id,
            due_at=now + due_in,
            priority=min(sla_priority, ELIGIBILITY_PRIORITY),
            created_at=now,
            reason=BillingReason.ELIGIBILITY,
        )
        await items.create(item, actor=scope.principal.subject)
    scope.audit(
        "claim.withheld",
        Action.CREATE,
        resource_type=CLAIM,
        resource_ids=[latest.id, coverage_id],
        patient_ids=[patient_id],
        detail={"reason": BillingReason.ELIGIBILITY.value},
    )
    return True
