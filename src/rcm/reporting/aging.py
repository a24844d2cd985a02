"""AR aging per practice: open balances by payer (patients' balances as payer ``patient``) in buckets of
age (0-30, 31-60, 61-90, 91-120, 120+ days), aged from the date of service or from the first submission.

Live figures read the per-claim open-AR rollup (``rcm.report_claim_balance``, open claims only, from its
index), never the ledger: balances are those of now, aged at ``as_of``. When ``as_of`` is the last day of a
closed month, the figures are that close's frozen snapshot, computed at the close from the ledger as of
that day. The comparison is the previous month's close, when that month is closed.
"""

from __future__ import annotations

from datetime import date, timedelta

from rcm.reporting.cashflow import month_end
from rcm.reporting.repository import AgingFigure, ReportRepository
from rcm.reporting.schemas import (
    BUCKETS,
    UNSUBMITTED,
    AgingBasis,
    AgingBucket,
    ArAgingReport,
    ArAgingRow,
)
from rcm.tenancy.scope import TenantScope


def _buckets(basis: AgingBasis) -> tuple[str, ...]:
    return (*BUCKETS, UNSUBMITTED) if basis is AgingBasis.SUBMISSION_DATE else BUCKETS


def _by_payer(figures: list[AgingFigure], basis: AgingBasis) -> dict[str, dict[str, AgingBucket]]:
    payers: dict[str, dict[str, AgingBucket]] = {}
    for f in figures:
        cells = payers.setdefault(f.payer_id, {b: AgingBucket(b, 0, 0) for b in _buckets(basis)})
        cell = cells[f.bucket]
        cell.balance_cents += f.balance_cents
        cell.claims += f.claims
    return payers


def _totals(payers: dict[str, dict[str, AgingBucket]], basis: AgingBasis) -> list[AgingBucket]:
    totals = {b: AgingBucket(b, 0, 0) for b in _buckets(basis)}
    for cells in payers.values():
        for name, cell in cells.items():
            totals[name].balance_cents += cell.balance_cents
            totals[name].claims += cell.claims
    return list(totals.values())


async def ar_aging(
    scope: TenantScope, *, as_of: date, basis: AgingBasis = AgingBasis.SERVICE_DATE
) -> ArAgingReport:
    repo = scope.repo(ReportRepository)
    month = as_of.replace(day=1)
    closed = await repo.closed_aging(month=month, basis=basis) if as_of == month_end(month) else None
    current = closed if closed is not None else await repo.open_aging(as_of=as_of, basis=basis)
    previous_month = (month - timedelta(days=1)).replace(day=1)
    previous = await repo.closed_aging(month=previous_month, basis=basis)
    payers = _by_payer(current, basis)
    before = _by_payer(previous, basis) if previous is not None else None
    rows = [
        ArAgingRow(
            payer_id=payer,
            balance_cents=sum(c.balance_cents for c in cells.values()),
            claims=sum(c.claims for c in cells.values()),
            buckets=list(cells.values()),
            previous_balance_cents=(
                sum(c.balance_cents for c in before.get(payer, {}).values()) if before is not None else None
            ),
        )
        for payer, cells in sorted(payers.items())
    ]
    totals = _totals(payers, basis)
    previous_totals = _totals(before, basis) if before is not None else None
    return ArAgingReport(
        as_of=as_of,
        basis=basis,
        source="closed" if closed is not None else "live",
        previous_as_of=month_end(previous_month) if previous is not None else None,
        rows=rows,
        totals=totals,
        balance_cents=sum(t.balance_cents for t in totals),
        previous_totals=previous_totals,
        previous_balance_cents=(
            sum(t.balance_cents for t in previous_totals) if previous_totals is not None else None
        ),
    )
