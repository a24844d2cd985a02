"""Encounter routes, under a tenant."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.encounters import schemas, service
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.patients.controllers import Cursor, Limit, date_skew
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

# The same shape as on intake: anything else names no encounter (and a NUL would fail in the driver).
ExternalIdFilter = Annotated[
    str | None, QueryParameter(min_length=1, max_length=80, pattern=schemas.EXTERNAL_ID_PATTERN)
]


class EncounterController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/encounters"
    tags = ["encounters"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/",
        responses=created_responses(schemas.Encounter),
        summary="Submit an encounter (patient, coverage and providers by id or inline)",
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.EncounterCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Encounter]:
            return 201, await service.create_encounter(tenant, data, tenant.manifest, skew=date_skew(request))

        return await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type="encounter",
            produce=produce,
        )

    @get(
        "/",
        responses=problem_responses(),
        summary="List encounters",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: FromQuery[schemas.EncounterStatus | None] = None,
        patient_id: FromQuery[uuid.UUID | None] = None,
        external_id: ExternalIdFilter = None,
        service_date_from: FromQuery[date | None] = None,
        service_date_to: FromQuery[date | None] = None,
    ) -> Page[schemas.EncounterSummary]:
        return await service.list_encounters(
            tenant,
            limit=limit,
            cursor=cursor,
            status=status,
            patient_id=patient_id,
            external_id=external_id,
            service_date_from=service_date_from,
            service_date_to=service_date_to,
        )

    @get(
        "/{encounter_id:uuid}",
        responses=problem_responses(),
        summary="Read an encounter",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], encounter_id: FromPath[uuid.UUID]
    ) -> schemas.Encounter:
        return await service.get_encounter(tenant, encounter_id)

    @get(
        "/{encounter_id:uuid}/status",
        responses=problem_responses(),
        summary="An encounter's status and its history",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def status(
        self, tenant: NamedDependency[TenantScope], encounter_id: FromPath[uuid.UUID]
    ) -> schemas.EncounterStatusView:
        return await service.encounter_status(tenant, encounter_id)
