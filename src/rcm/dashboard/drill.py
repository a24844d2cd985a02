"""The claims behind a figure: an AR-aging cell, a KPI's numerator or denominator.

Each list names claims by number, date of service, payer, amounts and status only (no patient), paged on the
claim's creation order. The sets are those the reports count:

- ``open``: claims with an open balance now, from the reports' per-claim rollup, optionally of one payer
  (``patient``: the patients' balances) and one age bucket at ``as_of`` (by date of service or first
  submission); ``91+`` is AR over 90 days. Balances are today's, aged at ``as_of``, as the live AR aging
  computes them.
- ``adjudicated``: claims whose first 835 adjudication falls in the period (the denial and first-pass rates'
  denominator), narrowed by ``outcome`` to the denied, the paid or the paid first time.
- ``submitted``: claims first submitted in the period and answered since (the clean claim rate's
  denominator); ``outcome=clean`` is its numerator.

Cash-flow cells drill into their ledger entries through the reports' own route
(``GET .../reports/cash-flow/entries``). Reading a list is audited, the claims named.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from rcm.audit.events import Action
from rcm.dashboard.repository import DrillRepository, EventFilter, OpenFilter
from rcm.dashboard.schemas import ClaimOutcome, ClaimPage, ClaimRow, ClaimSet
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.pagination import decode_cursor, encode_cursor
from rcm.reporting import kpis
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
_OUTCOMES = {
    ClaimSet.OPEN: frozenset[ClaimOutcome](),
    ClaimSet.ADJUDICATED: frozenset({ClaimOutcome.DENIED, ClaimOutcome.PAID, ClaimOutcome.FIRST_PASS}),
    ClaimSet.SUBMITTED: frozenset({ClaimOutcome.CLEAN}),
}


def basis_range(as_of: date, bucket: str) -> tuple[date | None, date | None]:
    """The basis dates (first, last; None: unbounded) whose age at ``as_of`` falls in ``bucket``."""
    youngest, oldest = _AGES[bucket]
    return (
        as_of - timedelta(days=oldest) if oldest is not None else None,
        as_of - timedelta(days=youngest) if youngest is not None else None,
    )


def _refuse(pointer: str, detail: str) -> InvalidInput:
    return InvalidInput(
        "The drill-down's parameters do not fit together.", errors=[FieldError(pointer, detail)]
    )


async def claims(
    scope: TenantScope,
    *,
    claim_set: ClaimSet,
    as_of: date | None = None,
    basis: AgingBasis = AgingBasis.SERVICE_DATE,
    bucket: str | None = None,
    payer: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
    outcome: ClaimOutcome | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ClaimPage:
    """One page of the claims of ``claim_set`` (see the module's docstring); 422 for parameters that do not
    belong to the set."""
    if outcome is not None and outcome not in _OUTCOMES[claim_set]:
        raise _refuse("query:outcome", f"is not an outcome of the {claim_set.value} claims")
    if bucket is not None and bucket not in BUCKET_NAMES:
        raise _refuse("query:bucket", f"is not one of {', '.join(BUCKET_NAMES)}")
    if bucket is not None and claim_set is not ClaimSet.OPEN:
        raise _refuse("query:bucket", "applies to open claims only")
    if bucket == UNSUBMITTED and basis is not AgingBasis.SUBMISSION_DATE:
        raise _refuse("query:bucket", "unsubmitted exists on the submission basis only")
    after: tuple[datetime, uuid.UUID] | None = decode_cursor(cursor) if cursor else None
    repo = scope.repo(DrillRepository)
    if claim_set is ClaimSet.OPEN:
        day = as_of or datetime.now(UTC).date()
        f = OpenFilter(
            as_of=day,
            basis=basis.value,
            bucket_range=basis_range(day, bucket) if bucket is not None and bucket != UNSUBMITTED else None,
            unsubmitted=bucket == UNSUBMITTED,
            payer=payer,
            patient_payer=PATIENT_PAYER,
        )
        rows = await repo.open_claims(f, after=after, limit=limit + 1)
    else:
        start, end = kpis.checked_period(period_from, period_to)
        span = EventFilter(
            start=datetime.combine(start, time(), tzinfo=UTC),
            end=datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
            payer=payer,
        )
        wanted = outcome.value if outcome is not None else None
        if claim_set is ClaimSet.ADJUDICATED:
            rows = await repo.adjudicated_claims(span, outcome=wanted, after=after, limit=limit + 1)
        else:
            rows = await repo.submitted_claims(span, outcome=wanted, after=after, limit=limit + 1)
    shown = rows[:limit]
    amounts = await repo.amounts([r.id for r in shown])
    items = []
    for r in shown:
        sums = amounts.get(r.id)
        figure = None
        if claim_set is ClaimSet.OPEN:
            figure = (
                int(r.patient_cents)
                if payer == PATIENT_PAYER
                else int(r.insurance_cents)
                if payer is not None
                else int(r.insurance_cents) + int(r.patient_cents)
            )
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
        detail={"report": f"claims.{claim_set.value}", "claims": len(items)},
    )
    more = len(rows) > limit and shown
    return ClaimPage(
        items=items, next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None
    )
