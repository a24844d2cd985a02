"""The claims behind an AR-aging cell: claims with an open balance now, from the reports' per-claim rollup,
optionally of one payer (``patient``: the patients' balances) and one age bucket at ``as_of`` (by date of
service or first submission; ``91+`` is AR over 90 days). Balances are today's, aged at ``as_of``, as the
live AR aging computes them. Each row names its claim by number, date of service, payer, ledger amounts and
status only (no patient); reading a page is audited, the claims named.

The other figures drill down through their own reports' routes: a cash-flow cell into its ledger entries
(``GET .../reports/cash-flow/entries``), a KPI into the claims it counts
(``GET .../reports/kpis/{key}/claims``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from rcm.audit.events import Action
from rcm.dashboard.repository import DrillRepository, OpenFilter
from rcm.dashboard.schemas import ClaimPage, ClaimRow
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.pagination import decode_cursor, encode_cursor
from rcm.reporting.schemas import BUCKETS, PATIENT_PAYER, UNSUBMITTED, AgingBasis
from rcm.tenancy.scope import TenantScope

OVER_90 = "91+"  # AR over 90 days: the 91-120 and 120+ buckets together
# Each bucket's ages in days (both ends included; None: unbounded), as rcm.report_bucket draws them.
_AGES: dict[str, tuple[int | None, int | None]] = {
    "0-30": (None, 30),
    "31-60": (31, 60),
    "61-90": (61, 90),
    "91-120": (91, 120),
    "120+": (121, None),
    OVER_90: (91, None),
}
BUCKET_NAMES = (*BUCKETS, UNSUBMITTED, OVER_90)


def basis_range(as_of: date, bucket: str) -> tuple[date | None, date | None]:
    """The basis dates (first, last; None: unbounded) whose age at ``as_of`` falls in ``bucket``."""
    youngest, oldest = _AGES[bucket]
    return _days_before(as_of, oldest), _days_before(as_of, youngest)


def _days_before(day: date, days: int | None) -> date | None:
    """``days`` before ``day`` (None: no limit), the calendar's first day when that falls before it (an
    ``as_of`` in year 1; no claim is that old)."""
    if days is None:
        return None
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


def _refuse(pointer: str, detail: str) -> InvalidInput:
    return InvalidInput(
        "The drill-down's parameters do not fit together.", errors=[FieldError(pointer, detail)]
    )


async def open_claims(
    scope: TenantScope,
    *,
    as_of: date | None = None,
    basis: AgingBasis = AgingBasis.SERVICE_DATE,
    bucket: str | None = None,
    payer: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ClaimPage:
    """One page of the open claims of an AR-aging cell (or row, or column, or all of them)."""
    if bucket is not None and bucket not in BUCKET_NAMES:
        raise _refuse("query:bucket", f"is not one of {', '.join(BUCKET_NAMES)}")
    if bucket == UNSUBMITTED and basis is not AgingBasis.SUBMISSION_DATE:
        raise _refuse("query:bucket", "unsubmitted exists on the submission basis only")
    after: tuple[datetime, uuid.UUID] | None = decode_cursor(cursor) if cursor else None
    repo = scope.repo(DrillRepository)
    day = as_of or datetime.now(UTC).date()
    cell = OpenFilter(
        as_of=day,
        basis=basis.value,
        bucket_range=basis_range(day, bucket) if bucket is not None and bucket != UNSUBMITTED else None,
        unsubmitted=bucket == UNSUBMITTED,
        payer=payer,
        patient_payer=PATIENT_PAYER,
    )
    rows = await repo.open_claims(cell, after=after, limit=limit + 1)
    shown = rows[:limit]
    amounts = await repo.amounts([r.id for r in shown])
    items = []
    for r in shown:
        sums = amounts.get(r.id)
        # What the claim adds to the cell: its patients' share, its payer's, or both.
        if payer == PATIENT_PAYER:
            figure = int(r.patient_cents)
        elif payer is not None:
            figure = int(r.insurance_cents)
        else:
            figure = int(r.insurance_cents) + int(r.patient_cents)
        items.append(
            ClaimRow(
                claim_id=r.id,
                claim_number=r.patient_control_number,
                service_date=r.service_date,
                payer_id=r.payer_id,
                status=r.state.value,
                charge_cents=sums.charge_cents if sums else 0,
                paid_cents=sums.paid_cents if sums else 0,
                adjusted_cents=sums.adjusted_cents if sums else 0,
                balance_cents=sums.balance_cents if sums else 0,
                figure_cents=figure,
            )
        )
    scope.audit(
        "report.drilled",
        Action.READ,
        resource_type="claim",
        resource_ids=[i.claim_id for i in items],
        detail={"report": "ar-aging", "claims": len(items)},
    )
    more = len(rows) > limit and shown
    return ClaimPage(
        items=items, next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None
    )
