"""Applying what a payer or clearinghouse answered to our claims: ``apply_file`` takes a kept inbound file
(``rcm.interchanges``), reads it with our X12 readers and applies it, once.

- 999 (implementation acknowledgment): AK1's group control number (GS06) and AK2's transaction set control
  number (ST02) find the practice's submission batch (the file is linked to it). A rejected set (IK5 R, M,
  W or X, or AK9 without a verdict for our set) rejects every claim of the batch still ``submitted``, each
  with a billing-queue item and the IK3/IK4 errors in words on its event. An accepted set (A, E) moves
  nothing: acceptance into adjudication is the 277CA's to say (a 999 only says the file was readable), and
  a claim with no answer after its payer's ``status_inquiry_days`` gets a follow-up item (``follow_up``).
- 277CA (claim acknowledgment): each claim status's TRN02 is our CLM01 (the patient control number).
  Categories A0/A1/A2/A5 accept the claim (``accepted``, with REF*1K, the payer's claim control number);
  any other (A3, A4, A6, A7, A8...) rejects it, with a billing-queue item and the STC codes in words.
- 835: ``rcm.claims.adjudication``.

A file applied once is ``processed``; applying it again changes nothing (its row, locked, says so). A file
that is not readable as the kind it claims, or a 999 acknowledging no batch of the practice, is ``refused``
with where it fails (segment and position, never content). Claims named but not the practice's are counted
as unmatched: reads are tenant-filtered, so another practice's claim is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.claims import response_codes
from rcm.claims.applying import Applying, Outcome
from rcm.claims.building import CLAIM
from rcm.claims.models import SubmissionBatch
from rcm.claims.repository import ResponseMatchRepository
from rcm.claims.states import Cause, ClaimState
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, FileStatus, X12File
from rcm.interchanges.repository import X12FileLinkRepository, X12FileRepository
from rcm.kit.errors import NotFound
from rcm.tenancy.scope import TenantScope
from rcm.x12 import X12Error, claim_ack, transactions
from rcm.x12 import acknowledgment as ack999
from rcm.x12.acknowledgment import GroupResponse, SetResponse

# The kinds this module applies; other inbound kinds (271, 277) belong to eligibility and status work.
APPLIED_KINDS = ("999", "277CA", "835")
_REJECTED_SET = frozenset({"R", "M", "W", "X"})

Apply = Callable[[Applying, X12File, bytes], Awaitable[uuid.UUID | None]]


async def apply_file(scope: TenantScope, store: BlobStore, file_id: uuid.UUID) -> Outcome:
    """Apply the kept inbound file ``file_id`` (999, 277CA or 835) to the practice's claims, in the
    caller's transaction; the file row is locked for it, so two workers never apply one file at once."""
    from rcm.claims.adjudication import apply_remittance

    appliers: dict[str, Apply] = {"999": _apply_999, "277CA": _apply_277ca, "835": apply_remittance}
    repo = scope.repo(X12FileRepository)
    row = await repo.locked(file_id)
    if row is None or row.direction is not Direction.INBOUND:
        raise NotFound
    if row.status is not FileStatus.KEPT:
        return Outcome(row.id, row.kind, row.status, already=True, error=row.error)
    apply = appliers.get(row.kind)
    if apply is None:
        return await _refuse(scope, row, f"a {row.kind} file is not a response to claims")
    data = await files.read(scope, store, row)
    work = Applying(scope, row.id, Cause.REMITTANCE if row.kind == "835" else Cause.ACKNOWLEDGMENT)
    try:
        async with scope.session.begin_nested():  # a file refused halfway leaves no move behind
            batch_id = await apply(work, row, data)
    except X12Error as exc:
        return await _refuse(scope, row, where(exc))
    except _Unmatched as exc:
        return await _refuse(scope, row, str(exc))
    await repo.settle([row.id], FileStatus.PROCESSED, batch_id=batch_id)
    await scope.repo(X12FileLinkRepository).link(
        row.id, batch_ids=work.batches, claim_ids=work.matched, check_trace_numbers=work.traces
    )
    outcome = work.outcome(row.kind, batch_id=batch_id)
    scope.audit(
        "claim.response_applied",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[row.id, *work.claims],
        patient_ids=list(work.claims.values()),
        detail={
            "kind": row.kind,
            "moved": len(work.claims),
            "unmatched": outcome.unmatched,
            "unchanged": outcome.unchanged,
        },
    )
    return outcome


class _Unmatched(Exception):
    """The file is about nothing of this practice's (a 999 for a batch it never sent)."""


def where(exc: X12Error) -> str:
    """Where a file is not what it claims, PHI-free: the reader's message never quotes a value."""
    parts = [
        f"segment {exc.segment_id}" if exc.segment_id else "",
        f"element {exc.element}" if exc.element is not None else "",
        f"at position {exc.position}" if exc.position is not None else "",
    ]
    located = " ".join(part for part in parts if part)
    return f"{located}: {exc.message}" if located else exc.message


async def _refuse(scope: TenantScope, row: X12File, error: str) -> Outcome:
    await scope.repo(X12FileRepository).settle([row.id], FileStatus.REFUSED, error=error)
    scope.audit(
        "claim.response_refused",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[row.id],
        detail={"kind": row.kind},
    )
    return Outcome(row.id, row.kind, FileStatus.REFUSED, error=error)


def _read_all(data: bytes, kind: str, reader: Callable[..., object]) -> list[object]:
    found = []
    for transaction in transactions(data):
        if transaction.kind != kind:
            raise X12Error(f"a {transaction.kind} set in a {kind} file", segment_id="ST")
        found.append(reader(transaction))
    return found


# -- 999


async def _apply_999(work: Applying, row: X12File, data: bytes) -> uuid.UUID | None:
    groups = [g for g in _read_all(data, "999", ack999.read) if isinstance(g, GroupResponse)]
    matcher = work.scope.repo(ResponseMatchRepository)
    linked: uuid.UUID | None = None
    for group in groups:
        batch = await _batch_of(matcher, group, row)
        if batch is None:
            work.count("unmatched")
            continue
        linked = linked or batch.id
        work.batches[batch.id] = None
        ours = next((s for s in group.sets if s.control_number == batch.transaction_set_control_number), None)
        if ours is None and len(group.sets) == 1:
            ours = group.sets[0]  # our batches hold one set: a renumbered AK202 still answers it
        reason = _rejection(group, ours)
        if reason is None:
            continue  # accepted: the 277CA says what the payer did with each claim
        rejected = []
        for claim in await matcher.locked_in_batch(batch.id):
            work.saw(claim)
            if await work.move(claim, ClaimState.REJECTED, reason=reason):
                rejected.append(claim.id)
        await work.queue_rejections(rejected)
    if linked is None:
        raise _Unmatched("the 999 acknowledges no submission batch of this practice (AK1 group number)")
    return linked


async def _batch_of(
    matcher: ResponseMatchRepository, group: GroupResponse, row: X12File
) -> SubmissionBatch | None:
    if group.functional_id != "HC" or not group.control_number.isdigit():
        return None  # only our 837s (functional group HC) are acknowledged batches
    found = await matcher.acknowledged_batches(int(group.control_number))
    # The 999 goes back to whoever sent the 837: its ISA08 is the batch's sender id, when it says so.
    addressed = [b for b in found if row.receiver_id and b.sender_id.strip() == row.receiver_id.strip()]
    candidates = addressed or found
    return candidates[0] if len(candidates) == 1 else None


def _rejection(group: GroupResponse, ours: SetResponse | None) -> str | None:
    """The reason our set was rejected, in words; None when it was accepted (with or without errors)."""
    if ours is not None:
        return response_codes.set_rejection(ours) if ours.status in _REJECTED_SET else None
    # No AK2 for our set: the group's verdict (AK9) is the set's (R: the whole group refused).
    if group.status in _REJECTED_SET:
        return response_codes.group_rejection(group.status, group.codes)
    return None


# -- 277CA


async def _apply_277ca(work: Applying, row: X12File, data: bytes) -> uuid.UUID | None:
    acknowledgments = [
        a for a in _read_all(data, "277CA", claim_ack.read) if isinstance(a, claim_ack.ClaimAcknowledgment)
    ]
    statuses = [status for a in acknowledgments for status in a.all_claims()]
    claims = {
        claim.patient_control_number: claim
        for claim in await work.scope.repo(ResponseMatchRepository).locked_by_numbers(
            [s.tracking_number for s in statuses]
        )
    }
    rejected = []
    for status in statuses:
        claim = claims.get(status.tracking_number)
        if claim is None:
            work.count("unmatched")
            continue
        work.saw(claim)
        if status.accepted:
            await work.move(
                claim,
                ClaimState.ACCEPTED,
                reason=response_codes.status_text(status.statuses, accepted=True),
                payer_claim_control_number=status.payer_claim_control_number,
            )
        elif await work.move(claim, ClaimState.REJECTED, reason=response_codes.status_text(status.statuses)):
            rejected.append(claim.id)
    await work.queue_rejections(rejected)
    return None
