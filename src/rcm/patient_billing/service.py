"""A patient's balance, read from the ledger; payments and refunds posted to it; payment plans.

The balance is never stored: it is the sum of the patient's claims' ``patient_receivable`` entries (what the
835s moved there as patient responsibility, group PR, less what the patient paid and what was written off).
A visit a payer still owes on (any claim of the encounter with an insurance balance, e.g. a secondary not yet
adjudicated) is not billed to the patient yet: its share counts in the balance but not in what is due.

A payment is applied to the patient's visits oldest first, one ledger posting per claim (patient payments
debited, the patient receivable credited); it may not exceed the balance. A refund names its payment and
may not exceed what is left of it; it reverses that payment's allocations, latest first. Every action locks
the patient's row first, so two of them for one patient are applied one after the other."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from rcm.audit.events import Action
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.ledger.models import Account, Source
from rcm.ledger.posting import Draft
from rcm.ledger.repository import LedgerRepository
from rcm.patient_billing import schemas
from rcm.patient_billing.models import (
    InstallmentState,
    PatientPayment,
    PaymentAllocation,
    PaymentKind,
    PaymentMethod,
    PaymentPlan,
    PaymentPlanState,
    PlanInstallment,
)
from rcm.patient_billing.repository import ClaimMoney, PatientBillingRepository
from rcm.patients.repository import PatientRepository
from rcm.tenancy.manifest import Statements
from rcm.tenancy.scope import TenantScope

BALANCE = "patient_balance"
PAYMENT = "patient_payment"
PLAN = "payment_plan"
MAX_INSTALLMENTS = 60
# Aging buckets: upper bound in days (inclusive) and field of ``schemas.BalanceAging``.
_BUCKETS = ((30, "current"), (60, "days_31_60"), (90, "days_61_90"), (120, "days_91_120"))


def today() -> date:
    return datetime.now(UTC).date()


# Balances --------------------------------------------------------------------------------------------------


def balance_of(
    patient_id: uuid.UUID,
    money: Sequence[ClaimMoney],
    *,
    as_of: date,
    rules: Statements,
    awaiting: frozenset[uuid.UUID] | set[uuid.UUID] = frozenset(),
    plan_id: uuid.UUID | None = None,
) -> schemas.PatientBalance:
    """The balance, its aging and the collections flag, from the patient's claims (no database). A visit
    is awaiting insurance when a payer still owes on one of its claims, or when its encounter is in
    ``awaiting`` (a claim, such as the secondary, that no payer has decided yet)."""
    pending_encounters = set(awaiting) | {m.encounter_id for m in money if m.insurance}
    visits = []
    aging: dict[str, int] = defaultdict(int)
    due = pending = 0
    collections = False
    for m in money:
        if not m.patient and not m.patient_paid and not m.written_off:
            continue
        age = (as_of - m.since.date()).days if m.since is not None else None
        waiting = m.encounter_id in pending_encounters
        visits.append(
            schemas.VisitBalance(
                claim_id=m.claim_id,
                encounter_id=m.encounter_id,
                service_date=m.service_date,
                charges_cents=m.charges,
                insurance_paid_cents=m.insurance_paid,
                adjustments_cents=m.adjustments,
                patient_paid_cents=m.patient_paid,
                written_off_cents=m.written_off,
                balance_cents=m.patient,
                insurance_pending=waiting,
                age_days=age,
            )
        )
        if waiting:
            pending += m.patient
            continue
        due += m.patient
        aging[_bucket(age or 0)] += m.patient
        limit = rules.collections_after_days
        if m.patient > 0 and limit is not None and age is not None and age > limit:
            collections = True
    return schemas.PatientBalance(
        patient_id=patient_id,
        as_of=as_of,
        balance_cents=due + pending,
        due_cents=due,
        pending_insurance_cents=pending,
        aging=schemas.BalanceAging(**aging),
        # A plan in force is the patient paying as agreed: not an account for collections.
        collections=collections and plan_id is None,
        visits=visits,
        payment_plan_id=plan_id,
    )


def _bucket(age: int) -> str:
    for limit, name in _BUCKETS:
        if age <= limit:
            return name
    return "over_120"


async def compute_balance(
    scope: TenantScope, patient_id: uuid.UUID, *, as_of: date | None = None
) -> schemas.PatientBalance:
    repo = scope.repo(PatientBillingRepository)
    plan = next((p for p in await repo.plans(patient_id) if p.state is PaymentPlanState.ACTIVE), None)
    return balance_of(
        patient_id,
        await repo.claim_money(patient_id),
        as_of=as_of or today(),
        rules=scope.manifest.statements,
        awaiting=await repo.encounters_awaiting_payer(patient_id),
        plan_id=plan.id if plan else None,
    )


async def patient_balance(scope: TenantScope, patient_id: uuid.UUID) -> schemas.PatientBalance:
    """The route's read: 404 for a patient not the practice's; audited as a read of the patient."""
    await check_patient(scope, patient_id)
    found = await compute_balance(scope, patient_id)
    scope.audit(
        "patient.balance_read",
        Action.READ,
        resource_type=BALANCE,
        resource_ids=[patient_id],
        patient_ids=[patient_id],
    )
    return found


async def check_patient(scope: TenantScope, patient_id: uuid.UUID, *, lock: bool = False) -> None:
    """404 for a patient not the practice's; ``lock`` holds the patient's row while its money changes."""
    repo = scope.repo(PatientBillingRepository)
    if lock:
        found = await repo.lock_patient(patient_id)
    else:
        found = await scope.repo(PatientRepository).get(patient_id)
    if found is None:
        raise NotFound


# Payments and refunds --------------------------------------------------------------------------------------


def allocate(amount: int, owed: Sequence[tuple[uuid.UUID, int]]) -> list[tuple[uuid.UUID, int]]:
    """``amount`` spread over ``owed`` (claim, cents) in order, each taking at most what it is owed."""
    parts = []
    for claim_id, cents in owed:
        if amount <= 0:
            break
        take = min(amount, cents)
        if take > 0:
            parts.append((claim_id, take))
            amount -= take
    return parts


def refund_parts(
    amount: int,
    applied: Sequence[tuple[uuid.UUID, int]],
    refunded: Sequence[tuple[uuid.UUID, int]],
) -> list[tuple[uuid.UUID, int]]:
    """A refund of ``amount`` taken back from the claims its payment was ``applied`` to, latest first, each
    at most what the payment still has there (less what earlier refunds of it ``refunded``)."""
    standing: dict[uuid.UUID, int] = defaultdict(int)
    order: list[uuid.UUID] = []
    for claim_id, cents in applied:
        standing[claim_id] += cents
        if claim_id not in order:
            order.append(claim_id)
    for claim_id, cents in refunded:
        standing[claim_id] -= cents
    return allocate(amount, [(claim_id, standing[claim_id]) for claim_id in reversed(order)])


def _payment(
    scope: TenantScope,
    patient_id: uuid.UUID,
    kind: PaymentKind,
    amount_cents: int,
    *,
    method: PaymentMethod,
    reference: str | None,
    refund_of: uuid.UUID | None = None,
    plan_id: uuid.UUID | None = None,
) -> PatientPayment:
    return PatientPayment(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        patient_id=patient_id,
        kind=kind,
        amount_cents=amount_cents,
        method=method,
        reference=reference,
        refund_of=refund_of,
        plan_id=plan_id,
        actor=scope.principal.subject,
    )


async def _post(
    scope: TenantScope,
    payment: PatientPayment,
    parts: Sequence[tuple[uuid.UUID, int]],
    *,
    event: str,
    resource_ids: Sequence[uuid.UUID],
) -> list[PaymentAllocation]:
    """The payment (or refund) recorded, posted to the ledger claim by claim (``parts``) and audited."""
    refund = payment.kind is PaymentKind.REFUND
    drafts = []
    for claim_id, cents in parts:
        draft = Draft(Source.PATIENT_REFUND if refund else Source.PATIENT_PAYMENT, claim_id)
        if refund:
            draft.add(Account.PATIENT_RECEIVABLE, Account.PATIENT_PAYMENTS, cents)
        else:
            draft.add(Account.PATIENT_PAYMENTS, Account.PATIENT_RECEIVABLE, cents)
        drafts.append(draft)
    await scope.repo(PatientBillingRepository).insert(payment)
    postings = await scope.repo(LedgerRepository).post(drafts, actor=scope.principal.subject)
    allocations = [
        PaymentAllocation(
            id=uuid.uuid4(),
            payment_id=payment.id,
            claim_id=claim_id,
            posting_id=posting_id,
            amount_cents=cents,
        )
        for (claim_id, cents), posting_id in zip(parts, postings, strict=True)
    ]
    await scope.repo(PatientBillingRepository).insert(*allocations)
    scope.audit(
        event,
        Action.CREATE,
        resource_type=PAYMENT,
        resource_ids=list(resource_ids),
        patient_ids=[payment.patient_id],
        detail={"kind": payment.kind.value, "amount_cents": payment.amount_cents},
    )
    return allocations


def payment_view(
    row: PatientPayment, allocations: Sequence[PaymentAllocation], balance: int
) -> schemas.PatientPaymentView:
    return schemas.PatientPaymentView(
        id=row.id,
        patient_id=row.patient_id,
        kind=row.kind,
        amount_cents=row.amount_cents,
        method=row.method,
        reference=row.reference,
        refund_of=row.refund_of,
        plan_id=row.plan_id,
        created_at=row.created_at,
        allocations=[
            schemas.PaymentAllocationView(
                claim_id=a.claim_id, amount_cents=a.amount_cents, posting_id=a.posting_id
            )
            for a in allocations
        ],
        balance_cents=balance,
    )


async def post_payment(
    scope: TenantScope, patient_id: uuid.UUID, data: schemas.PatientPaymentCreate
) -> tuple[int, schemas.PatientPaymentView]:
    await check_patient(scope, patient_id, lock=True)
    repo = scope.repo(PatientBillingRepository)
    money = await repo.claim_money(patient_id)
    owed = [(m.claim_id, m.patient) for m in money if m.patient > 0]
    total = sum(cents for _, cents in owed)
    if data.amount_cents > total:
        raise InvalidInput(
            "The payment is more than the patient owes.",
            errors=[FieldError("/amount_cents", f"exceeds the patient's balance ({total} cents)")],
        )
    plan = await repo.active_plan(patient_id)
    row = _payment(
        scope,
        patient_id,
        PaymentKind.PAYMENT,
        data.amount_cents,
        method=data.method,
        reference=data.reference,
        plan_id=plan.id if plan else None,
    )
    allocations = await _post(
        scope, row, allocate(data.amount_cents, owed), event="patient_payment.create", resource_ids=[row.id]
    )
    if plan is not None:
        await _pay_installments(repo, plan, data.amount_cents)
    return 201, payment_view(row, allocations, total - data.amount_cents)


async def post_refund(
    scope: TenantScope, patient_id: uuid.UUID, data: schemas.PatientRefundCreate
) -> tuple[int, schemas.PatientPaymentView]:
    await check_patient(scope, patient_id, lock=True)
    repo = scope.repo(PatientBillingRepository)
    paid = await repo.get(data.payment_id)
    if paid is None or paid.patient_id != patient_id or paid.kind is not PaymentKind.PAYMENT:
        raise InvalidInput(
            "The refund names no payment of this patient.",
            errors=[FieldError("/payment_id", "is not a payment of this patient")],
        )
    refunds = await repo.refunds_of(paid.id)
    left = paid.amount_cents - sum(r.amount_cents for r in refunds)
    if data.amount_cents > left:
        raise InvalidInput(
            "A refund may not exceed what was paid.",
            errors=[FieldError("/amount_cents", f"exceeds what is left of the payment ({left} cents)")],
        )
    parts = refund_parts(
        data.amount_cents,
        [(a.claim_id, a.amount_cents) for a in await repo.allocations([paid.id])],
        [(a.claim_id, a.amount_cents) for a in await repo.allocations([r.id for r in refunds])],
    )
    row = _payment(
        scope,
        patient_id,
        PaymentKind.REFUND,
        data.amount_cents,
        method=paid.method,
        reference=data.reference,
        refund_of=paid.id,
    )
    allocations = await _post(
        scope, row, parts, event="patient_payment.refund", resource_ids=[row.id, paid.id]
    )
    balance = sum(m.patient for m in await repo.claim_money(patient_id))
    return 201, payment_view(row, allocations, balance)


async def list_payments(scope: TenantScope, patient_id: uuid.UUID) -> list[schemas.PatientPaymentView]:
    await check_patient(scope, patient_id)
    repo = scope.repo(PatientBillingRepository)
    rows = await repo.payments(patient_id)
    by_payment: dict[uuid.UUID, list[PaymentAllocation]] = defaultdict(list)
    for allocation in await repo.allocations([r.id for r in rows]):
        by_payment[allocation.payment_id].append(allocation)
    balance = sum(m.patient for m in await repo.claim_money(patient_id))
    scope.audit(
        "patient_payment.list",
        Action.READ,
        resource_type=PAYMENT,
        resource_ids=[r.id for r in rows],
        patient_ids=[patient_id],
    )
    return [payment_view(r, by_payment[r.id], balance) for r in rows]


# Payment plans ---------------------------------------------------------------------------------------------


def schedule(total: int, installment: int, first: date, interval_days: int) -> list[tuple[date, int]]:
    """The installments (due date, cents) paying ``total``: equal amounts, the last one the remainder."""
    count = math.ceil(total / installment)
    return [
        (first + timedelta(days=interval_days * n), min(installment, total - installment * n))
        for n in range(count)
    ]


def plan_view(row: PaymentPlan, installments: Sequence[PlanInstallment]) -> schemas.PaymentPlanView:
    return schemas.PaymentPlanView(
        id=row.id,
        patient_id=row.patient_id,
        total_cents=row.total_cents,
        installment_cents=row.installment_cents,
        interval_days=row.interval_days,
        first_due_on=row.first_due_on,
        state=row.state,
        missed_count=row.missed_count,
        created_at=row.created_at,
        installments=[
            schemas.PlanInstallmentView(
                number=i.number,
                due_on=i.due_on,
                amount_cents=i.amount_cents,
                paid_cents=i.paid_cents,
                state=i.state,
            )
            for i in installments
        ],
    )


async def create_plan(
    scope: TenantScope, patient_id: uuid.UUID, data: schemas.PaymentPlanCreate
) -> tuple[int, schemas.PaymentPlanView]:
    await check_patient(scope, patient_id, lock=True)
    repo = scope.repo(PatientBillingRepository)
    if await repo.active_plan(patient_id) is not None:
        raise Conflict(
            "The patient has a payment plan in force.",
            errors=[FieldError("", "the patient has an active payment plan")],
        )
    balance = await compute_balance(scope, patient_id)
    total = data.total_cents or balance.due_cents
    errors = []
    if total <= 0:
        errors.append(FieldError("/total_cents", "the patient has no balance due"))
    elif total > balance.balance_cents:
        errors.append(
            FieldError("/total_cents", f"exceeds the patient's balance ({balance.balance_cents} cents)")
        )
    elif data.installment_cents > total:
        errors.append(FieldError("/installment_cents", "is more than the plan's total"))
    elif math.ceil(total / data.installment_cents) > MAX_INSTALLMENTS:
        errors.append(FieldError("/installment_cents", f"makes more than {MAX_INSTALLMENTS} installments"))
    if data.first_due_on < today():
        errors.append(FieldError("/first_due_on", "is in the past"))
    elif data.first_due_on > today() + timedelta(days=366):
        errors.append(FieldError("/first_due_on", "is more than a year away"))
    if errors:
        raise InvalidInput("The payment plan has invalid fields.", errors=errors)
    plan = PaymentPlan(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        patient_id=patient_id,
        total_cents=total,
        installment_cents=data.installment_cents,
        interval_days=data.interval_days,
        first_due_on=data.first_due_on,
        state=PaymentPlanState.ACTIVE,
        missed_count=0,
        actor=scope.principal.subject,
    )
    installments = [
        PlanInstallment(
            id=uuid.uuid4(),
            plan_id=plan.id,
            number=n,
            due_on=due,
            amount_cents=cents,
            paid_cents=0,
            state=InstallmentState.DUE,
        )
        for n, (due, cents) in enumerate(
            schedule(total, data.installment_cents, data.first_due_on, data.interval_days), start=1
        )
    ]
    await repo.insert(plan, *installments)
    scope.audit(
        "payment_plan.create",
        Action.CREATE,
        resource_type=PLAN,
        resource_ids=[plan.id],
        patient_ids=[patient_id],
    )
    return 201, plan_view(plan, installments)


async def list_plans(scope: TenantScope, patient_id: uuid.UUID) -> list[schemas.PaymentPlanView]:
    await check_patient(scope, patient_id)
    repo = scope.repo(PatientBillingRepository)
    plans = await repo.plans(patient_id)
    by_plan: dict[uuid.UUID, list[PlanInstallment]] = defaultdict(list)
    for installment in await repo.installments([p.id for p in plans]):
        by_plan[installment.plan_id].append(installment)
    scope.audit(
        "payment_plan.list",
        Action.READ,
        resource_type=PLAN,
        resource_ids=[p.id for p in plans],
        patient_ids=[patient_id],
    )
    return [plan_view(p, by_plan[p.id]) for p in plans]


async def cancel_plan(
    scope: TenantScope, patient_id: uuid.UUID, plan_id: uuid.UUID
) -> schemas.PaymentPlanView:
    """An active plan cancelled (the balance stays as it is); a plan of another patient is a 404, one not
    active a 409."""
    await check_patient(scope, patient_id, lock=True)
    repo = scope.repo(PatientBillingRepository)
    plan = await repo.plan(plan_id, lock=True)
    if plan is None or plan.patient_id != patient_id:
        raise NotFound
    if plan.state is not PaymentPlanState.ACTIVE:
        raise Conflict(
            "Only an active payment plan can be cancelled.",
            errors=[FieldError("", f"the plan is {plan.state.value}")],
        )
    await repo.set_plan(plan, state=PaymentPlanState.CANCELLED)
    scope.audit(
        "payment_plan.cancel",
        Action.UPDATE,
        resource_type=PLAN,
        resource_ids=[plan.id],
        patient_ids=[patient_id],
    )
    return plan_view(plan, await repo.installments([plan.id]))


async def _pay_installments(repo: PatientBillingRepository, plan: PaymentPlan, amount: int) -> None:
    """A payment goes to the plan's unpaid installments in order (a missed one paid late becomes paid; it
    still counts as missed); every installment paid completes the plan."""
    installments = await repo.installments([plan.id])
    for installment in installments:
        if amount <= 0:
            break
        if installment.state is InstallmentState.PAID:
            continue
        take = min(amount, installment.amount_cents - installment.paid_cents)
        amount -= take
        paid = installment.paid_cents + take
        state = InstallmentState.PAID if paid == installment.amount_cents else installment.state
        await repo.set_installment(installment, paid_cents=paid, state=state)
    if all(i.state is InstallmentState.PAID for i in installments):
        await repo.set_plan(plan, state=PaymentPlanState.COMPLETED)


def review_date(as_of: date | None) -> date:
    """The day a review counts from: today by default, never a day to come (installments would be missed
    before their time)."""
    if as_of is None:
        return today()
    if as_of > today() + timedelta(days=1):
        raise InvalidInput(
            "The review date is in the future.", errors=[FieldError("/as_of", "is in the future")]
        )
    return as_of


async def review_plans(scope: TenantScope, *, as_of: date) -> tuple[int, int]:
    """Installments unpaid past their due date and the practice's grace days are marked missed; a plan
    reaching the practice's number of misses is defaulted. Returns (installments missed, plans defaulted)."""
    rules = scope.manifest.statements
    cutoff = as_of - timedelta(days=rules.installment_grace_days)
    repo = scope.repo(PatientBillingRepository)
    missed = defaulted = 0
    for plan in await repo.plans_overdue(cutoff):
        count = plan.missed_count
        for installment in await repo.installments([plan.id]):
            if installment.state is InstallmentState.DUE and installment.due_on < cutoff:
                await repo.set_installment(installment, state=InstallmentState.MISSED)
                count += 1
                missed += 1
        state = PaymentPlanState.DEFAULTED if count >= rules.missed_installments_to_default else plan.state
        await repo.set_plan(plan, missed_count=count, state=state)
        if state is PaymentPlanState.DEFAULTED:
            defaulted += 1
        scope.audit(
            "payment_plan.review",
            Action.UPDATE,
            resource_type=PLAN,
            resource_ids=[plan.id],
            patient_ids=[plan.patient_id],
            detail={"missed_count": count, "state": state.value},
        )
    return missed, defaulted
