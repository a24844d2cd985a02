"""Submission batches: ready claims grouped per practice, payer and claim type (never across practices: a
batch is one practice's envelope, under its enrollment's submitter and receiver ids; never 837P and 837I
claims together), each under an interchange whose ISA13/GS06/ST02 control numbers are allocated uniquely
per sender id and recorded on the batch.

``batch_document`` gathers what the 837P/837I writer of ``rcm.x12`` needs for one batch (envelope,
submitter, receiver, billing provider, claims and lines): the writer renders it, and the connector sends the
bytes; ``mark_sent`` then moves the batch's claims to ``submitted``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from rcm.audit.events import Action
from rcm.claims.models import BatchStatus, Claim, ClaimLine, SubmissionBatch
from rcm.claims.repository import ClaimRepository
from rcm.claims.states import Cause, ClaimState
from rcm.claims.submit_tasks import submit_batch_job
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.payers.models import Payer, PayerEnrollment
from rcm.payers.repository import EnrollmentRepository
from rcm.tenancy.manifest import BillingProvider
from rcm.tenancy.scope import SystemScope, TenantScope, Touched
from rcm.worker import enqueue

BATCH = "submission_batch"
# The 837 implementation guides recommend no more than 5,000 claims (CLM) per transaction set.
MAX_CLAIMS_PER_BATCH = 5000
TRANSACTION_SET_CONTROL_NUMBER = "0001"  # one ST per interchange: unique within its GS by construction


@dataclass(frozen=True, slots=True)
class BatchDocument:
    """Everything the 837 writer needs for one batch, typed; no ORM object leaves this module."""

    batch: SubmissionBatch
    payer: Payer
    enrollment: PayerEnrollment
    billing_provider: BillingProvider
    claims: tuple[tuple[Claim, tuple[ClaimLine, ...]], ...]


async def build_batches(
    scope: TenantScope | SystemScope, *, now: datetime | None = None, limit: int = 50_000
) -> list[SubmissionBatch]:
    """Group the scope's ready, unbatched claims into batches: per practice, per payer, per claim type (837P
    or 837I), at most
    ``MAX_CLAIMS_PER_BATCH`` each. Claims are locked SKIP LOCKED (two batchers never take the same claim);
    a practice without an enrollment for a payer keeps those claims unbatched (they should not be ready)."""
    now = now or datetime.now(UTC)
    repo = scope.repo(ClaimRepository)
    claims = await repo.unbatched_ready(limit=limit)
    built: list[SubmissionBatch] = []
    enrollments = await scope.repo(EnrollmentRepository).with_payers(
        {(c.tenant_id, c.payer_id) for c in claims}
    )
    # One payer's 837P claims and its 837I claims never share a batch: a batch is one interchange of one
    # implementation guide, which its connector, acknowledgments and file name follow.
    for (tenant_id, payer_id, claim_type), group in groupby(
        claims, key=lambda c: (c.tenant_id, c.payer_id, c.claim_type)
    ):
        found = enrollments.get((tenant_id, payer_id))
        if found is None:
            continue
        enrollment, payer = found
        members = list(group)
        for start in range(0, len(members), MAX_CLAIMS_PER_BATCH):
            chunk = members[start : start + MAX_CLAIMS_PER_BATCH]
            number = await repo.allocate_control_number(enrollment.submitter_id)
            batch = SubmissionBatch(
                tenant_id=tenant_id,
                id=uuid.uuid4(),
                created_at=now,
                updated_at=now,
                payer_id=payer_id,
                connector=payer.claims_connector,
                sender_id=enrollment.submitter_id,
                receiver_id=enrollment.receiver_id,
                interchange_control_number=number,
                # One functional group per interchange: GS06 takes the interchange's number (unique per
                # sender as well), ST02 is unique within its group.
                group_control_number=number,
                transaction_set_control_number=TRANSACTION_SET_CONTROL_NUMBER,
                claim_count=len(chunk),
                claim_type=claim_type,
                status=BatchStatus.PENDING,
                attempts=0,
                next_attempt_at=now,  # due at once: its message is sent after commit
            )
            await repo.attach(batch, [c.id for c in chunk])
            built.append(batch)
    if not built:
        return built
    # The pending batch is the outbox record of its own sending, committed with it; its message goes after
    # commit (nothing if this rolls back), and the relay sends it again should this one be lost.
    for batch in built:
        enqueue(scope.session, submit_batch_job, tenant_id=batch.tenant_id, batch_id=batch.id)
    if isinstance(scope, TenantScope):
        scope.audit("submission_batch.create", Action.CREATE, resource_type=BATCH, resource_ids=_ids(built))
    else:
        touched = [Touched(b.tenant_id, b.id) for b in built]
        scope.audit("submission_batch.create", Action.CREATE, resource_type=BATCH, touched=touched)
    return built


def _ids(batches: Sequence[SubmissionBatch]) -> list[uuid.UUID]:
    return [b.id for b in batches]


async def batch_document(scope: TenantScope, batch_id: uuid.UUID) -> BatchDocument:
    """The batch with its claims and lines, its enrollment and payer: the 837 writer's input."""
    repo = scope.repo(ClaimRepository)
    batch = await repo.batch(batch_id)
    if batch is None:
        raise NotFound
    found = await scope.repo(EnrollmentRepository).for_payer(batch.payer_id)
    if found is None:
        raise Conflict(
            "The practice is no longer enrolled with the batch's payer.",
            errors=[FieldError("/payer_id", f"{batch.payer_id} has no enrollment")],
        )
    enrollment, payer = found
    # Only claims still ready go out: one closed or voided after batching must never reach the payer.
    claims = [c for c in await repo.batch_claims(batch.id) if c.state is ClaimState.READY]
    lines = await repo.lines_of([c.id for c in claims])
    by_claim = {key: tuple(group) for key, group in groupby(lines, key=lambda line: line.claim_id)}
    scope.audit(
        "submission_batch.read",
        Action.READ,
        resource_type=BATCH,
        resource_ids=[batch.id, *(c.id for c in claims)],
        patient_ids=[c.patient_id for c in claims],
    )
    return BatchDocument(
        batch=batch,
        payer=payer,
        enrollment=enrollment,
        billing_provider=scope.manifest.billing_provider,
        claims=tuple((c, by_claim.get(c.id, ())) for c in claims),
    )


async def mark_sent(
    scope: TenantScope, batch_id: uuid.UUID, *, receipt_reference: str | None = None
) -> SubmissionBatch:
    """The connector sent the batch: it is ``sent`` (with the clearinghouse's receipt) and each of its
    ready claims ``submitted`` (an event each, caused by the submission)."""
    repo = scope.repo(ClaimRepository)
    batch = await repo.mark_batch(
        batch_id, status=BatchStatus.SENT.value, receipt_reference=receipt_reference
    )
    if batch is None:
        raise Conflict(
            "Only a pending or sending batch is sent.", errors=[FieldError("/status", "is not pending")]
        )
    for claim in await repo.batch_claims(batch_id):
        if claim.state is ClaimState.READY:
            await repo.transition(
                claim.id,
                expected=ClaimState.READY,
                to=ClaimState.SUBMITTED,
                cause=Cause.SUBMISSION,
                actor=scope.principal.subject,
            )
    scope.audit("submission_batch.sent", Action.UPDATE, resource_type=BATCH, resource_ids=[batch_id])
    return batch
