"""A held transaction set reviewed: released and posted whole, or discarded, by a biller or supervisor.

A set is held whole when it does not balance (``posting.hold_reason``). After review, it is either:
- ``post``: the set is read again from the kept file (the file is the record: nothing else is trusted) and
  its balance checked again: a set that now balances is posted exactly as one that balanced on arrival
  (claims matched and moved, every payment, adjustment and PLB posted). One that still does not is posted
  only when the reviewer accepts the imbalance: then BPR02's difference from what the claims and PLB explain
  moves between payments and ``unapplied`` (source ``remittance_imbalance``), so the set's payments are
  still BPR02 to the cent, and a claim that does not balance keeps its difference open on its receivable;
- ``discard``: nothing is posted, ever;
- ``route``: the set is another practice's payment (the payer's payee routing was wrong): it is read again
  from the kept file and sent to the practice named (one of the reviewer's own; an operator's, any active
  one), where it is applied exactly as a set routed there by its payee (``intake.post_by_hand``, the path
  the unassigned-ERA queue routes by: posted, held when it does not balance, refused when received there
  before), or to the unassigned-ERA queue (``intake.queue_by_hand``), for that queue's supervisors to route.
  Nothing is posted here. Audited in both practices' trails (the queue: the platform's).
The decision is recorded once per set (``remittance_release``, append-only): the same decision again answers
what was decided (a retry posts nothing twice), another is a 409; the remittance row itself never changes
(the ledger's rows are append-only), its review is read beside it. Audited in the practice's trail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.claims.adjudication import ReadSet, post_received, read_set
from rcm.claims.applying import Applying
from rcm.claims.building import CLAIM
from rcm.claims.states import Cause
from rcm.crypto.provider import KeyProvider
from rcm.interchanges import service as files
from rcm.interchanges.repository import X12FileLinkRepository, X12FileRepository
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.kit.models import utcnow
from rcm.ledger import intake, posting, schemas
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
from rcm.tenancy.repository import tenant_by_id, tenant_by_slug
from rcm.tenancy.scope import StaffScope, SystemScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.tenancy.vocabulary import TenantStatus
from rcm.x12 import transactions

RELEASE = "remittance_release"
_ACTIONS = {"post": ReleaseAction.POSTED, "discard": ReleaseAction.DISCARDED, "route": ReleaseAction.ROUTED}


async def remittance_practice(staff: StaffScope, remittance_id: uuid.UUID) -> TenantScope:
    """The practice of a payment received in the caller's practices (404 for any other)."""
    row = await staff.repo(RemittanceRepository).get(remittance_id)
    if row is None:
        raise NotFound
    return await one_practice(staff, row.tenant_id)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a held set is routed: ``practice`` (its scope, on the reviewer's transaction) or, when None,
    the unassigned-ERA queue, whose supervisors of ``candidates`` (and platform admins) route it on."""

    provider: KeyProvider  # seals the file kept in the queue
    practice: TenantScope | None = None
    candidates: tuple[uuid.UUID, ...] = ()


def check_route(data: schemas.ReleaseCreate) -> None:
    """A ``route`` names one destination, a practice (``tenant``) or the queue (``unassigned``); nothing
    else names one. 422 naming the field otherwise."""
    if data.action != "route":
        if data.tenant is not None or data.unassigned:
            field = "/tenant" if data.tenant is not None else "/unassigned"
            raise InvalidInput(
                "Only a route decision names where the payment goes.",
                errors=[FieldError(field, "only with action route")],
            )
        return
    if data.tenant is not None and data.unassigned:
        raise InvalidInput(
            "Route the payment to a practice or to the unassigned-ERA queue, not both.",
            errors=[FieldError("/unassigned", "not with tenant")],
        )
    if data.tenant is None and not data.unassigned:
        raise InvalidInput(
            "Name the practice the payment belongs to, or route it to the unassigned-ERA queue.",
            errors=[FieldError("/tenant", "required to route (or unassigned)")],
        )


async def staff_destination(
    staff: StaffScope, practice: TenantScope, data: schemas.ReleaseCreate, provider: KeyProvider
) -> Destination | None:
    """The destination of a staff member's decision (None unless it routes): an active practice of theirs
    (any other slug is the 422 an unknown one is), or the queue, for the supervisors of their other
    practices."""
    check_route(data)
    if data.action != "route":
        return None
    if data.tenant is None:
        others = tuple(t for t in staff.tenant_ids if t != practice.tenant_id)
        return Destination(provider, candidates=others)
    tenant = await tenant_by_slug(staff.session, data.tenant)
    if tenant is None or tenant.id not in staff.tenant_ids or tenant.status != TenantStatus.ACTIVE:
        raise InvalidInput("No practice of yours has this slug.", errors=[FieldError("/tenant", "unknown")])
    return Destination(provider, await one_practice(staff, tenant.id))


async def system_destination(
    system: SystemScope, data: schemas.ReleaseCreate, provider: KeyProvider
) -> Destination | None:
    """An operator's: the practice named (one of the job's, opened active by its caller) or the queue,
    where only platform admins see it (no candidates)."""
    check_route(data)
    if data.action != "route":
        return None
    if data.tenant is None:
        return Destination(provider)
    tenant = await tenant_by_slug(system.session, data.tenant)
    if tenant is None or tenant.id not in system.tenant_ids:
        raise InvalidInput("No active practice has this slug.", errors=[FieldError("/tenant", "unknown")])
    return Destination(provider, await one_practice(system, tenant.id))


def view(row: RemittanceRelease, routed_to: str | None = None) -> schemas.ReleaseView:
    return schemas.ReleaseView(
        remittance_id=row.remittance_id,
        action=row.action.value,
        reason=row.reason,
        imbalance_cents=row.imbalance_cents,
        decided_by=row.actor,
        decided_at=row.created_at,
        routed_to=routed_to,
    )


async def release(
    scope: TenantScope,
    store: BlobStore,
    remittance_id: uuid.UUID,
    data: schemas.ReleaseCreate,
    *,
    destination: Destination | None = None,
) -> schemas.ReleaseView:
    """Post the held set ``remittance_id`` whole, discard it, or route it to ``destination`` (see the
    module)."""
    remittance = await scope.repo(RemittanceRepository).get_or_404(remittance_id)
    wanted = _ACTIONS[data.action]
    if (wanted is ReleaseAction.ROUTED) != (destination is not None):
        raise ValueError("a route decision, and only one, has a destination")
    to = destination.practice.tenant_id if destination and destination.practice else None
    reviews = scope.repo(ReleaseRepository)
    decided = await reviews.of_remittance(remittance_id)
    if decided is not None:
        return await _again(scope, decided, wanted, to)
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
        routed_tenant_id=to,
    )
    if wanted is ReleaseAction.DISCARDED:
        first = await _record(scope, row, remittance)
        return view(row) if first is None else await _again(scope, first, wanted, to)
    if destination is not None:
        return await _route(scope, store, remittance, row, destination)
    _, _, read = await _held_set(scope, store, remittance)
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
        return await _again(scope, first, wanted, to)  # another reviewer's decision, recorded first
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


async def _route(
    scope: TenantScope,
    store: BlobStore,
    remittance: Remittance,
    row: RemittanceRelease,
    destination: Destination,
) -> schemas.ReleaseView:
    """The held set sent where it belongs (nothing posted in this practice): read again from the kept file,
    the decision recorded, then applied in the practice named or queued."""
    target = destination.practice
    if target is not None and target.tenant_id == scope.tenant_id:
        raise InvalidInput(
            "The payment is in that practice already: post it or discard it.",
            errors=[FieldError("/tenant", "is the payment's own practice")],
        )
    index, data, _ = await _held_set(scope, store, remittance)
    to = target.manifest.slug if target is not None else None
    first = await _record(scope, row, remittance, routed_to=to or "unassigned")
    if first is not None:
        return await _again(scope, first, ReleaseAction.ROUTED, row.routed_tenant_id)
    answer = view(row, to)
    if target is None:
        queued = await intake.queue_by_hand(
            scope.session,
            destination.provider,
            data,
            index,
            candidates=list(destination.candidates),
            actor=scope.principal,
            request=scope.request,
        )
        answer.queued_id = queued.queued_id
    else:
        answer.routed_result = await intake.post_by_hand(
            target, store, data, index, resource_type=RELEASE, resource_ids=[remittance.id, row.id]
        )
    return answer


async def _again(
    scope: TenantScope, decided: RemittanceRelease, wanted: ReleaseAction, to: uuid.UUID | None
) -> schemas.ReleaseView:
    """The decision recorded before, when it is the one asked for again (a route: to the same place)."""
    if decided.action is not wanted:
        raise Conflict(f"This payment was {decided.action.value} after review already.")
    if decided.action is not ReleaseAction.ROUTED:
        return view(decided)
    if decided.routed_tenant_id != to:
        raise Conflict("This payment was routed elsewhere after review already.")
    tenant = await tenant_by_id(scope.session, to) if to is not None else None
    return view(decided, tenant.slug if tenant is not None else None)


async def _record(
    scope: TenantScope, row: RemittanceRelease, remittance: Remittance, *, routed_to: str | None = None
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
        detail={"action": row.action.value, "imbalance_cents": row.imbalance_cents, "routed_to": routed_to},
    )
    return None


async def _held_set(
    scope: TenantScope, store: BlobStore, remittance: Remittance
) -> tuple[int, bytes, ReadSet]:
    """The held set read again from the file it came in (by ST02, TRN02 and BPR02): its place in the file,
    the file, and the set."""
    if remittance.x12_file_id is None:
        raise Conflict(
            "The file this payment came in is not kept; it cannot be posted or routed, only discarded."
        )
    kept = await scope.repo(X12FileRepository).get_or_404(remittance.x12_file_id)
    data = await files.read(scope, store, kept)
    for index, transaction in enumerate(transactions(data)):
        if transaction.kind != "835":
            continue
        read = read_set(transaction)
        if (read.control_number, read.header.trace_number, read.header.total_paid) == (
            remittance.set_control_number,
            remittance.trace_number,
            remittance.total_paid_cents,
        ):
            return index, data, read
    raise Conflict(
        "The payment is not in the file it was recorded from; it cannot be posted or routed, only discarded."
    )
