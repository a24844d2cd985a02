"""What the patient billing routes take and answer (cents, ids and dates; a statement's files are fetched
by their own route)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.patient_billing.models import (
    InstallmentState,
    PaymentKind,
    PaymentMethod,
    PaymentPlanState,
    StatementOutcome,
    StatementRunStatus,
)

Cents = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9 ._#/-]+$")]


class BalanceAging(msgspec.Struct, frozen=True, kw_only=True):
    """The patient's balance by the age of each claim's patient share (days since it was posted)."""

    current: int = 0  # 0 to 30 days
    days_31_60: int = 0
    days_61_90: int = 0
    days_91_120: int = 0
    over_120: int = 0


class VisitBalance(msgspec.Struct, frozen=True, kw_only=True):
    claim_id: uuid.UUID
    encounter_id: uuid.UUID
    service_date: date
    charges_cents: int
    insurance_paid_cents: int
    adjustments_cents: int
    patient_paid_cents: int
    written_off_cents: int
    balance_cents: int  # what the patient owes on this visit: the claim's patient_receivable entries
    insurance_pending: bool  # a payer still owes on this visit: its share is not billed to the patient yet
    age_days: int | None


class PatientBalance(msgspec.Struct, frozen=True, kw_only=True):
    """``balance_cents`` is always the sum of ``visits[].balance_cents`` (the ledger's patient receivable);
    ``due_cents`` leaves out visits a payer still owes on."""

    patient_id: uuid.UUID
    as_of: date
    balance_cents: int
    due_cents: int
    pending_insurance_cents: int
    aging: BalanceAging
    collections: bool  # some of it is older than the practice's collections_after_days
    visits: list[VisitBalance]
    payment_plan_id: uuid.UUID | None = None


class PatientPaymentCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount_cents: Cents
    method: PaymentMethod
    reference: Reference | None = None


class PatientRefundCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    payment_id: uuid.UUID
    amount_cents: Cents
    reference: Reference | None = None


class PaymentAllocationView(msgspec.Struct, frozen=True, kw_only=True):
    claim_id: uuid.UUID
    amount_cents: int
    posting_id: uuid.UUID


class PatientPaymentView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    patient_id: uuid.UUID
    kind: PaymentKind
    amount_cents: int
    method: PaymentMethod
    reference: str | None
    refund_of: uuid.UUID | None
    plan_id: uuid.UUID | None
    created_at: datetime
    allocations: list[PaymentAllocationView]
    balance_cents: int  # the patient's balance after it


class PaymentPlanCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    installment_cents: Cents
    first_due_on: date
    interval_days: Annotated[int, msgspec.Meta(ge=7, le=92)] = 30
    total_cents: Cents | None = None  # default: the patient's balance due


class PlanInstallmentView(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    due_on: date
    amount_cents: int
    paid_cents: int
    state: InstallmentState


class PaymentPlanView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    patient_id: uuid.UUID
    total_cents: int
    installment_cents: int
    interval_days: int
    first_due_on: date
    state: PaymentPlanState
    missed_count: int
    created_at: datetime
    installments: list[PlanInstallmentView]


class PaymentPlanReview(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    as_of: date | None = None  # default: today (UTC); never a day to come


class PaymentPlanReviewResult(msgspec.Struct, frozen=True, kw_only=True):
    installments_missed: int
    plans_defaulted: int


class StatementRunCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Default: today (UTC); at most one cycle back. The run is the one of the cycle holding this date.
    as_of: date | None = None


class StatementRunView(msgspec.Struct, frozen=True, kw_only=True):
    """A statement run and its progress: ``patients_done`` of ``patients_total`` patients with a balance."""

    id: uuid.UUID
    cycle_start: date
    as_of: date
    status: StatementRunStatus
    patients_total: int
    patients_done: int
    statements: int
    written_off: int
    written_off_cents: int
    collections: int
    plans_defaulted: int
    created_at: datetime
    updated_at: datetime
    failure: str | None = None


class PatientStatement(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    run_id: uuid.UUID
    patient_id: uuid.UUID
    outcome: StatementOutcome
    balance_cents: int
    amount_due_cents: int
    collections: bool
    created_at: datetime
    files: list[str]  # the formats downloadable: pdf, json, csv
