"""Saved-view and drill-down routes under a practice's reports, for those who read them (owners, supervisors).

A person lists, saves and deletes their own views only; another person's view, or another practice's, is
the same 404 as one that does not exist. Saving takes an Idempotency-Key, as every POST does.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.dashboard import drill, schemas, service
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import REPORTS_READ
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rcm.reporting.schemas import AgingBasis
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

_ERRORS = problem_responses(400, 401, 403, 404, 422, 429)


class SavedViewController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/reports/views"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(REPORTS_READ)]

    @get("/", summary="Your saved report views in this practice, by name", responses=_ERRORS)
    async def list_(self, tenant: NamedDependency[TenantScope]) -> list[schemas.SavedView]:
        return await service.list_views(tenant)

    @post(
        "/",
        summary="Save a report view under a name (replacing yours of that name)",
        description=(
            "A view is a report (dashboard, cash_flow, ar_aging, kpis, claims) and its settings, each an"
            " allow-listed parameter of that report as in the page's query string (grain, group_by,"
            " date_from, date_to, basis...); 422 names any other. 201 when new, 200 when it replaced"
            " your view of that name; 409 past 50 views. The answer's href reopens the view."
        ),
        responses=created_responses(schemas.SavedView),
    )
    async def save(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.SavedViewWrite],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.SavedView]:
            created, view = await service.save_view(tenant, data)
            return (201 if created else 200), view

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.SAVED_VIEW, produce=produce
        )

    @get("/{view_id:uuid}", summary="One of your saved views", responses=_ERRORS)
    async def read(
        self, tenant: NamedDependency[TenantScope], view_id: FromPath[uuid.UUID]
    ) -> schemas.SavedView:
        return await service.read_view(tenant, view_id)

    @delete("/{view_id:uuid}", status_code=204, summary="Delete one of your saved views", responses=_ERRORS)
    async def remove(self, tenant: NamedDependency[TenantScope], view_id: FromPath[uuid.UUID]) -> None:
        await service.delete_view(tenant, view_id)


class AgingClaimsController(Controller):
    """The claims behind an AR-aging cell (cash-flow cells: ``.../reports/cash-flow/entries``; KPIs:
    ``.../reports/kpis/{key}/claims``)."""

    path = "/api/v1/tenants/{tenant_slug:str}/reports/ar-aging/claims"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(REPORTS_READ)]

    @get(
        "/",
        summary="Open claims behind an AR-aging cell (paged: claim number, DOS, payer, amounts, status)",
        description=drill.__doc__,
        responses=_ERRORS,
    )
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        as_of: Annotated[date | None, QueryParameter(description="Age at this day (default today)")] = None,
        basis: Annotated[AgingBasis, QueryParameter(description="Age from")] = AgingBasis.SERVICE_DATE,
        bucket: Annotated[
            str | None,
            QueryParameter(description=f"An age bucket ({', '.join(drill.BUCKET_NAMES)})", max_length=20),
        ] = None,
        payer: Annotated[
            str | None,
            QueryParameter(description="Only this payer ('patient': patients' balances)", max_length=60),
        ] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> schemas.ClaimPage:
        return await drill.open_claims(
            tenant, as_of=as_of, basis=basis, bucket=bucket, payer=payer, cursor=cursor, limit=limit
        )
