"""Claims as practices read them and billers change them: list, read with lines and events, move through
the state machine, resubmit, replace (frequency 7), void (frequency 8), close with a reason.

Every read names the claims' patients in the audit trail (a claim ties a patient to diagnoses); every change
is an event on the claim and an audit event, in the request's transaction. Services never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from rcm.audit.events import Action
from rcm.claims import schemas, states
from rcm.claims.building import CLAIM, make_ready, new_claim, snapshot
from rcm.claims.models import Claim, ClaimEvent, ClaimLine
from rcm.claims.repository import BillingQueueRepository, ClaimRepository
from rcm.claims.secondary_repository import ClaimAdjudicationRepository
from rcm.claims.states import Cause, ClaimState, Frequency
from rcm.denials import recording as denials
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.kit.secrets import SecretResolver
from rcm.ledger import service as ledger
from rcm.ledger.models import Source as LedgerSource
from rcm.scrub.inputs import ScrubInput
from rcm.scrub.models import ScrubOutcome
from rcm.scrub.service import load_scrub_input, scrub_encounter
from rcm.tenancy.scope import StaffScope, TenantScope, Touched
from rcm.tenancy.staff import one_practice
from rcm.workqueue.models import ItemStatus

# What a replacement may replace: a claim the payer accepted or adjudicated (not one under appeal).
REPLACEABLE = frozenset({ClaimState.ACCEPTED, ClaimState.PAID, ClaimState.PARTIALLY_PAID, ClaimState.DENIED})
# A claim the payer never held is voided by a transition alone; one it holds needs a frequency-8 claim.
VOID_IN_PLACE = frozenset({ClaimState.CREATED, ClaimState.READY, ClaimState.REJECTED})


def row_fields(struct: type[msgspec.Struct], row: object, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The DTO's fields read from the row's columns of the same names (but ``skip``)."""
    return {name: getattr(row, name) for name in struct.__struct_fields__ if name not in skip}


def summary_view(claim: Claim) -> schemas.ClaimSummary:
    return schemas.ClaimSummary(**row_fields(schemas.ClaimSummary, claim))


def claim_view(claim: Claim, lines: Sequence[ClaimLine], events: Sequence[ClaimEvent]) -> schemas.Claim:
    return schemas.Claim(
        **row_fields(schemas.Claim, claim, skip=("lines", "events")),
        lines=[schemas.ClaimLine(**row_fields(schemas.ClaimLine, line)) for line in lines],
        events=[
            schemas.ClaimEvent(**row_fields(schemas.ClaimEvent, e, skip=("at",)), at=e.created_at)
            for e in events
        ],
    )


async def _full(scope: TenantScope | StaffScope, claim: Claim) -> schemas.Claim:
    repo = scope.repo(ClaimRepository)
    return claim_view(claim, await repo.lines(claim.id), await repo.events(claim.id))


# Reading -------------------------------------------------------------------------------------------------


async def list_claims(
    scope: TenantScope,
    *,
    limit: int,
    cursor: str | None,
    state: ClaimState | None = None,
    encounter_id: uuid.UUID | None = None,
) -> Page[schemas.ClaimSummary]:
    rows = await scope.repo(ClaimRepository).page(
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        state=state,
        encounter_id=encounter_id,
    )
    page = paginate(rows, limit, summary_view)
    shown = rows[:limit]
    scope.audit(
        "claim.list",
        Action.READ,
        resource_type=CLAIM,
        resource_ids=[c.id for c in shown],
        patient_ids=[c.patient_id for c in shown],
        detail={"state": state.value if state else None, "count": len(shown)},
    )
    return page


async def staff_claims(
    scope: StaffScope, *, limit: int, cursor: str | None, state: ClaimState | None = None
) -> Page[schemas.ClaimSummary]:
    """A biller's list across the practices they are assigned to (one audit event per practice)."""
    rows = await scope.repo(ClaimRepository).page(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None, state=state, encounter_id=None
    )
    page = paginate(rows, limit, summary_view)
    scope.audit(
        "claim.list",
        Action.READ,
        resource_type=CLAIM,
        touched=[Touched(c.tenant_id, c.id, c.patient_id) for c in rows[:limit]],
        detail={"state": state.value if state else None},
    )
    return page


async def read_claim(scope: TenantScope, claim_id: uuid.UUID) -> schemas.Claim:
    claim = await scope.repo(ClaimRepository).get_or_404(claim_id)
    view = await _full(scope, claim)
    scope.audit(
        "claim.read",
        Action.READ,
        resource_type=CLAIM,
        resource_ids=[claim.id],
        patient_ids=[claim.patient_id],
    )
    return view


async def claim_practice(scope: StaffScope, claim_id: uuid.UUID) -> TenantScope:
    """The practice of a claim in the caller's practices, as a tenant scope (404 for any other claim)."""
    claim = await scope.repo(ClaimRepository).get(claim_id)
    if claim is None:
        raise NotFound
    return await one_practice(scope, claim.tenant_id)


# Changing ------------------------------------------------------------------------------------------------


async def _locked(scope: TenantScope, claim_id: uuid.UUID) -> Claim:
    claim = await scope.repo(ClaimRepository).lock(claim_id)
    if claim is None:
        raise NotFound
    return claim


async def _worked(scope: TenantScope, claim_id: uuid.UUID) -> None:
    """A biller's action on the claim resolves the billing item about it, whichever route it came by; but
    an item another biller holds under a live lease is theirs to finish: the action is refused (409) and
    rolls back with its transaction, so two billers never work one claim at once."""
    repo = scope.repo(BillingQueueRepository)
    item = await repo.live_about(claim_id)
    if (
        item is not None
        and item.status is ItemStatus.LEASED
        and item.leased_by != scope.principal.subject
        and item.lease_expires_at is not None
        and item.lease_expires_at > datetime.now(UTC)
    ):
        raise Conflict(
            "Another biller holds this claim's billing item; act on it once they release it or the lease "
            "expires.",
            errors=[FieldError("/work_item", f"is leased until {item.lease_expires_at.isoformat()}")],
        )
    await repo.complete_about(claim_id, actor=scope.principal.subject)


async def move(
    scope: TenantScope,
    claim_id: uuid.UUID,
    to: ClaimState,
    *,
    cause: Cause,
    reason: str | None = None,
    payer_claim_control_number: str | None = None,
    closed_reason: str | None = None,
    unbatch: bool = False,
) -> Claim:
    """One transition of the state machine (acknowledgments, remittances and billers all come through
    here): refused with a 409 naming the current state when the machine has no such edge."""
    claim = await _locked(scope, claim_id)
    states.check(claim.state, to)
    moved = await scope.repo(ClaimRepository).transition(
        claim.id,
        expected=claim.state,
        to=to,
        cause=cause,
        actor=scope.principal.subject,
        reason=reason,
        payer_claim_control_number=payer_claim_control_number,
        closed_reason=closed_reason,
        unbatch=unbatch,
    )
    if moved is None:  # cannot happen under the row lock; kept as the same 409 rather than a 500
        raise states.illegal(claim.state, f"moved to {to.value}")
    scope.audit(
        "claim.transition",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[claim.id],
        patient_ids=[claim.patient_id],
        detail={"from": claim.state.value, "to": to.value, "cause": cause.value},
    )
    return moved


async def resubmit(scope: TenantScope, claim_id: uuid.UUID, data: schemas.ResubmitClaim) -> schemas.Claim:
    """A rejected claim, corrected, goes back to ``ready`` (out of its old batch, into the next one); a
    claim waiting in ``created`` for its practice's enrollment is checked again."""
    claim = await _locked(scope, claim_id)
    if claim.state is ClaimState.CREATED:
        moved = await make_ready(scope, claim, cause=Cause.BILLER, now=datetime.now(UTC))
        if moved.state is not ClaimState.READY:
            raise Conflict(
                "The practice is not enrolled with the claim's payer (its manifest's payers).",
                errors=[FieldError("/payer_id", f"{claim.payer_id} has no enrollment")],
            )
        await _worked(scope, claim.id)
        return await _full(scope, moved)
    if claim.state is not ClaimState.REJECTED:
        raise states.illegal(claim.state, "resubmitted")
    moved = await move(
        scope, claim.id, ClaimState.READY, cause=Cause.BILLER, reason=data.reason, unbatch=True
    )
    await _worked(scope, claim.id)
    return await _full(scope, moved)


def _held_number(claim: Claim, action: str) -> str:
    """The payer's claim control number a replacement or void references (REF*F8), or the 409."""
    if claim.state not in REPLACEABLE:
        raise states.illegal(claim.state, action)
    if not claim.payer_claim_control_number:
        raise Conflict(
            f"A claim is {action} by the payer's claim control number, and this one has none yet.",
            errors=[FieldError("/payer_claim_control_number", "is not known yet")],
        )
    return claim.payer_claim_control_number


async def _follow_up_claim(
    scope: TenantScope, original: Claim, data: ScrubInput, frequency: Frequency, reason: str
) -> Claim:
    now = datetime.now(UTC)
    claim, lines = new_claim(
        data,
        payer_id=original.payer_id,
        coverage_id=original.coverage_id,
        responsibility=original.responsibility,
        frequency=frequency,
        now=now,
        original=original,
    )
    repo = scope.repo(ClaimRepository)
    await repo.insert_new(claim, lines)
    await repo.log_created(claim, cause=Cause.BILLER, actor=scope.principal.subject, reason=reason)
    # The original's charges reversed; a replacement bills its own (a void claim bills nothing). A next
    # payer's claim bills no charges but the prior claim's patient share: given back, and a replacement takes
    # over what the prior claim's adjudication leaves now (after a reversal and correction of the prior
    # claim's payment, the correction's share: the cob_correction a replacement resolves).
    voided = frequency is Frequency.VOID
    await ledger.reverse_charges(
        scope, original.id, LedgerSource.CLAIM_VOIDED if voided else LedgerSource.CLAIM_REPLACED
    )
    await ledger.give_back_patient_share(scope, original.id)
    if not voided and original.primary_claim_id is not None:
        await ledger.take_over_share_left(scope, original.primary_claim_id, claim.id)
    elif not voided:
        await ledger.post_charges(scope, claim, lines)
    claim = await make_ready(scope, claim, cause=Cause.BILLER, now=now)
    scope.audit(
        "claim.create",
        Action.CREATE,
        resource_type=CLAIM,
        resource_ids=[claim.id, original.id],
        patient_ids=[claim.patient_id],
        detail={"frequency": int(frequency), "state": claim.state.value, "payer": claim.payer_id},
    )
    return claim


async def _prior_adjudication_stands(scope: TenantScope, claim: Claim) -> None:
    """A next payer's claim is replaced with its prior payer's standing adjudication in 2320/2430: not
    while that payer's payment is reversed (CLP02 22) and its correction has not come, else 409 (a void
    is still possible)."""
    if claim.primary_claim_id is None:
        return
    if not await scope.repo(ClaimAdjudicationRepository).standing([claim.primary_claim_id]):
        raise Conflict(
            "The prior payer's payment was reversed and its correction has not come: replace the claim"
            " once it has, or void it.",
            errors=[
                FieldError("/primary_claim_id", "has no standing adjudication (reversed, not corrected)")
            ],
        )


async def replace(
    scope: TenantScope, claim_id: uuid.UUID, data: schemas.ReplaceClaim, *, secrets: SecretResolver
) -> schemas.Claim:
    """A corrected claim (frequency 7) from the encounter as it is coded now, referencing the original's
    payer claim control number; the original is closed as replaced. The original must be accepted or
    adjudicated and carry the payer's number, else 409; a next payer's claim also needs its prior payer's
    standing adjudication (not a reversal awaiting its correction), else 409. The encounter is locked and
    must pass the scrubber as it stands (a dry run: its audit event only), else 409 naming the rules that
    fired or could not run: a correction never reaches the payer unchecked."""
    original = await _locked(scope, claim_id)
    _held_number(original, "replaced")
    await _prior_adjudication_stands(scope, original)
    await load_scrub_input(scope, original.encounter_id, lock=True)
    report = await scrub_encounter(scope, original.encounter_id, dry_run=True, secrets=secrets)
    if report.outcome is not ScrubOutcome.CLEAN:
        raise Conflict(
            "The encounter as coded now does not pass the scrubber; correct it, then replace the claim.",
            errors=[FieldError("/scrub", f"{rule} fired") for rule in report.fired]
            + [FieldError("/scrub", f"{rule} could not run") for rule in report.not_checked_rules],
        )
    coded = await load_scrub_input(scope, original.encounter_id)
    replacement = await _follow_up_claim(scope, original, coded, Frequency.REPLACEMENT, data.reason)
    await move(
        scope,
        original.id,
        ClaimState.CLOSED,
        cause=Cause.BILLER,
        reason=data.reason,
        closed_reason=f"replaced by {replacement.patient_control_number}",
    )
    await _worked(scope, original.id)
    await denials.replaced(scope, original.id, replacement.id)  # its open denials are corrected
    return await _full(scope, replacement)


async def void(scope: TenantScope, claim_id: uuid.UUID, data: schemas.VoidClaim) -> schemas.Claim:
    """Void a claim. One the payer never held (created, ready and in no batch, rejected) is voided in place;
    one it holds is voided by a frequency-8 claim repeating it under its payer claim control number (the
    original is marked voided; the void claim goes to the payer in the next batch). Returns the void claim,
    or the original voided in place."""
    original = await _locked(scope, claim_id)
    if original.state in VOID_IN_PLACE:
        if original.submission_batch_id is not None and original.state is ClaimState.READY:
            raise Conflict(
                "The claim is in a submission batch already; void it once the payer has it.",
                errors=[FieldError("/submission_batch_id", "is set")],
            )
        voided = await move(scope, original.id, ClaimState.VOIDED, cause=Cause.BILLER, reason=data.reason)
        await ledger.reverse_charges(scope, original.id, LedgerSource.CLAIM_VOIDED)
        await ledger.give_back_patient_share(scope, original.id)
        await _worked(scope, original.id)
        return await _full(scope, voided)
    _held_number(original, "voided")
    lines = await scope.repo(ClaimRepository).lines(original.id)
    void_claim = await _follow_up_claim(
        scope, original, snapshot(original, lines), Frequency.VOID, data.reason
    )
    await move(scope, original.id, ClaimState.VOIDED, cause=Cause.BILLER, reason=data.reason)
    await _worked(scope, original.id)
    return await _full(scope, void_claim)


async def close(scope: TenantScope, claim_id: uuid.UUID, data: schemas.CloseClaim) -> schemas.Claim:
    claim = await _locked(scope, claim_id)
    if claim.submission_batch_id is not None and claim.state is ClaimState.READY:
        # As for void: a batched claim may be on its way to the payer; close it once the payer answers.
        raise Conflict(
            "The claim is in a submission batch already; close it once the payer has answered.",
            errors=[FieldError("/submission_batch_id", "is set")],
        )
    closed = await move(
        scope, claim_id, ClaimState.CLOSED, cause=Cause.BILLER, reason=data.reason, closed_reason=data.reason
    )
    await _worked(scope, claim_id)
    return await _full(scope, closed)
