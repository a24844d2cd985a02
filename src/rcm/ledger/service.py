"""Posting to the ledger, in the caller's transaction: a claim's charges when it is built, their reversal
when it is voided or replaced, the patient's share a next payer's claim takes over (and gives back when
voided or replaced), and an 835 transaction set (``receive`` then ``post_remittance``); and a
claim's ledger as the routes show it, its balance the sum of its receivable entries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.claims.models import Claim as OurClaim
from rcm.claims.models import ClaimLine
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.ledger import posting, schemas
from rcm.ledger.lines import match_lines
from rcm.ledger.models import RECEIVABLES, Account, Remittance, RemittanceState, Source
from rcm.ledger.release_repository import ReleaseRepository
from rcm.ledger.repository import LedgerRepository, RemittanceRepository
from rcm.tenancy.scope import StaffScope, TenantScope, Touched
from rcm.x12.remittance_model import Claim, ClaimSource, Header, ProviderAdjustment

LEDGER = "claim_ledger"
REMITTANCE = "remittance"


async def post_charges(scope: TenantScope, claim: OurClaim, lines: Sequence[ClaimLine]) -> None:
    """A claim just built (an original or a replacement): its lines' charges on the insurance receivable."""
    draft = posting.charges(claim.id, [(line.line_number, line.charge_cents) for line in lines])
    await scope.repo(LedgerRepository).post([draft], actor=scope.principal.subject)


async def reverse_charges(scope: TenantScope, claim_id: uuid.UUID, source: Source) -> None:
    """The claim's standing charges reversed (a void, or the original a replacement supersedes)."""
    repo = scope.repo(LedgerRepository)
    draft = posting.reversed_charges(claim_id, await repo.charged(claim_id), source)
    await repo.post([draft], actor=scope.principal.subject)


async def take_over_patient_share(scope: TenantScope, prior: OurClaim, claim: OurClaim, paid: Claim) -> None:
    """``claim`` (a secondary or tertiary) was just built from ``prior``'s 835 CLP ``paid``: the patient's
    share that 835 posted on ``prior`` is now the next payer's to pay, on ``claim``."""
    await _coordinate(scope, prior.id, claim.id, posting.patient_share(paid))


async def _coordinate(scope: TenantScope, prior_claim_id: uuid.UUID, claim_id: uuid.UUID, cents: int) -> None:
    """Post ``cents`` of the prior claim's patient share as ``claim_id``'s to bill (``coordination``)."""
    draft = posting.coordination(prior_claim_id, claim_id, cents)
    await scope.repo(LedgerRepository).post([draft], actor=scope.principal.subject)


async def give_back_patient_share(scope: TenantScope, claim_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The claim is voided or replaced: the prior claims' patient shares it still holds go back to them.
    Returns what it gave back, per prior claim (a replacement then takes over ``take_over_share_left``)."""
    repo = scope.repo(LedgerRepository)
    standing = await repo.coordinated(claim_id)
    await repo.post([posting.reversed_coordination(claim_id, standing)], actor=scope.principal.subject)
    return standing


async def give_back_prior_share(scope: TenantScope, claim_id: uuid.UUID, prior_claim_id: uuid.UUID) -> int:
    """The prior claim's payment was reversed: the patient's share ``claim`` (its next payer's) took over
    from it goes back to it, where the reversal's own entries will take it off again. Returns the cents."""
    repo = scope.repo(LedgerRepository)
    amount = (await repo.coordinated(claim_id)).get(prior_claim_id, 0)
    if amount:
        draft = posting.reversed_coordination(claim_id, {prior_claim_id: amount})
        await repo.post([draft], actor=scope.principal.subject)
    return amount


async def take_over_corrected_share(
    scope: TenantScope, prior: OurClaim, claim: OurClaim, correction: Claim
) -> int:
    """``claim`` (a next payer's, not sent) gave its share back when ``prior``'s payment was reversed: it
    takes over the share ``correction`` (the 835 CLP that followed the reversal) leaves the patient. Nothing
    when it holds a share still. Returns the cents."""
    amount = posting.patient_share(correction)
    if amount <= 0 or await scope.repo(LedgerRepository).coordinated(claim.id):
        return 0
    await _coordinate(scope, prior.id, claim.id, amount)
    return amount


async def take_over_share_left(scope: TenantScope, prior_claim_id: uuid.UUID, claim_id: uuid.UUID) -> int:
    """A replacement of a next payer's claim (its original's share given back first) takes over the patient's
    share the prior claim's standing adjudication leaves: what the original held, or, when the prior claim's
    payment was reversed since (the original flagged ``cob_correction``, its share given back then), what
    the correction that followed leaves (nothing while none came). Returns the cents."""
    amount = await scope.repo(LedgerRepository).patient_share_left(prior_claim_id)
    if amount > 0:
        await _coordinate(scope, prior_claim_id, claim_id, amount)
    return max(amount, 0)


# -- 835


@dataclass(frozen=True, slots=True)
class Received:
    """A transaction set recorded: its remittance id, whether it may be posted, and why not."""

    remittance_id: uuid.UUID
    state: RemittanceState
    held_reason: str | None


async def receive(
    scope: TenantScope,
    *,
    file_id: uuid.UUID | None,
    set_control_number: str,
    header: Header,
    claims: Sequence[Claim],
    adjustments: Sequence[ProviderAdjustment],
) -> Received | None:
    """Record the transaction set, ``posted`` when it balances and ``held`` with the reason when it does not;
    None when it repeats one received before (same TRN02, TRN03 and BPR02): refused, nothing recorded."""
    reason = posting.hold_reason(header, claims, adjustments)
    state = RemittanceState.HELD if reason else RemittanceState.POSTED
    row = Remittance(
        id=uuid.uuid4(),
        x12_file_id=file_id,
        set_control_number=set_control_number,
        payer_name=header.payer.name,
        payer_identifier=header.payer.payer_id or header.payer.identifier,
        trace_originator=header.trace_originator,
        trace_number=header.trace_number,
        total_paid_cents=header.total_paid,
        credit_debit=header.credit_debit,
        payment_method=header.payment_method,
        paid_on=header.payment_date,
        payee_npi=header.payee.npi,
        state=state,
        held_reason=reason,
        claim_count=len(claims),
    )
    if not await scope.repo(LedgerRepository).receive(row):
        return None
    return Received(row.id, state, reason)


@dataclass(frozen=True, slots=True)
class Posted:
    """Cents posted from one transaction set: to claims, unapplied (no claim matched) and by PLB."""

    claims_cents: int
    unapplied_cents: int
    provider_adjustments_cents: int


async def post_remittance(
    scope: TenantScope,
    received: Received,
    claims: Sequence[Claim],
    matched: Sequence[OurClaim | None],
    adjustments: Sequence[ProviderAdjustment],
    *,
    sources: Sequence[ClaimSource] = (),
    adjustment_positions: Sequence[int] = (),
) -> Posted:
    """Post a balanced set: a posting per CLP (``matched[i]`` is the claim of ``claims[i]``, or None) and per
    PLB adjustment, each entry pointing at its segment (``sources``, ``adjustment_positions``: where the
    reader found them). Payments posted sum to BPR02 (checked by ``hold_reason`` before)."""
    if received.state is not RemittanceState.POSTED:
        raise ValueError("a held remittance is not posted")
    repo = scope.repo(LedgerRepository)
    billed = await repo.billed_lines(list({c.id for c in matched if c is not None}))
    drafts = []
    applied = unapplied = 0
    for ordinal, (paid, claim) in enumerate(zip(claims, matched, strict=True), start=1):
        source = sources[ordinal - 1] if sources else None
        if claim is None:
            unapplied += paid.paid
            drafts.append(posting.claim_payment(paid, ordinal, None, [], source=source))
            continue
        applied += paid.paid
        lines = match_lines(paid.lines, billed.get(claim.id, []))
        after_prior = claim.primary_claim_id is not None
        drafts.append(
            posting.claim_payment(
                paid, ordinal, claim.id, lines, after_prior_payer=after_prior, source=source
            )
        )
    drafts.extend(posting.provider_adjustments(adjustments, adjustment_positions))
    await repo.post(drafts, remittance_id=received.remittance_id)
    return Posted(applied, unapplied, sum(a.amount for a in adjustments))


# -- reading


async def claim_ledger(scope: TenantScope, claim: OurClaim) -> schemas.ClaimLedger:
    """The claim's entries (both sides of each posting) and its balance: the sum of its receivable entries,
    the payer's part and the patient's. Audited as a read of the claim."""
    rows = await scope.repo(LedgerRepository).of_claim(claim.id)
    entries = [
        schemas.Entry(
            id=entry.id,
            posting_id=found.id,
            posted_at=entry.created_at,
            source=found.source.value,
            remittance_id=found.remittance_id,
            account=entry.account.value,
            amount_cents=entry.amount_cents,
            line_number=entry.line_number,
            adjustment_group=entry.adjustment_group,
            reason_code=entry.reason_code,
            remark_codes=list(entry.remark_codes),
            segment=entry.segment,
            segment_position=entry.segment_position,
            segment_index=entry.segment_index,
        )
        for entry, found in rows
    ]
    insurance = sum(e.amount_cents for e in entries if e.account == Account.INSURANCE_RECEIVABLE)
    patient = sum(e.amount_cents for e in entries if e.account == Account.PATIENT_RECEIVABLE)
    scope.audit(
        "claim.ledger_read",
        Action.READ,
        resource_type=LEDGER,
        resource_ids=[claim.id],
        patient_ids=[claim.patient_id],
    )
    return schemas.ClaimLedger(
        claim_id=claim.id,
        entries=entries,
        balance_cents=insurance + patient,
        insurance_balance_cents=insurance,
        patient_balance_cents=patient,
        receivable_accounts=[a.value for a in RECEIVABLES],
    )


def remittance_view(row: Remittance, released: str | None = None) -> schemas.RemittanceView:
    return schemas.RemittanceView(
        id=row.id,
        tenant_id=row.tenant_id,
        received_at=row.created_at,
        x12_file_id=row.x12_file_id,
        set_control_number=row.set_control_number,
        payer_name=row.payer_name,
        payer_identifier=row.payer_identifier,
        trace_number=row.trace_number,
        total_paid_cents=row.total_paid_cents,
        payment_method=row.payment_method,
        paid_on=row.paid_on,
        payee_npi=row.payee_npi,
        state=row.state.value,
        held_reason=row.held_reason,
        claim_count=row.claim_count,
        released=released,
    )


async def staff_remittances(
    scope: StaffScope, *, limit: int, cursor: str | None, state: RemittanceState | None
) -> Page[schemas.RemittanceView]:
    """The 835 payments received in the caller's practices, oldest first (held ones with the reason)."""
    rows = await scope.repo(RemittanceRepository).page(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None, state=state
    )
    scope.audit(
        "remittance.list",
        Action.READ,
        resource_type=REMITTANCE,
        touched=[Touched(r.tenant_id, r.id) for r in rows[:limit]],
        detail={"state": state.value if state else None},
    )
    reviews = await scope.repo(ReleaseRepository).of_remittances([r.id for r in rows[:limit]])

    def shown(row: Remittance) -> schemas.RemittanceView:
        review = reviews.get(row.id)
        return remittance_view(row, review.action.value if review is not None else None)

    return paginate(rows, limit, shown)
