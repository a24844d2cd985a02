"""Bulk intake routes, under a tenant."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from rcm.blobs.store import BlobStore
from rcm.bulk import schemas, service
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

UPLOAD_DESCRIPTION = (
    "The request body is the file itself, streamed (never held in memory): "
    "`Content-Type: application/x-ndjson` (one JSON encounter, as POSTed to the encounters route, "
    "or one FHIR Bundle per line) or `text/csv` (the documented column layout, header row first). "
    "Answers 202 with the job, which runs on the worker; a file this practice already submitted "
    "(same content) answers 200 with the job that read it."
)


class BulkIntakeController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/bulk-intakes"
    tags = ["bulk intake"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/",
        status_code=202,
        responses={
            **created_responses(schemas.BulkIntake, status=202),
            200: ResponseSpec(data_container=schemas.BulkIntake, description="The same file was submitted"),
        },
        summary="Upload an NDJSON or CSV file of encounters as a job",
        description=UPLOAD_DESCRIPTION,
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
        request_max_body_size=None,  # RCM_BULK_MAX_BYTES, enforced while streaming into the blob store
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        check_key(idempotency_key)  # before the upload is read
        settings = state.settings
        fmt = service.format_of(request.headers.get("content-type"))
        store = BlobStore.from_settings(settings)
        blob_id, sha256 = await service.store_upload(
            tenant, store, request.stream(), fmt=fmt, max_bytes=settings.bulk_max_bytes
        )
        produced = False

        async def produce() -> tuple[int, schemas.BulkIntake]:
            nonlocal produced
            produced = True
            return await service.submit(tenant, store, blob_id=blob_id, sha256=sha256, fmt=fmt)

        response = await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type=service.BULK_INTAKE,
            produce=produce,
            body_fingerprint=sha256,
        )
        if not produced:
            await store.delete(tenant, blob_id)  # a replay: the first request's copy is the one kept
        return response

    @get(
        "/{job_id:uuid}",
        responses=problem_responses(),
        summary="A bulk intake job's progress",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], job_id: FromPath[uuid.UUID]
    ) -> schemas.BulkIntake:
        return await service.get_job(tenant, job_id)

    @get(
        "/{job_id:uuid}/results",
        responses=problem_responses(),
        summary="Per-line results of a bulk intake job (line number, created encounter or errors)",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def results(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        job_id: FromPath[uuid.UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[schemas.BulkLineResult]:
        return await service.job_results(tenant, job_id, limit=limit, cursor=cursor)
