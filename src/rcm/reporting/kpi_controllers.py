"""KPI, forecast, productivity and operator roll-up routes.

- ``/api/v1/tenants/{slug}/reports/kpis`` and ``.../forecast``: one practice (its owner, its assigned
  supervisors); another practice is the same 404 as none.
- ``/api/v1/billing/reports/productivity``: supervisors, over the practices they are assigned to.
- ``/api/v1/operator/reports/kpis``: the operator role, every practice side by side (the named system path).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from rcm.audit.events import request_info_from
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.reporting import forecast as cash
from rcm.reporting import kpis as kpi_service
from rcm.reporting import productivity as staff_reports
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import provide_staff_scope

_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)
PeriodFrom = Annotated[
    date | None,
    QueryParameter(description="First day of the period (UTC; default: 29 days before period_to)"),
]
PeriodTo = Annotated[
    date | None, QueryParameter(description="Last day of the period, included (default: today)")
]
_KPI_DOC = (
    "Each KPI gives its numerator and denominator (integer cents or counts) and the value "
    "(numerator / denominator x scale), for the period and for the previous period of the same length, "
    "with the change. Definitions (HFMA MAP Key style; also in the response's `definitions`):\n\n"
    + kpi_service.KPI_DESCRIPTION
)


class KpiController(Controller):
    """A practice's KPIs and cash forecast: aggregates only, for those who read its reports."""

    path = "/api/v1/tenants/{tenant_slug:str}/reports"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(Scope.REPORTS_READ)]

    @get(
        "/kpis",
        summary="KPIs for a period beside the previous period",
        description=_KPI_DOC,
        responses=_ERRORS,
    )
    async def kpis(
        self,
        tenant: NamedDependency[TenantScope],
        period_from: PeriodFrom = None,
        period_to: PeriodTo = None,
    ) -> kpi_service.KpiReport:
        return await kpi_service.kpi_report(tenant, period_from=period_from, period_to=period_to)

    @get(
        "/kpis/{key:str}/claims",
        summary="The claims behind one KPI of a period (claim number, date of service, payer, amounts)",
        description="The KPI's population (see `population` in the answer), by claim id; `numerator=true` "
        "keeps the claims counted in the numerator. Each page names its claims in the practice's audit "
        "trail. An unknown KPI is a 404.",
        responses=_ERRORS,
    )
    async def kpi_claims(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        key: FromPath[str],
        period_from: PeriodFrom = None,
        period_to: PeriodTo = None,
        numerator: Annotated[bool, QueryParameter(description="Only the numerator's claims")] = False,
        cursor: Annotated[
            uuid.UUID | None, QueryParameter(description="next_cursor of the last page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=kpi_service.MAX_PAGE, description="Page size")] = 50,
    ) -> kpi_service.KpiClaimsPage:
        return await kpi_service.kpi_claims(
            tenant,
            kpi_service.kpi_key(key),
            period_from=period_from,
            period_to=period_to,
            numerator_only=numerator,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/forecast",
        summary="Weekly cash forecast from open claims by payer, with its backtest on past weeks",
        description=cash.METHOD,
        responses=_ERRORS,
    )
    async def forecast(
        self,
        tenant: NamedDependency[TenantScope],
        as_of: Annotated[
            date | None,
            QueryParameter(description="Made at the end of this day (UTC, default today)"),
        ] = None,
        weeks: Annotated[int, QueryParameter(ge=1, le=cash.MAX_WEEKS, description="Weeks ahead")] = 8,
        backtest_weeks: Annotated[
            int, QueryParameter(ge=0, le=cash.MAX_WEEKS, description="Past weeks backtested")
        ] = 8,
    ) -> cash.CashForecast:
        return await cash.cash_forecast(tenant, as_of=as_of, weeks=weeks, backtest_weeks=backtest_weeks)


class SupervisorReportController(Controller):
    """Supervisors: staff productivity and queues over the practices they are assigned to."""

    path = "/api/v1/billing/reports"
    tags = ["supervision"]
    guards = [requires_roles(Role.SUPERVISOR), requires_scopes(Scope.STAFF_MANAGE)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @get(
        "/productivity",
        summary="Staff productivity (per hour, per day), QA accuracy, SLA breaches, queue depth and age",
        description=staff_reports.__doc__,
        responses=_ERRORS,
    )
    async def productivity(
        self,
        staff: NamedDependency[StaffScope],
        since: Annotated[
            date | None, QueryParameter(description="First day (UTC; default 6 days ago)")
        ] = None,
        until: Annotated[
            date | None, QueryParameter(description="Last day, included (default today)")
        ] = None,
    ) -> staff_reports.ProductivityReport:
        return await staff_reports.productivity_report(staff, since=since, until=until)


class OperatorReportController(Controller):
    """The billing company's roll-up: every practice's KPIs side by side, for people holding the operator
    role. Each practice's audit trail records the read (job ``reports.operator_kpis``)."""

    path = "/api/v1/operator/reports"
    tags = ["operator"]
    guards = [requires_roles(Role.OPERATOR), requires_scopes(Scope.REPORTS_READ)]

    @get(
        "/kpis",
        summary="Every practice's KPIs for a period, side by side",
        description=_KPI_DOC,
        responses=_ERRORS,
    )
    async def kpis(
        self,
        request: Request[Principal, Any, Any],
        state: State,
        period_from: PeriodFrom = None,
        period_to: PeriodTo = None,
    ) -> staff_reports.OperatorKpis:
        return await staff_reports.operator_kpis(
            state.sessions,
            state.keystore,
            actor=request.user,
            request=request_info_from(request),
            period_from=period_from,
            period_to=period_to,
        )
