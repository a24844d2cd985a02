"""Provider routes, under a tenant."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.patients.controllers import Cursor, Limit
from rcm.providers import schemas, service
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope


class ProviderController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/providers"
    tags = ["providers"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/",
        responses=created_responses(schemas.Provider),
        summary="Create a provider",
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.ProviderCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Provider]:
            return 201, await service.create_provider(tenant, data)

        return await run_idempotent(
            tenant,
            request,
            key=idempotency_key,
            resource_type="provider",
            produce=produce,
        )

    @get(
        "/",
        responses=problem_responses(),
        summary="List providers",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def list_(
        self, tenant: NamedDependency[TenantScope], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[schemas.Provider]:
        return await service.list_providers(tenant, limit=limit, cursor=cursor)

    @get(
        "/{provider_id:uuid}",
        responses=problem_responses(),
        summary="Read a provider",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], provider_id: FromPath[uuid.UUID]
    ) -> schemas.Provider:
        return await service.get_provider(tenant, provider_id)
