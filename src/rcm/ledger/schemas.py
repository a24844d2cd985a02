"""What the ledger routes answer: a claim's entries and its balance (cents)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    posting_id: uuid.UUID
    posted_at: datetime
    source: str  # claim_built, claim_voided, claim_replaced, remittance_claim, provider_adjustment
    remittance_id: uuid.UUID | None
    account: str
    amount_cents: int  # signed: positive is a debit
    line_number: int | None
    adjustment_group: str | None  # CAS01: CO, OA, PI, PR
    reason_code: str | None  # CARC (or CLP02 on the payment entry)
    remark_codes: list[str]  # RARC
    segment: str | None  # CLM, CLP, SVC, CAS, AMT, PLB
    segment_position: int | None  # the CLP's ordinal in its transaction set; the line for a charge
    segment_index: int | None = None  # the segment's own position within its transaction set (ST is 1)


class ClaimLedger(msgspec.Struct, frozen=True, kw_only=True):
    """``balance_cents`` is always the sum of the entries on ``receivable_accounts``."""

    claim_id: uuid.UUID
    entries: list[Entry]
    balance_cents: int
    insurance_balance_cents: int
    patient_balance_cents: int
    receivable_accounts: list[str]


class RemittanceSet(msgspec.Struct, frozen=True, kw_only=True):
    """A transaction set of an uploaded 835, by its ST02 and TRN02 (no claim or patient data)."""

    set: str
    trace_number: str
    reason: str | None = None  # why it is held, or not assigned to a practice
    amount_cents: int | None = None  # BPR02, for a set not assigned
    payee_npi: str | None = None  # N1*PE XX, for a set not assigned
    queued_id: uuid.UUID | None = None  # a set not assigned: its place in the unassigned-ERA queue


class RemittanceImport(msgspec.Struct, kw_only=True):
    """What posting an 835 file did: sets posted, held (with the reason), refused as duplicates and not
    assigned to any practice (the payee matches none, or several); claims matched and not; cents posted to
    claims, posted as unapplied (no claim of the practice matched) and taken by provider adjustments (PLB)."""

    transaction_sets: int = 0
    posted: int = 0
    held: list[RemittanceSet] = msgspec.field(default_factory=list)
    duplicates: list[RemittanceSet] = msgspec.field(default_factory=list)
    unassigned: list[RemittanceSet] = msgspec.field(default_factory=list)
    claims_matched: int = 0
    claims_unmatched: int = 0
    # Why each unmatched CLP found no claim (by CLP01, CLP07, then patient + date of service + CLP03)
    unmatched_reasons: list[str] = msgspec.field(default_factory=list)
    posted_cents: int = 0
    unapplied_cents: int = 0
    provider_adjustments_cents: int = 0
    practices: dict[str, int] = msgspec.field(default_factory=dict)  # slug -> sets applied there


class RemittanceView(msgspec.Struct, frozen=True, kw_only=True):
    """One 835 payment as received: posted, or held with the reason (no claim or patient data)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    received_at: datetime
    x12_file_id: uuid.UUID | None
    set_control_number: str
    payer_name: str
    payer_identifier: str | None
    trace_number: str
    total_paid_cents: int
    payment_method: str
    paid_on: date
    payee_npi: str | None
    state: str
    held_reason: str | None
    claim_count: int
    # A held payment's review (``POST /billing/remittances/{id}/release``): posted, discarded, or None
    released: str | None = None


class UnassignedView(msgspec.Struct, frozen=True, kw_only=True):
    """A payment in the unassigned-ERA queue (no claim or patient data)."""

    id: uuid.UUID
    received_at: datetime
    set_control_number: str  # ST02
    trace_number: str  # TRN02
    payer_name: str
    total_paid_cents: int  # BPR02
    payee_npi: str | None
    payee_tin_last4: str | None
    reason: str
    routed_tenant_id: uuid.UUID | None
    routed_at: datetime | None


class RouteUnassigned(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The practice (slug) a queued payment belongs to."""

    tenant: str


class RoutedUnassigned(msgspec.Struct, kw_only=True):
    """A queued payment routed by hand: the queue row and what posting it did in the practice."""

    queued: UnassignedView
    tenant: str
    result: RemittanceImport


class DepositCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bank deposit: its date, amount and (for an EFT) the trace number the payer sent (the 835's TRN02)."""

    deposited_on: date
    amount_cents: Annotated[int, msgspec.Meta(gt=0, le=10**12)]
    trace_number: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^ *[!-~][ -~]*$")] | None
    ) = None


class DepositView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    deposited_on: date
    amount_cents: int
    trace_number: str | None
    recorded_at: datetime


class ReassociatedPayment(msgspec.Struct, frozen=True, kw_only=True):
    """An 835 payment: TRN02, payer, BPR02 and BPR16."""

    remittance_id: uuid.UUID
    trace_number: str
    payer_name: str
    amount_cents: int
    paid_on: date
    state: str  # posted, held


class Reassociated(msgspec.Struct, frozen=True, kw_only=True):
    payment: ReassociatedPayment
    deposit: DepositView
    matched_by: str  # trace_number, amount_and_date


class ReassociationTotals(msgspec.Struct, frozen=True, kw_only=True):
    payments: int
    payments_cents: int
    deposits: int
    deposits_cents: int
    matched: int
    matched_cents: int
    payments_without_deposit_cents: int
    deposits_without_payment_cents: int


class EftReassociation(msgspec.Struct, frozen=True, kw_only=True):
    """835 payments paid and deposits made in the window, paired; what is left on either side; totals."""

    since: date
    until: date
    matched: list[Reassociated]
    payments_without_deposit: list[ReassociatedPayment]
    deposits_without_payment: list[DepositView]
    totals: ReassociationTotals


class ReleaseCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reviewer's decision on a held payment: ``post`` it whole (the balance check is run again; a set
    that still does not balance is posted only with ``accept_imbalance``, BPR02's difference going to
    unapplied), ``discard`` it, or ``route`` it: the payment is another practice's (the payer's payee routing
    was wrong), sent to ``tenant`` (the slug of a practice of yours) or, with ``unassigned``, to the
    unassigned-ERA queue, and posted or held there as an incoming payment would be. The reason is kept."""

    action: Annotated[str, msgspec.Meta(pattern=r"^(post|discard|route)$")]
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    accept_imbalance: bool = False
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = (
        None  # route: to this practice
    )
    unassigned: bool = False  # route: to the unassigned-ERA queue


class ReleaseView(msgspec.Struct, kw_only=True):
    """A held payment's review: posted, discarded or routed, why, by whom; what posting it did (no PHI)."""

    remittance_id: uuid.UUID
    action: str  # posted, discarded, routed
    reason: str
    imbalance_cents: int  # BPR02 minus what its claims and PLB explain, posted to unapplied
    decided_by: str
    decided_at: datetime
    claims_matched: int = 0
    claims_unmatched: int = 0
    posted_cents: int = 0
    unapplied_cents: int = 0
    unmatched_reasons: list[str] = msgspec.field(default_factory=list)
    # routed: the practice (slug) it was sent to, or None for the unassigned-ERA queue
    routed_to: str | None = None
    # routed, on the first answer: what applying it there did (posted, held, or refused as a duplicate)
    routed_result: RemittanceImport | None = None
    queued_id: uuid.UUID | None = None  # routed to the unassigned-ERA queue: its place there
