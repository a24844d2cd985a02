"""Patient and coverage routes, under a tenant."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rcm.patients import schemas, service
from rcm.tenancy.dependencies import provide_tenant_read, provide_tenant_scope
from rcm.tenancy.scope import OnePractice, TenantScope

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None, QueryParameter(description="Opaque cursor from the previous page's next_cursor")
]


# A page of patients is encoded by the service (``service.patient_page_json``: the stored PHI goes out as
# it is), and documented as what it is.
PAGE_RESPONSES = {
    200: ResponseSpec(
        data_container=Page[schemas.Patient], description="Request fulfilled, document follows"
    ),
}


def page_response(body: bytes) -> Response[bytes]:
    return Response(body, media_type=MediaType.JSON)


def date_skew(request: Request[Any, Any, Any]) -> timedelta:
    """RCM_FUTURE_DATE_SKEW_DAYS, as the intake services take it."""
    return timedelta(days=request.app.state.settings.future_date_skew_days)


class PatientController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/patients"
    tags = ["patients"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/",
        responses=created_responses(schemas.Patient),
        summary="Create a patient",
        guards=[requires_scopes(Scope.PATIENTS_WRITE)],
        status_code=201,
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.PatientCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Patient]:
            return 201, await service.create_patient(tenant, data, skew=date_skew(request))

        return await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type="patient",
            produce=produce,
        )

    @get(
        "/",
        responses={**PAGE_RESPONSES, **problem_responses()},
        summary="List patients",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
        # The hottest read: one statement with its audit event, on the driver when the access is settled
        # without the database (``provide_tenant_read``).
        dependencies={"tenant": Provide(provide_tenant_read)},
    )
    async def list_(
        self,
        tenant: NamedDependency[OnePractice],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[bytes]:
        return page_response(await service.list_patients(tenant, limit=limit, cursor=cursor))

    @post(
        "/search",
        responses={**PAGE_RESPONSES, **problem_responses(400, 401, 403, 404, 413, 415, 422, 429)},
        summary="Find patients by exact MRN, or by family name and birth date",
        description="A read: it takes an Idempotency-Key like every POST but does not need one.",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
        status_code=200,
    )
    async def search(
        self,
        tenant: NamedDependency[TenantScope],
        data: JSONBody[schemas.PatientSearch],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[bytes]:
        return page_response(
            await service.list_patients(
                tenant,
                limit=limit,
                cursor=cursor,
                mrn=data.mrn,
                family_name=data.family_name,
                birth_date=data.birth_date,
            )
        )

    @get(
        "/{patient_id:uuid}",
        responses=problem_responses(),
        summary="Read a patient",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> schemas.Patient:
        return await service.get_patient(tenant, patient_id)

    @post(
        "/{patient_id:uuid}/coverages",
        responses=created_responses(schemas.Coverage),
        summary="Add a coverage to a patient",
        guards=[requires_scopes(Scope.PATIENTS_WRITE)],
    )
    async def add_coverage(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CoverageCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Coverage]:
            return 201, await service.create_coverage(tenant, patient_id, data)

        return await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type="coverage",
            produce=produce,
        )

    @get(
        "/{patient_id:uuid}/coverages",
        responses=problem_responses(),
        summary="List a patient's coverages",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
    )
    async def coverages(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> list[schemas.Coverage]:
        return await service.list_coverages(tenant, patient_id)
