"""Money report routes under a practice: cash flow (with its drill-down), AR aging, exports, month-end close.

Owners read their own practice (their home tenant); staff holding reports:read (supervisors) read the
practices they are assigned to. Another practice's reports are the standard 404."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, JSONBody, QueryParameter

from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Role
from rcm.identity.scopes import REPORTS_READ
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rcm.reporting import aging, cashflow, close, export
from rcm.reporting.models import Kind
from rcm.reporting.schemas import (
    AgingBasis,
    ArAgingReport,
    CashFlowReport,
    DrillPage,
    Grain,
    GroupBy,
    MonthClose,
    MonthCloseCreate,
)
from rcm.tenancy.dependencies import provide_tenant_read, provide_tenant_scope
from rcm.tenancy.scope import OnePractice, TenantScope

_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)

CASH_FLOW = """\
Charges, payments, adjustments and refunds of the practice, per period (day, ISO week or month) and
group (payer, rendering provider, CPT/HCPCS, location = the encounter's facility), beside the previous
period of the same length.

Definitions. Every figure is a sum of ledger entries (double entry, integer cents), reported so the
ordinary case is positive: charges = credits to the charges account (gross charges billed; a void's
reversal is negative); payments = the payments account (money payers sent: the 835s' BPR02, PLB
recoupments deducted); patient_payments and refunds = the patient_payments account, split by the
posting's source; adjustments = the adjustments account (CAS write-offs and small-balance write-offs),
also split by CAS group (CO, OA, PI, CR...); interest and provider_adjustments = the PLB accounts,
ledger sign (debit positive); unapplied = payments matching no claim. Patient responsibility (CAS PR)
moves a balance to the patient and is not an adjustment.

Report day: the 835's payment date (BPR16) for a remittance's entries, otherwise the posting day (UTC).
Closed periods never shift: a closed month's figures come from the snapshot frozen at its close; an
entry posted later with an effective date in a closed month counts on the first day of the first open
month. Each cell is traceable with GET .../reports/cash-flow/entries."""

AR_AGING = """\
Open accounts receivable per payer (patients' balances as payer 'patient') in buckets of age in days:
0-30, 31-60, 61-90, 91-120, 120+ (and 'unsubmitted' on the submission basis for claims never submitted).
Age = as_of minus the claim's date of service (basis=service_date) or first submission
(basis=submission_date).

Balances are the claims' receivables in the ledger (insurance and patient), read from a per-claim rollup
kept by the ledger's inserts. Live figures are today's balances aged at as_of; when as_of is the last
day of a closed month the figures are that close's snapshot (balances as of that day, from the ledger).
The comparison is the previous month's close, when that month is closed."""

DateFrom = Annotated[
    date | None, QueryParameter(description="First report day (default: the first of this month, UTC)")
]
DateTo = Annotated[
    date | None, QueryParameter(description="Last report day, inclusive (default: today, UTC)")
]


def _period(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return date_from or today.replace(day=1), date_to or today


def _file(body: bytes, fmt: export.ExportFormat, name: str) -> Response[bytes]:
    return Response(
        body,
        media_type=export.MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )


def _format(request: Request[Any, Any, Any]) -> export.ExportFormat:
    return export.ExportFormat(request.url.path.rsplit(".", 1)[-1])


class MoneyReportController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/reports"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @get(
        "/cash-flow",
        summary="Cash flow: charges, payments, adjustments and refunds by period and group (from the ledger)",
        description=CASH_FLOW,
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
        # One statement and no audit event: on the driver when the access is settled without the database
        # (``provide_tenant_read``; a supervisor's assignment is read in a scope's transaction as before).
        dependencies={"tenant": Provide(provide_tenant_read)},
    )
    async def cash_flow(
        self,
        tenant: NamedDependency[OnePractice],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        grain: FromQuery[Grain] = Grain.MONTH,
        group_by: FromQuery[GroupBy] = GroupBy.NONE,
    ) -> CashFlowReport:
        start, end = _period(date_from, date_to)
        return await cashflow.cash_flow(tenant, date_from=start, date_to=end, grain=grain, group_by=group_by)

    @get(
        ["/cash-flow.csv", "/cash-flow.xlsx"],
        summary="The cash-flow report as CSV or XLSX (amounts in dollars)",
        description=CASH_FLOW,
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
        media_type="application/octet-stream",
        dependencies={"tenant": Provide(provide_tenant_read)},
    )
    async def cash_flow_file(
        self,
        request: Request[Any, Any, Any],
        *,
        tenant: NamedDependency[OnePractice],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        grain: FromQuery[Grain] = Grain.MONTH,
        group_by: FromQuery[GroupBy] = GroupBy.NONE,
    ) -> Response[bytes]:
        start, end = _period(date_from, date_to)
        report = await cashflow.cash_flow(
            tenant, date_from=start, date_to=end, grain=grain, group_by=group_by
        )
        fmt = _format(request)
        return _file(export.render(export.cash_flow_table(report), fmt, "cash flow"), fmt, "cash-flow")

    @get(
        "/cash-flow/entries",
        summary="Ledger entries behind a cash-flow cell (paged: claim number, DOS, payer, amount, status)",
        description=(
            "A cell is its days (date_from..date_to, report days), and optionally a kind, a CAS group (for "
            "adjustments) and a group key (group_by and group, as in the report; '' is the empty key). The "
            "entries' amounts, signed as in the report, sum to the cell's figure. Audited (claims named)."
        ),
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
    )
    async def cash_flow_entries(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        kind: FromQuery[Kind | None] = None,
        adjustment_group: FromQuery[str | None] = None,
        group_by: FromQuery[GroupBy] = GroupBy.NONE,
        group: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> DrillPage:
        start, end = _period(date_from, date_to)
        return await cashflow.cash_flow_entries(
            tenant,
            date_from=start,
            date_to=end,
            kind=kind,
            adjustment_group=adjustment_group,
            group_by=group_by,
            group=group,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/ar-aging",
        summary="AR aging by payer: 0-30, 31-60, 61-90, 91-120, 120+ days, by date of service or submission",
        description=AR_AGING,
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
    )
    async def ar_aging(
        self,
        tenant: NamedDependency[TenantScope],
        as_of: Annotated[
            date | None, QueryParameter(description="Age at this day (default: today, UTC)")
        ] = None,
        basis: FromQuery[AgingBasis] = AgingBasis.SERVICE_DATE,
    ) -> ArAgingReport:
        return await aging.ar_aging(tenant, as_of=as_of or datetime.now(UTC).date(), basis=basis)

    @get(
        ["/ar-aging.csv", "/ar-aging.xlsx"],
        summary="The AR aging report as CSV or XLSX (amounts in dollars)",
        description=AR_AGING,
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
        media_type="application/octet-stream",
    )
    async def ar_aging_file(
        self,
        request: Request[Any, Any, Any],
        *,
        tenant: NamedDependency[TenantScope],
        as_of: Annotated[
            date | None, QueryParameter(description="Age at this day (default: today, UTC)")
        ] = None,
        basis: FromQuery[AgingBasis] = AgingBasis.SERVICE_DATE,
    ) -> Response[bytes]:
        report = await aging.ar_aging(tenant, as_of=as_of or datetime.now(UTC).date(), basis=basis)
        fmt = _format(request)
        return _file(export.render(export.ar_aging_table(report), fmt, "AR aging"), fmt, "ar-aging")

    @get(
        "/closes",
        summary="The practice's closed months, newest first",
        responses=_ERRORS,
        guards=[requires_scopes(REPORTS_READ)],
    )
    async def closes(self, tenant: NamedDependency[TenantScope]) -> list[MonthClose]:
        return await close.closes(tenant)

    @post(
        "/close",
        summary="Close a month: its figures are frozen and never shift (owners and supervisors; audited)",
        description=(
            "Closes the month (YYYY-MM) and every earlier open month: the cash-flow figures of those "
            "days and the AR aging as of the month's last day are frozen. The month must have ended and "
            "follow the last closed one (409 otherwise). Entries posted afterwards with an effective date "
            "in a closed month count on the first day of the first open month."
        ),
        responses=problem_responses(400, 401, 403, 404, 409, 422, 429),
        guards=[requires_roles(Role.PRACTICE_OWNER, Role.SUPERVISOR), requires_scopes(REPORTS_READ)],
        status_code=201,
    )
    async def close_month(
        self, tenant: NamedDependency[TenantScope], data: JSONBody[MonthCloseCreate]
    ) -> MonthClose:
        return await close.close_month(tenant, data)
