"""The owner's dashboard and its drill-down, the supervisors' and the operator's report pages.

- ``/app/t/{slug}``: KPI tiles (with their definitions), cash flow by period (grain, grouping, period form),
  AR aging, the cash forecast with its error on past weeks, period-over-period comparison, export links and
  the person's saved views. Every tile, bar, segment and point links to the claims behind it.
- ``/app/t/{slug}/claims``: the drill-down, one page of claims (or ledger entries) at a time: claim number,
  date of service, payer, amounts and status, no patient.
- ``POST /app/t/{slug}/views`` and ``.../views/{id}/delete``: save the page's settings under a name, delete
  a saved view (forms carrying the session's CSRF token).
- ``/app/supervisor``: staff productivity and queues over the practices a supervisor is assigned to.
- ``/app/operator``: every practice's KPIs side by side, for the operator role (the audited system path).

A page gets its tenant scope exactly as an API route does: another practice's page is the same 404, audited.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from rcm.audit.events import request_info_from
from rcm.dashboard import drill, service
from rcm.dashboard.models import ReportName
from rcm.dashboard.schemas import SavedViewWrite
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import REPORTS_READ, STAFF_MANAGE
from rcm.identity.web_session import CSRF_FIELD
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rcm.reporting import aging, cashflow, forecast, kpis, productivity
from rcm.reporting.kpi_vocabulary import KpiKey
from rcm.reporting.models import Kind
from rcm.reporting.schemas import AgingBasis, Grain, GroupBy
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import provide_staff_scope
from rcm.web import charts
from rcm.web import dashboard_figures as figures
from rcm.web.render import PAGE_EXCEPTION_HANDLERS, PAGE_OPT, page

DEFAULT_MONTHS = 6  # the dashboard opens on the current month and the five before it
FORECAST_WEEKS = 8
BACKTEST_WEEKS = 8
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

_GROUP_LABELS = {
    GroupBy.NONE: "No grouping",
    GroupBy.PAYER: "Payer",
    GroupBy.PROVIDER: "Rendering provider",
    GroupBy.CPT: "CPT/HCPCS",
    GroupBy.LOCATION: "Location",
}
_KIND_LABELS = {
    Kind.CHARGE: "charges",
    Kind.PAYMENT: "payer payments",
    Kind.PATIENT_PAYMENT: "patient payments",
    Kind.REFUND: "refunds",
    Kind.ADJUSTMENT: "adjustments",
    Kind.INTEREST: "interest",
    Kind.PROVIDER_ADJUSTMENT: "provider-level adjustments",
    Kind.UNAPPLIED: "unapplied payments",
}
_REPORT_LABELS = {
    ReportName.DASHBOARD: "Dashboard",
    ReportName.CASH_FLOW: "Cash flow",
    ReportName.AR_AGING: "AR aging",
    ReportName.KPIS: "KPIs",
    ReportName.CLAIMS: "Claims",
}


class DrillSet(enum.StrEnum):
    """What a drill-down page lists."""

    ENTRIES = "entries"  # a cash-flow cell's ledger entries
    OPEN = "open"  # an AR-aging cell's open claims
    KPI = "kpi"  # a KPI's claims (its population, or its numerator's)


def _today() -> date:
    return datetime.now(UTC).date()


def default_period(today: date) -> tuple[date, date]:
    """The current month and the five before it, to today."""
    month = today.replace(day=1)
    for _ in range(DEFAULT_MONTHS - 1):
        month = (month - timedelta(days=1)).replace(day=1)
    return month, today


def _payer_names(tenant: TenantScope) -> dict[str, str]:
    return {p.payer_id: p.name for p in tenant.manifest.payers}


def _query(**params: str | date | None) -> str:
    return urlencode(
        [(k, v.isoformat() if isinstance(v, date) else v) for k, v in params.items() if v is not None]
    )


class DashboardController(Controller):
    path = "/app/t/{tenant_slug:str}"
    tags = ["pages"]
    include_in_schema = False
    opt = PAGE_OPT
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(REPORTS_READ)]

    @get("/")
    async def dashboard(
        self,
        *,
        request: Request[Any, Any, Any],
        tenant: NamedDependency[TenantScope],
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        grain: FromQuery[Grain] = Grain.MONTH,
        group_by: FromQuery[GroupBy] = GroupBy.NONE,
        basis: FromQuery[AgingBasis] = AgingBasis.SERVICE_DATE,
    ) -> Template:
        today = _today()
        start, end = default_period(today)
        start, end = date_from or start, date_to or end
        cashflow.check_period(start, end)
        slug = tenant.manifest.slug
        names = _payer_names(tenant)
        cash = await cashflow.cash_flow(tenant, date_from=start, date_to=end, grain=grain, group_by=group_by)
        # KPIs cover at most a year: the last 366 days of a longer period.
        kpi_from = max(start, end - timedelta(days=kpis.MAX_PERIOD_DAYS - 1))
        kpi_report = await kpis.kpi_report(tenant, period_from=kpi_from, period_to=end)
        ar = await aging.ar_aging(tenant, as_of=end, basis=basis)
        outlook = await forecast.cash_forecast(
            tenant, as_of=today, weeks=FORECAST_WEEKS, backtest_weeks=BACKTEST_WEEKS
        )
        views = await service.list_views(tenant)
        settings = {
            "date_from": start.isoformat(),
            "date_to": end.isoformat(),
            "grain": grain.value,
            "group_by": group_by.value,
            "basis": basis.value,
        }
        cash_query = _query(date_from=start, date_to=end, grain=grain.value, group_by=group_by.value)
        aging_query = _query(as_of=end, basis=basis.value)
        api = f"/api/v1/tenants/{slug}/reports"
        return page(
            request,
            "dashboard.html",
            title=f"{tenant.manifest.name}: dashboard",
            slug=slug,
            practice=tenant.manifest.name,
            settings=settings,
            grains=list(Grain),
            groupings=[(g.value, _GROUP_LABELS[g]) for g in GroupBy],
            bases=[
                (AgingBasis.SERVICE_DATE.value, "Date of service"),
                (AgingBasis.SUBMISSION_DATE.value, "Submission"),
            ],
            cash=cash,
            grouped=group_by is not GroupBy.NONE,
            group_label=_GROUP_LABELS[group_by],
            cash_chart=figures.cash_flow_chart(slug, cash),
            comparisons=figures.comparisons(slug, cash),
            group_lines=figures.group_lines(slug, cash, names if group_by is GroupBy.PAYER else {}),
            kpi=kpi_report,
            tiles=figures.kpi_tiles(slug, kpi_report),
            ar=ar,
            aging_buckets=figures.aging_buckets(basis),
            aging_chart=figures.aging_chart(slug, ar, names),
            aging_lines=figures.aging_lines(slug, ar, names),
            aging_total=charts.money_exact(ar.balance_cents),
            aging_previous=(
                charts.money_exact(ar.previous_balance_cents)
                if ar.previous_balance_cents is not None
                else None
            ),
            forecast=outlook,
            forecast_chart=figures.forecast_chart(slug, outlook),
            forecast_errors=figures.forecast_errors(slug, outlook),
            forecast_total=charts.money_exact(sum(w.expected_cents for w in outlook.weeks)),
            forecast_mae=(
                charts.money_exact(outlook.mean_absolute_error_cents)
                if outlook.mean_absolute_error_cents is not None
                else None
            ),
            forecast_mape=(
                charts.percent(outlook.mean_absolute_percentage_error)
                if outlook.mean_absolute_percentage_error is not None
                else None
            ),
            money=charts.money_exact,
            exports={
                "Cash flow (CSV)": f"{api}/cash-flow.csv?{cash_query}",
                "Cash flow (XLSX)": f"{api}/cash-flow.xlsx?{cash_query}",
                "AR aging (CSV)": f"{api}/ar-aging.csv?{aging_query}",
                "AR aging (XLSX)": f"{api}/ar-aging.xlsx?{aging_query}",
            },
            views=views,
            report_labels={r.value: label for r, label in _REPORT_LABELS.items()},
            save_report=ReportName.DASHBOARD.value,
            save_parameters=settings,
        )

    @get("/claims")
    async def claims(
        self,
        *,
        request: Request[Any, Any, Any],
        tenant: NamedDependency[TenantScope],
        claim_set: Annotated[DrillSet, QueryParameter(name="set")] = DrillSet.OPEN,
        date_from: FromQuery[date | None] = None,
        date_to: FromQuery[date | None] = None,
        kind: FromQuery[Kind | None] = None,
        adjustment_group: Annotated[str | None, QueryParameter(max_length=4)] = None,
        group_by: FromQuery[GroupBy] = GroupBy.NONE,
        group: Annotated[str | None, QueryParameter(max_length=60)] = None,
        as_of: FromQuery[date | None] = None,
        basis: FromQuery[AgingBasis] = AgingBasis.SERVICE_DATE,
        bucket: Annotated[str | None, QueryParameter(max_length=20)] = None,
        payer: Annotated[str | None, QueryParameter(max_length=60)] = None,
        key: FromQuery[KpiKey | None] = None,
        period_from: FromQuery[date | None] = None,
        period_to: FromQuery[date | None] = None,
        numerator: FromQuery[bool] = False,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Template:
        """The figures behind a tile, a bar, a segment or a table cell, one page at a time: a cash-flow
        cell's ledger entries (the reports' drill-down), an AR-aging cell's open claims, a KPI's claims
        (the KPIs' own drill-down)."""
        slug = tenant.manifest.slug
        names = _payer_names(tenant)
        cell = _DrillCell(
            claim_set=claim_set,
            date_from=date_from,
            date_to=date_to,
            kind=kind,
            adjustment_group=adjustment_group,
            group_by=group_by,
            group=group,
            as_of=as_of,
            basis=basis,
            bucket=bucket,
            payer=payer,
            key=key,
            period_from=period_from,
            period_to=period_to,
            numerator=numerator,
        )
        context: dict[str, Any] = {"entries": None, "rows": None, "kpi_rows": None, "page_total": None}
        next_cursor: str | None
        if claim_set is DrillSet.ENTRIES:
            heading, next_cursor = await _entries(tenant, cell, names, context, cursor=cursor, limit=limit)
        elif claim_set is DrillSet.KPI:
            heading, next_cursor = await _kpi_claims(tenant, cell, context, cursor=cursor, limit=limit)
        else:
            listed = await drill.open_claims(
                tenant, as_of=as_of, basis=basis, bucket=bucket, payer=payer, cursor=cursor, limit=limit
            )
            heading = _open_heading(as_of=as_of, basis=basis, bucket=bucket, payer=payer, names=names)
            context["rows"] = listed.items
            next_cursor = listed.next_cursor
        settings = cell.settings(limit)
        base = f"/app/t/{slug}/claims?{urlencode(sorted(settings.items()))}"
        return page(
            request,
            "claims.html",
            title=heading,
            slug=slug,
            practice=tenant.manifest.name,
            payer_names=names,
            money=charts.money_exact,
            first_href=base if cursor else None,
            next_href=f"{base}&{urlencode({'cursor': next_cursor})}" if next_cursor else None,
            views=await service.list_views(tenant),
            report_labels={r.value: label for r, label in _REPORT_LABELS.items()},
            save_report=ReportName.CLAIMS.value,
            save_parameters=settings,
            **context,
        )

    @post("/views", status_code=303)
    async def save_view(
        self, request: Request[Any, Any, Any], tenant: NamedDependency[TenantScope]
    ) -> Redirect:
        """The page's 'save this view' form: a name, the report, and the page's settings as hidden fields."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        name = fields.pop("name", "").strip()
        report = fields.pop("report", "")
        fields.pop(CSRF_FIELD, None)
        try:
            data = SavedViewWrite(
                name=name, report=ReportName(report), parameters={k: v for k, v in fields.items() if v}
            )
        except ValueError:
            raise InvalidInput(
                "A view needs a name and a report.", errors=[FieldError("/report", "is not a report")]
            ) from None
        if not name or len(name) > 80:
            raise InvalidInput(
                "A view needs a name of 1 to 80 characters.", errors=[FieldError("/name", "length")]
            )
        _, view = await service.save_view(tenant, data)
        return Redirect(view.href, status_code=303)

    @post("/views/{view_id:uuid}/delete", status_code=303)
    async def delete_view(
        self, tenant: NamedDependency[TenantScope], view_id: FromPath[uuid.UUID]
    ) -> Redirect:
        await service.delete_view(tenant, view_id)
        return Redirect(f"/app/t/{tenant.manifest.slug}", status_code=303)


@dataclass(frozen=True)
class _DrillCell:
    """A drill-down's parameters: which list, and the figure's cell."""

    claim_set: DrillSet
    date_from: date | None
    date_to: date | None
    kind: Kind | None
    adjustment_group: str | None
    group_by: GroupBy
    group: str | None
    as_of: date | None
    basis: AgingBasis
    bucket: str | None
    payer: str | None
    key: KpiKey | None
    period_from: date | None
    period_to: date | None
    numerator: bool

    def settings(self, limit: int) -> dict[str, str]:
        """The query that reopens this list (a saved view's parameters), defaults left out."""
        values: dict[str, object] = {
            "set": self.claim_set,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "kind": self.kind,
            "adjustment_group": self.adjustment_group,
            "group_by": self.group_by if self.group_by is not GroupBy.NONE else None,
            "group": self.group,
            "as_of": self.as_of,
            "basis": self.basis if self.claim_set is DrillSet.OPEN else None,
            "bucket": self.bucket,
            "payer": self.payer,
            "key": self.key,
            "period_from": self.period_from,
            "period_to": self.period_to,
            "numerator": "true" if self.numerator else None,
            "limit": limit if limit != DEFAULT_LIMIT else None,
        }
        return {
            k: v.isoformat() if isinstance(v, date) else str(v) for k, v in values.items() if v is not None
        }


async def _entries(
    tenant: TenantScope,
    cell: _DrillCell,
    names: dict[str, str],
    context: dict[str, Any],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[str, str | None]:
    if cell.date_from is None or cell.date_to is None:
        raise InvalidInput(
            "A ledger drill-down names its days.", errors=[FieldError("query:date_from", "is required")]
        )
    drilled = await cashflow.cash_flow_entries(
        tenant,
        date_from=cell.date_from,
        date_to=cell.date_to,
        kind=cell.kind,
        adjustment_group=cell.adjustment_group,
        group_by=cell.group_by,
        group=cell.group,
        cursor=cursor,
        limit=limit,
    )
    what = _KIND_LABELS[cell.kind] if cell.kind is not None else "all ledger entries"
    heading = f"Ledger entries: {what}, {cell.date_from.isoformat()} to {cell.date_to.isoformat()}"
    if cell.group_by is not GroupBy.NONE:
        shown = (
            names.get(cell.group or "", cell.group or "") if cell.group_by is GroupBy.PAYER else cell.group
        )
        heading += f", {_GROUP_LABELS[cell.group_by].lower()} {shown or '(none)'}"
    context["entries"] = drilled.items
    context["page_total"] = charts.money_exact(drilled.amount_cents)
    return heading, drilled.next_cursor


async def _kpi_claims(
    tenant: TenantScope, cell: _DrillCell, context: dict[str, Any], *, cursor: str | None, limit: int
) -> tuple[str, str | None]:
    if cell.key is None:
        raise InvalidInput("A KPI drill-down names its KPI.", errors=[FieldError("query:key", "is required")])
    try:
        after = uuid.UUID(cursor) if cursor else None
    except ValueError:
        raise InvalidInput(
            "The cursor is not one this page issued.", errors=[FieldError("query:cursor", "invalid")]
        ) from None
    listed = await kpis.kpi_claims(
        tenant,
        cell.key,
        period_from=cell.period_from,
        period_to=cell.period_to,
        numerator_only=cell.numerator,
        cursor=after,
        limit=min(limit, kpis.MAX_PAGE),
    )
    name = next(d.name for d in kpis.DEFINITIONS if d.key is cell.key)
    part = "numerator" if cell.numerator else "claims"
    heading = f"{name}, {listed.period_from.isoformat()} to {listed.period_to.isoformat()}: {part}"
    context["kpi_rows"] = listed.items
    context["population"] = listed.population
    context["measure"] = _MEASURES.get(cell.key)
    return heading, str(listed.next_cursor) if listed.next_cursor else None


# What a KPI claim's own figure is, as its column is headed (None: the KPI has none).
_MEASURES = {
    KpiKey.GROSS_COLLECTION_RATE: ("Payments in the period", "cents"),
    KpiKey.NET_COLLECTION_RATE: ("Payments in the period", "cents"),
    KpiKey.DAYS_IN_AR: ("Balance at the period's end", "cents"),
    KpiKey.AR_OVER_90_DAYS: ("Balance at the period's end", "cents"),
    KpiKey.DAYS_TO_PAYMENT: ("Days to payment", "days"),
}


def _open_heading(
    *, as_of: date | None, basis: AgingBasis, bucket: str | None, payer: str | None, names: dict[str, str]
) -> str:
    who = f", {figures.payer_name(payer, names)}" if payer else ""
    day = (as_of or _today()).isoformat()
    since = "date of service" if basis is AgingBasis.SERVICE_DATE else "submission"
    if bucket == drill.OVER_90:
        aged = f", over 90 days since {since}"
    elif bucket == "unsubmitted":
        aged = ", never submitted"
    elif bucket:
        aged = f", {bucket} days since {since}"
    else:
        aged = ""
    return f"Open claims as of {day}{aged}{who}"


class StaffReportPagesController(Controller):
    """Supervisors' productivity page and the operator's roll-up (no practice in the path)."""

    path = "/app"
    tags = ["pages"]
    include_in_schema = False
    opt = PAGE_OPT
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get(
        "/supervisor",
        dependencies={"staff": Provide(provide_staff_scope)},
        guards=[requires_roles(Role.SUPERVISOR), requires_scopes(STAFF_MANAGE)],
    )
    async def supervisor(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[StaffScope],
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> Template:
        report = await productivity.productivity_report(staff, since=since, until=until)
        return page(
            request,
            "supervisor.html",
            title="Staff productivity and queues",
            report=report,
            active_nav="supervisor",
        )

    @get("/operator", guards=[requires_roles(Role.OPERATOR), requires_scopes(REPORTS_READ)])
    async def operator(
        self,
        request: Request[Principal, Any, Any],
        state: State,
        period_from: FromQuery[date | None] = None,
        period_to: FromQuery[date | None] = None,
    ) -> Template:
        rollup = await productivity.operator_kpis(
            state.sessions,
            state.keystore,
            actor=request.user,
            request=request_info_from(request),
            period_from=period_from,
            period_to=period_to,
        )
        return page(
            request,
            "operator.html",
            title="All practices: KPIs side by side",
            rollup=rollup,
            keys=[d.key for d in rollup.definitions],
            names={d.key: d.name for d in rollup.definitions},
            value=figures.kpi_value,
            active_nav="operator",
        )
