"""Cash flow per practice: charges, payments, adjustments (by CAS group) and refunds, by day, week or month,
by payer, provider, CPT or location, beside the previous period of the same length.

Every figure is a sum of ledger entries, read from the rollup the ledger's own inserts keep
(``rcm.report_ledger_day``); closed months from their frozen snapshot. The drill-down lists the entries
behind any cell. Definitions (signs, report day, the closed-period rule) are in ``rcm.reporting.schemas``
and the migration 0040_report_rollups.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

from rcm.audit.events import Action
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.pagination import decode_cursor, encode_cursor
from rcm.reporting.models import Kind
from rcm.reporting.repository import CellFilter, DayFigure, ReportRepository, day_figures_on_driver
from rcm.reporting.schemas import (
    CashFlowFigures,
    CashFlowGroup,
    CashFlowReport,
    CashFlowRow,
    DrillEntry,
    DrillPage,
    Grain,
    GroupBy,
)
from rcm.tenancy.scope import OnePractice, TenantRead, TenantScope

MAX_DAYS = 3 * 366 + 1  # the longest period a report covers (three years)

_FIELD = {
    Kind.CHARGE: "charges_cents",
    Kind.PAYMENT: "payments_cents",
    Kind.PATIENT_PAYMENT: "patient_payments_cents",
    Kind.REFUND: "refunds_cents",
    Kind.ADJUSTMENT: "adjustments_cents",
    Kind.INTEREST: "interest_cents",
    Kind.PROVIDER_ADJUSTMENT: "provider_adjustments_cents",
    Kind.UNAPPLIED: "unapplied_cents",
}


_FIELD_OF = {kind.value: field for kind, field in _FIELD.items()}  # by the rollup's text: no enum lookup


def add(figures: CashFlowFigures, kind: str, adjustment_group: str, cents: int, entries: int) -> None:
    """Add one rollup sum to a cell."""
    field = _FIELD_OF[kind]
    setattr(figures, field, getattr(figures, field) + cents)
    if kind == Kind.ADJUSTMENT:
        groups = figures.adjustments_by_group
        groups[adjustment_group] = groups.get(adjustment_group, 0) + cents
    figures.entries += entries


def period_end(start: date, grain: Grain) -> date:
    if grain is Grain.DAY:
        return start
    if grain is Grain.WEEK:
        return start + timedelta(days=6)
    following = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return following - timedelta(days=1)


def month_end(month: date) -> date:
    return period_end(month, Grain.MONTH)


def check_period(date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise InvalidInput(
            "date_to is before date_from.", errors=[FieldError("query:date_to", "before_from")]
        )
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"A report covers at most {MAX_DAYS} days.", errors=[FieldError("query:date_from", "too_long")]
        )


async def cash_flow(
    scope: OnePractice,
    *,
    date_from: date,
    date_to: date,
    grain: Grain = Grain.MONTH,
    group_by: GroupBy = GroupBy.NONE,
) -> CashFlowReport:
    """The practice's money from ``date_from`` to ``date_to`` (report days, inclusive). One statement and
    no audit event (money figures name no patient): in a ``TenantRead`` that statement is the whole unit of
    work, run on the driver."""
    check_period(date_from, date_to)
    length = (date_to - date_from).days + 1
    previous_to = date_from - timedelta(days=1)
    previous_from = date_from - timedelta(days=length)
    day_figures: Callable[..., Awaitable[tuple[date | None, list[DayFigure]]]]
    if isinstance(scope, TenantRead):  # the whole unit of work on the driver (provide_tenant_read)
        day_figures = functools.partial(day_figures_on_driver, scope.unit)
    else:
        assert isinstance(scope, TenantScope)
        day_figures = scope.repo(ReportRepository).day_figures
    closed_through, figures = await day_figures(
        day_from=date_from, day_to=date_to, grain=grain, group_by=group_by, previous_from=previous_from
    )
    rows: dict[tuple[date, str | None], CashFlowFigures] = {}
    groups: dict[str | None, CashFlowGroup] = {}
    total, previous_total = CashFlowFigures(), CashFlowFigures()

    def group_of(key: str | None) -> CashFlowGroup:
        found = groups.get(key)
        if found is None:
            found = groups[key] = CashFlowGroup(key, CashFlowFigures(), CashFlowFigures())
        return found

    for f in figures:
        sums = _sums(f)
        if f.period is None:  # the comparison period
            add(group_of(f.group).previous, *sums)
            add(previous_total, *sums)
            continue
        add(rows.setdefault((f.period, f.group), CashFlowFigures()), *sums)
        add(group_of(f.group).current, *sums)
        add(total, *sums)
    return CashFlowReport(
        date_from=date_from,
        date_to=date_to,
        grain=grain,
        group_by=group_by,
        previous_from=previous_from,
        previous_to=previous_to,
        closed_through=closed_through,
        rows=[
            CashFlowRow(
                period_start=max(start, date_from),
                period_end=min(period_end(start, grain), date_to),
                group=key,
                closed=closed_through is not None
                and min(period_end(start, grain), date_to) <= closed_through,
                figures=figures,
            )
            for (start, key), figures in sorted(rows.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        ],
        groups=sorted(groups.values(), key=lambda g: g.group or ""),
        total=total,
        previous_total=previous_total,
    )


def _sums(f: DayFigure) -> tuple[str, str, int, int]:
    return f.kind, f.adjustment_group, f.amount_cents, f.entries


async def cash_flow_entries(
    scope: TenantScope,
    *,
    date_from: date,
    date_to: date,
    kind: Kind | None = None,
    adjustment_group: str | None = None,
    group_by: GroupBy = GroupBy.NONE,
    group: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DrillPage:
    """The ledger entries behind a cash-flow cell (period, kind, CAS group, group key), paged in posting
    order. A row names its claim by number, date of service, payer and status: the read is audited."""
    check_period(date_from, date_to)
    after: tuple[datetime, uuid.UUID] | None = decode_cursor(cursor) if cursor else None
    cell = CellFilter(date_from, date_to, kind and kind.value, adjustment_group, group_by, group)
    rows = await scope.repo(ReportRepository).drill(cell, after=after, limit=limit + 1)
    shown = rows[:limit]
    items = [
        DrillEntry(
            entry_id=r["entry_id"],
            posted_at=r["posted_at"],
            report_day=r["report_day"],
            kind=Kind(r["kind"]),
            amount_cents=int(r["amount_cents"]),
            adjustment_group=r["adjustment_group"],
            reason_code=r["reason_code"],
            procedure_code=r["procedure_code"] or None,
            claim_id=r["claim_id"],
            claim_number=r["claim_number"],
            service_date=r["service_date"],
            payer_id=r["payer_id"] or None,
            claim_status=r["claim_status"],
        )
        for r in shown
    ]
    claim_ids = list(dict.fromkeys(i.claim_id for i in items if i.claim_id is not None))
    scope.audit(
        "report.drilled",
        Action.READ,
        resource_type="claim",
        resource_ids=claim_ids,
        detail={"report": "cash-flow", "entries": str(len(items))},
    )
    more = len(rows) > limit and shown
    return DrillPage(
        items=items,
        next_cursor=encode_cursor(items[-1].posted_at, items[-1].entry_id) if more else None,
        amount_cents=sum(i.amount_cents for i in items),
    )
