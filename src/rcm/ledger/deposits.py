"""Deposits a practice reports and the EFT reassociation report: which bank deposit carried which 835 payment.

A deposit is what the practice's bank shows: the date, the amount in cents and, for an EFT, the trace number
the payer put in the CCD+ addenda (the 835's TRN02). The report takes the 835 payments paid in a window
(BPR16) and the deposits made in it, and pairs them one to one: first by trace number (compared without case
or surrounding blanks), then what is left by amount with the deposit made within three days of the payment
date (the closest first). What stays unpaired is listed on either side: a payment the bank never showed, a
deposit no 835 explains. No PHI: payer, trace numbers, dates and cents.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from rcm.audit.events import Action
from rcm.kit.errors import FieldError, InvalidInput
from rcm.ledger import schemas
from rcm.ledger.deposit_repository import DepositRepository
from rcm.ledger.models import Deposit, Remittance
from rcm.tenancy.scope import TenantScope

DEPOSIT = "deposit"
WINDOW_DAYS = 3
DEFAULT_SPAN_DAYS = 31


def _trace(value: str | None) -> str | None:
    return value.strip().upper() or None if value else None


def deposit_view(row: Deposit) -> schemas.DepositView:
    return schemas.DepositView(
        id=row.id,
        deposited_on=row.deposited_on,
        amount_cents=row.amount_cents,
        trace_number=row.trace_number,
        recorded_at=row.created_at,
    )


async def record(scope: TenantScope, data: schemas.DepositCreate) -> tuple[int, schemas.DepositView]:
    """The deposit kept (append-only) and audited."""
    row = Deposit(
        id=uuid.uuid4(),
        tenant_id=scope.tenant_id,
        deposited_on=data.deposited_on,
        amount_cents=data.amount_cents,
        trace_number=data.trace_number.strip() if data.trace_number else None,
        actor=scope.principal.subject,
    )
    scope.session.add(row)
    await scope.session.flush()
    scope.audit("deposit.create", Action.CREATE, resource_type=DEPOSIT, resource_ids=[row.id])
    return 201, deposit_view(row)


def _payment(row: Remittance) -> schemas.ReassociatedPayment:
    return schemas.ReassociatedPayment(
        remittance_id=row.id,
        trace_number=row.trace_number,
        payer_name=row.payer_name,
        amount_cents=row.total_paid_cents,
        paid_on=row.paid_on,
        state=row.state.value,
    )


def pair(
    payments: Sequence[Remittance], deposits: Sequence[Deposit]
) -> tuple[list[tuple[Remittance, Deposit, str]], list[Remittance], list[Deposit]]:
    """One to one: by trace number, then by amount within ``WINDOW_DAYS`` (closest date first). Returns the
    pairs with how each matched, the payments left and the deposits left."""
    free = {d.id: d for d in deposits}
    pairs: list[tuple[Remittance, Deposit, str]] = []
    left: list[Remittance] = []
    by_trace: dict[str, uuid.UUID] = {}
    for deposit in deposits:
        trace = _trace(deposit.trace_number)
        if trace is not None:
            by_trace.setdefault(trace, deposit.id)
    for payment in payments:
        found = by_trace.get(_trace(payment.trace_number) or "")
        if found is not None and found in free:
            pairs.append((payment, free.pop(found), "trace_number"))
        else:
            left.append(payment)
    unpaired = []
    for payment in left:
        near = [
            d
            for d in free.values()
            if d.amount_cents == payment.total_paid_cents
            and abs((d.deposited_on - payment.paid_on).days) <= WINDOW_DAYS
        ]
        if not near:
            unpaired.append(payment)
            continue
        best = min(near, key=lambda d: (abs((d.deposited_on - payment.paid_on).days), d.created_at, d.id))
        pairs.append((payment, free.pop(best.id), "amount_and_date"))
    return pairs, unpaired, list(free.values())


async def reassociation(
    scope: TenantScope, *, since: date | None, until: date | None
) -> schemas.EftReassociation:
    """The report for payments paid and deposits made from ``since`` to ``until`` (both included; the last
    31 days by default). A deposit a few days outside the window may still pair with a payment inside it."""
    until = until or date.today()
    since = since or until - timedelta(days=DEFAULT_SPAN_DAYS - 1)
    if since > until:
        raise InvalidInput("since is after until.", errors=[FieldError("query:since", "is after until")])
    repo = scope.repo(DepositRepository)
    payments = await repo.payments_between(since, until)
    margin = timedelta(days=WINDOW_DAYS)
    deposits = await repo.deposits_between(since - margin, until + margin)
    pairs, unpaid, unexplained = pair(payments, deposits)
    unexplained = [d for d in unexplained if since <= d.deposited_on <= until]
    matched = [
        schemas.Reassociated(payment=_payment(p), deposit=deposit_view(d), matched_by=how)
        for p, d, how in pairs
    ]
    in_window = [d for d in deposits if since <= d.deposited_on <= until]
    report = schemas.EftReassociation(
        since=since,
        until=until,
        matched=matched,
        payments_without_deposit=[_payment(p) for p in unpaid],
        deposits_without_payment=[deposit_view(d) for d in unexplained],
        totals=schemas.ReassociationTotals(
            payments=len(payments),
            payments_cents=sum(p.total_paid_cents for p in payments),
            deposits=len(in_window),
            deposits_cents=sum(d.amount_cents for d in in_window),
            matched=len(pairs),
            matched_cents=sum(p.total_paid_cents for p, _, _ in pairs),
            payments_without_deposit_cents=sum(p.total_paid_cents for p in unpaid),
            deposits_without_payment_cents=sum(d.amount_cents for d in unexplained),
        ),
    )
    scope.audit(
        "report.eft_reassociation",
        Action.READ,
        resource_type=DEPOSIT,
        resource_ids=[d.id for d in deposits],
        detail={"since": since.isoformat(), "until": until.isoformat(), "payments": len(payments)},
    )
    return report
