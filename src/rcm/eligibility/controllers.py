"""Eligibility check routes, under a patient's coverage: the practice's own system and the staff assigned
to the practice (the tenant scope decides who may act in the practice; another's is a 404)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from rcm.blobs.store import BlobStore
from rcm.eligibility import schemas, service
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import PROBLEM_JSON, Problem, problem_responses
from rcm.kit.secrets import SecretResolver
from rcm.payers.breaker import breaker_for
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

# The payer's side failing, beside the usual problems (kit.errors describes the client's own).
_PAYER_PROBLEMS = {
    502: ResponseSpec(
        data_container=Problem, description="The payer's connector refused the call", media_type=PROBLEM_JSON
    ),
    503: ResponseSpec(
        data_container=Problem, description="The payer did not answer in time", media_type=PROBLEM_JSON
    ),
}


class EligibilityController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/patients/{patient_id:uuid}/coverages/{coverage_id:uuid}"
    tags = ["eligibility"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/eligibility-checks",
        responses={**created_responses(schemas.EligibilityCheck), **_PAYER_PROBLEMS},
        summary="Check the coverage's eligibility with its payer (270/271, real time)",
        description=(
            "Asks the payer now and stores its answer. A check is an inquiry, not a change to the "
            "patient: patients:read suffices. 502: the payer's connector refused; 503: the payer did "
            "not answer in time (retry with the same Idempotency-Key)."
        ),
        guards=[requires_scopes(Scope.PATIENTS_READ)],
        status_code=201,
    )
    async def create(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        coverage_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.EligibilityCheckCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        settings = request.app.state.settings

        async def produce() -> tuple[int, schemas.EligibilityCheck]:
            return 201, await service.check_eligibility(
                tenant,
                patient_id,
                coverage_id,
                data,
                store=BlobStore.from_settings(settings),
                secrets=SecretResolver(settings.secrets_dir),
                deadline_seconds=settings.connector_timeout_seconds,
                breaker=breaker_for(settings),
            )

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.ELIGIBILITY_CHECK, produce=produce
        )

    @get(
        "/eligibility-checks",
        responses=problem_responses(),
        summary="List the coverage's eligibility checks, newest first",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
    )
    async def list_(
        self,
        tenant: NamedDependency[TenantScope],
        patient_id: FromPath[uuid.UUID],
        coverage_id: FromPath[uuid.UUID],
    ) -> list[schemas.EligibilityCheck]:
        return await service.list_checks(tenant, patient_id, coverage_id)

    @get(
        "/eligibility-checks/{check_id:uuid}",
        responses=problem_responses(),
        summary="Read one eligibility check",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
    )
    async def read(
        self,
        tenant: NamedDependency[TenantScope],
        patient_id: FromPath[uuid.UUID],
        coverage_id: FromPath[uuid.UUID],
        check_id: FromPath[uuid.UUID],
    ) -> schemas.EligibilityCheck:
        return await service.get_check(tenant, check_id, patient_id=patient_id, coverage_id=coverage_id)


class EligibilityCheckController(Controller):
    """A check by its id alone: what an ``eligibility`` billing item names (its subject)."""

    path = "/api/v1/tenants/{tenant_slug:str}/eligibility-checks"
    tags = ["eligibility"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @get(
        "/{check_id:uuid}",
        responses=problem_responses(),
        summary="Read one eligibility check by its id",
        guards=[requires_scopes(Scope.PATIENTS_READ)],
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], check_id: FromPath[uuid.UUID]
    ) -> schemas.EligibilityCheck:
        return await service.get_check(tenant, check_id)
