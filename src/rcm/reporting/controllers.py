"""Report routes under a tenant (practice owners, supervisors)."""

from __future__ import annotations

from datetime import date

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery

from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import REPORTS_READ
from rcm.kit.errors import problem_responses
from rcm.reporting import service
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope


class ReportController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/reports"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @get(
        "/intake-summary",
        responses=problem_responses(),
        summary="Encounters and charges received, by status (aggregates, no PHI)",
        guards=[requires_scopes(REPORTS_READ)],
    )
    async def intake_summary(
        self,
        tenant: NamedDependency[TenantScope],
        service_date_from: FromQuery[date | None] = None,
        service_date_to: FromQuery[date | None] = None,
    ) -> service.IntakeSummary:
        return await service.intake_summary(
            tenant, service_date_from=service_date_from, service_date_to=service_date_to
        )
