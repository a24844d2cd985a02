"""Webhook routes of a practice. Its system (or owner) manages subscriptions; the practice and the staff
assigned to it list deliveries and replay one. Another practice's subscription or delivery is the standard
404. Writes take an Idempotency-Key (the creation's stored answer holds the secret, encrypted like every
stored response, so a retry gets it again)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.admin_read import Cursor, Limit
from rcm.identity.guards import requires_roles
from rcm.identity.principal import Role
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope
from rcm.webhooks import schemas, service
from rcm.webhooks.models import DeliveryStatus

_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)
StatusFilter = Annotated[DeliveryStatus | None, QueryParameter(description="Only deliveries in this status")]
PRACTICE = (Role.PRACTICE_CLIENT, Role.PRACTICE_OWNER)
ASSIGNED_STAFF = (Role.CODER, Role.BILLER, Role.SUPERVISOR)


class WebhookSubscriptionController(Controller):
    """A practice's subscriptions: its own system or owner only (staff never see where webhooks go)."""

    path = "/api/v1/tenants/{tenant_slug:str}/webhooks/subscriptions"
    tags = ["webhooks"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_roles(*PRACTICE)]

    @post(
        "/",
        summary="Subscribe a URL to events; the signing secret is in this answer only",
        responses=created_responses(schemas.SubscriptionSecret, 201),
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[schemas.SubscriptionCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        env = state.settings.env

        async def produce() -> tuple[int, schemas.SubscriptionSecret]:
            return 201, await service.create_subscription(tenant, data, env=env)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.SUBSCRIPTION, produce=produce
        )

    @get("/", summary="The practice's subscriptions (keyset paged; no secrets)", responses=_ERRORS)
    async def list_(
        self, *, tenant: NamedDependency[TenantScope], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[schemas.Subscription]:
        return await service.list_subscriptions(tenant, limit=limit, cursor=cursor)

    @get("/{subscription_id:uuid}", summary="A subscription (no secret)", responses=_ERRORS)
    async def read(
        self, tenant: NamedDependency[TenantScope], subscription_id: FromPath[uuid.UUID]
    ) -> schemas.Subscription:
        return await service.read_subscription(tenant, subscription_id)

    @post(
        "/{subscription_id:uuid}",
        status_code=200,
        summary="Change a subscription: pause or resume it (active), its URL or its event types",
        responses=created_responses(schemas.Subscription, 200),
    )
    async def update(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        subscription_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.SubscriptionUpdate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        env = state.settings.env

        async def produce() -> tuple[int, schemas.Subscription]:
            return 200, await service.update_subscription(tenant, subscription_id, data, env=env)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.SUBSCRIPTION, produce=produce
        )

    @post(
        "/{subscription_id:uuid}/rotate",
        status_code=200,
        summary="Replace the signing secret (the new one is in this answer only)",
        responses=created_responses(schemas.SubscriptionSecret, 200),
    )
    async def rotate(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        subscription_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.SubscriptionSecret]:
            return 200, await service.rotate_secret(tenant, subscription_id)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.SUBSCRIPTION, produce=produce
        )

    @delete(
        "/{subscription_id:uuid}",
        status_code=204,
        summary="Unsubscribe (its secret is erased; pending deliveries are not sent)",
        responses=_ERRORS,
    )
    async def remove(
        self, tenant: NamedDependency[TenantScope], subscription_id: FromPath[uuid.UUID]
    ) -> None:
        await service.delete_subscription(tenant, subscription_id)


class WebhookDeliveryController(Controller):
    """The practice's deliveries, for its system, its owner and the staff assigned to it."""

    path = "/api/v1/tenants/{tenant_slug:str}/webhooks/deliveries"
    tags = ["webhooks"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_roles(*PRACTICE, *ASSIGNED_STAFF)]

    @get("/", summary="Deliveries (keyset paged; filter by status or subscription)", responses=_ERRORS)
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        delivery_status: StatusFilter = None,
        subscription_id: FromQuery[uuid.UUID | None] = None,
    ) -> Page[schemas.Delivery]:
        return await service.list_deliveries(
            tenant, limit=limit, cursor=cursor, status=delivery_status, subscription_id=subscription_id
        )

    @get("/{delivery_id:uuid}", summary="A delivery, its body and every attempt", responses=_ERRORS)
    async def read(
        self, tenant: NamedDependency[TenantScope], delivery_id: FromPath[uuid.UUID]
    ) -> schemas.DeliveryDetail:
        return await service.read_delivery(tenant, delivery_id)

    @post(
        "/{delivery_id:uuid}/replay",
        status_code=202,
        summary="Send a delivered or dead delivery again (same Webhook-Id and body)",
        responses=created_responses(schemas.Delivery, 202),
    )
    async def replay(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        delivery_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Delivery]:
            return 202, await service.replay(tenant, delivery_id)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.DELIVERY, produce=produce
        )
