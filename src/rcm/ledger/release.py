"""A held transaction set reviewed: released and posted whole, or discarded, by a biller or supervisor.

A set is held whole when it does not balance (``posting.hold_reason``). After review, it is either:
- ``post``: the set is read again from the kept file (the file is the record: nothing else is trusted) and
  its balance checked again: a set that now balances is posted exactly as one that balanced on arrival
  (claims matched and moved, every payment, adjustment and PLB posted). One that still does not is posted
  only when the reviewer accepts the imbalance: then BPR02's difference from what the claims and PLB explain
  moves between payments and ``unapplied`` (source ``remittance_imbalance``), so the set's payments are
  still BPR02 to the cent, and a claim that does not balance keeps its difference open on its receivable;
- ``discard``: nothing is posted, ever.
The decision is recorded once per set (``remittance_release``, append-only): the same decision again answers
what was decided (a retry posts nothing twice), another is a 409; the remittance row itself never changes
(the ledger's rows are append-only), its review is read beside it. Audited in the practice's trail.
"""

from __future__ import annotations

import uuid

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.claims.adjudication import ReadSet, post_received, read_set
from rcm.claims.applying import Applying
from rcm.claims.building import CLAIM
from rcm.claims.states import Cause
from rcm.interchanges import service as files
from rcm.interchanges.repository import X12FileLinkRepository, X12FileRepository
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.models import utcnow
from rcm.ledger import posting, schemas
from rcm.ledger.models import (
    Account,
    ReleaseAction,
    Remittance,
    RemittanceRelease,
    RemittanceState,
    Source,
)
from rcm.ledger.release_repository import ReleaseRepository
from rcm.ledger.repository import LedgerRepository, RemittanceRepository
from rcm.ledger.service import Received
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.x12 import transactions

RELEASE = "remittance_release"
_ACTIONS = {"post": ReleaseAction.POSTED, "discard": ReleaseAction.DISCARDED}


async def remittance_practice(staff: StaffScope, remittance_id: uuid.UUID) -> TenantScope:
    """The practice of a payment received in the caller's practices (404 for any other)."""
    row = await staff.repo(RemittanceRepository).get(remittance_id)
    if row is None:
        raise NotFound
    return await one_practice(staff, row.tenant_id)


def view(row: RemittanceRelease) -> schemas.ReleaseView:
    return schemas.ReleaseView(
        remittance_id=row.remittance_id,
        action=row.action.value,
        reason=row.reason,
        imbalance_cents=row.imbalance_cents,
        decided_by=row.actor,
        decided_at=row.created_at,
    )


async def release(
    scope: TenantScope, store: BlobStore, remittance_id: uuid.UUID, data: schemas.ReleaseCreate
) -> schemas.ReleaseView:
    """Post the held set ``remittance_id`` whole, or discard it (see the module)."""
    remittance = await scope.repo(RemittanceRepository).get_or_404(remittance_id)
    wanted = _ACTIONS[data.action]
    reviews = scope.repo(ReleaseRepository)
    decided = await reviews.of_remittance(remittance_id)
    if decided is not None:
        return _again(decided, wanted)
    if remittance.state is not RemittanceState.HELD:
        raise Conflict(
            "This payment balanced and was posted when it was received; only a held one is reviewed."
        )
    row = RemittanceRelease(
        id=uuid.uuid4(),
        remittance_id=remittance_id,
        action=wanted,
        reason=data.reason,
        imbalance_cents=0,
        actor=scope.principal.subject,
        created_at=utcnow(),
    )
    if wanted is ReleaseAction.DISCARDED:
        first = await _record(scope, row, remittance)
        return view(row) if first is None else _again(first, wanted)
    read = await _held_set(scope, store, remittance)
    held = posting.hold_reason(read.header, read.claims, read.adjustments)
    if held and not data.accept_imbalance:
        raise Conflict(
            f"The payment still does not balance ({held}); post it with accept_imbalance, or discard it.",
            errors=[FieldError("/accept_imbalance", "required while the payment does not balance")],
        )
    explained = sum(c.paid for c in read.claims) - sum(a.amount for a in read.adjustments)
    row.imbalance_cents = read.header.total_paid - explained
    first = await _record(scope, row, remittance)
    if first is not None:
        return _again(first, wanted)  # another reviewer's decision, recorded first
    answer = view(row)
    work = Applying(scope, remittance.x12_file_id, Cause.REMITTANCE)  # type: ignore[arg-type]
    await post_received(work, Received(remittance.id, RemittanceState.POSTED, None), read)
    if row.imbalance_cents:
        draft = posting.Draft(Source.REMITTANCE_IMBALANCE)
        draft.add(Account.PAYMENTS, Account.UNAPPLIED, row.imbalance_cents, segment="BPR", index=1)
        await scope.repo(LedgerRepository).post([draft], remittance_id=remittance.id, actor=row.actor)
    if remittance.x12_file_id is not None:
        await scope.repo(X12FileLinkRepository).link(
            remittance.x12_file_id, batch_ids=work.batches, claim_ids=work.matched
        )
    outcome = work.outcome("835")
    scope.audit(
        "claim.remittance_released",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[remittance.id, *work.claims],
        patient_ids=list(work.claims.values()),
        detail={"moved": len(work.claims), "imbalance_cents": row.imbalance_cents},
    )
    answer.claims_matched = outcome.matched
    answer.claims_unmatched = outcome.unmatched
    answer.posted_cents = outcome.posted_cents
    answer.unapplied_cents = outcome.unapplied_cents + row.imbalance_cents
    answer.unmatched_reasons = list(outcome.unmatched_reasons)
    return answer


def _again(decided: RemittanceRelease, wanted: ReleaseAction) -> schemas.ReleaseView:
    if decided.action is not wanted:
        raise Conflict(f"This payment was {decided.action.value} after review already.")
    return view(decided)


async def _record(
    scope: TenantScope, row: RemittanceRelease, remittance: Remittance
) -> RemittanceRelease | None:
    """The decision recorded and audited (None); or the one another reviewer recorded first."""
    reviews = scope.repo(ReleaseRepository)
    if not await reviews.record(row):
        first = await reviews.of_remittance(remittance.id)
        if first is None:  # the conflicting row is another's, committed: always found
            raise Conflict("This payment is being reviewed by someone else; try again.")
        return first
    scope.audit(
        "remittance.reviewed",
        Action.UPDATE,
        resource_type=RELEASE,
        resource_ids=[remittance.id, row.id],
        detail={"action": row.action.value, "imbalance_cents": row.imbalance_cents},
    )
    return None


async def _held_set(scope: TenantScope, store: BlobStore, remittance: Remittance) -> ReadSet:
    """The held set read again from the file it came in (by ST02, TRN02 and BPR02)."""
    if remittance.x12_file_id is None:
        raise Conflict("The file this payment came in is not kept; it cannot be posted, only discarded.")
    kept = await scope.repo(X12FileRepository).get_or_404(remittance.x12_file_id)
    data = await files.read(scope, store, kept)
    for transaction in transactions(data):
        if transaction.kind != "835":
            continue
        read = read_set(transaction)
        if (read.control_number, read.header.trace_number, read.header.total_paid) == (
            remittance.set_control_number,
            remittance.trace_number,
            remittance.total_paid_cents,
        ):
            return read
    raise Conflict(
        "The payment is not in the file it was recorded from; it cannot be posted, only discarded."
    )
