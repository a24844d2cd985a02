"""Claim routes: a practice reads its claims' status; billers work the billing queue and act on claims
across the practices they are assigned to; supervisors see the billing queue's depth and age.

Staff routes span the caller's practices (``StaffScope``: their own assignments, never break-glass); a claim
or item of any other practice is the same 404 as one that does not exist. Writes take an Idempotency-Key:
a retry gets the first answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.audit.events import request_info_from
from rcm.claims import batch_views, billing, schemas, service, submission
from rcm.claims.batches import BATCH
from rcm.claims.building import CLAIM
from rcm.claims.states import ClaimState
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.kit.secrets import SecretResolver
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import provide_staff_scope

_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)
# ``state`` is a reserved parameter name in litestar (the app state), hence ``claim_state``.
StateFilter = Annotated[ClaimState | None, QueryParameter(description="Only claims in this state")]


def _json(status: int, payload: Any) -> Response[bytes]:
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json")


class ClaimController(Controller):
    """A practice's claims: their status, lines and every transition (practice systems and owners)."""

    path = "/api/v1/tenants/{tenant_slug:str}/claims"
    tags = ["claims"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(Scope.CLAIMS_READ)]

    @get("/", summary="List the practice's claims (keyset paged; filter by state)", responses=_ERRORS)
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        claim_state: StateFilter = None,
        encounter_id: FromQuery[uuid.UUID | None] = None,
    ) -> Page[schemas.ClaimSummary]:
        return await service.list_claims(
            tenant, limit=limit, cursor=cursor, state=claim_state, encounter_id=encounter_id
        )

    @get(
        "/{claim_id:uuid}",
        summary="A claim: state, payer claim control number, lines, events",
        responses=_ERRORS,
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], claim_id: FromPath[uuid.UUID]
    ) -> schemas.Claim:
        return await service.read_claim(tenant, claim_id)


async def _on_claim(
    staff: StaffScope,
    request: Request[Any, Any, Any],
    claim_id: uuid.UUID,
    action: Callable[[TenantScope], Awaitable[schemas.Claim]],
    *,
    key: str | None,
    status: int = 200,
) -> Response[bytes]:
    practice = await service.claim_practice(staff, claim_id)

    async def produce() -> tuple[int, schemas.Claim]:
        return status, await action(practice)

    return await run_idempotent(practice, request, key=key, resource_type=CLAIM, produce=produce)


class BillingController(Controller):
    """A biller's queue and claims across the practices they are assigned to."""

    path = "/api/v1/billing"
    tags = ["billing"]
    guards = [requires_roles(Role.BILLER, Role.SUPERVISOR), requires_scopes(Scope.CLAIMS_WRITE)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @post(
        "/next",
        summary="Lease the next billing item (fair across your practices) and open it",
        responses={
            200: ResponseSpec(data_container=schemas.BillingTask, description="The item, now held by you"),
            204: ResponseSpec(data_container=None, description="Nothing to work in your practices"),
            **_ERRORS,
        },
    )
    async def next_(
        self, request: Request[Principal, Any, Any], state: State, idempotency_key: IdemKey = None
    ) -> Response[bytes]:
        check_key(idempotency_key)
        task = await billing.next_task(
            state.sessions, state.keystore, request.user, request_info_from(request)
        )
        if task is None:
            return Response(b"", status_code=204)
        return _json(200, task)

    @get("/items/{item_id:uuid}", summary="Open a billing item you hold, with its claim", responses=_ERRORS)
    async def read_item(
        self, staff: NamedDependency[StaffScope], item_id: FromPath[uuid.UUID]
    ) -> schemas.BillingTask:
        return await billing.open_task(staff, item_id)

    @post(
        "/items/{item_id:uuid}/release",
        summary="Give an item you hold back to the queue, unfinished",
        responses=created_responses(schemas.BillingItem, 200),
    )
    async def release(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await billing.billing_item(staff, item_id)

        async def produce() -> tuple[int, schemas.BillingItem]:
            return 200, await billing.release(staff, practice, item_id)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=billing.BILLING_TASK, produce=produce
        )

    @post(
        "/items/{item_id:uuid}/complete",
        summary="Finish an item: resubmit, replace, void or close its claim (or corrected), with a reason",
        responses=created_responses(schemas.Completed, 200),
    )
    async def complete(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CompleteItem],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await billing.billing_item(staff, item_id)

        async def produce() -> tuple[int, schemas.Completed]:
            return 200, await billing.complete(
                staff, practice, item_id, data, secrets=SecretResolver(request.app.state.settings.secrets_dir)
            )

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=billing.BILLING_TASK, produce=produce
        )

    @get("/claims", summary="Claims of your practices (keyset paged; filter by state)", responses=_ERRORS)
    async def claims(
        self,
        *,
        staff: NamedDependency[StaffScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        claim_state: StateFilter = None,
    ) -> Page[schemas.ClaimSummary]:
        return await service.staff_claims(staff, limit=limit, cursor=cursor, state=claim_state)

    @get(
        "/claims/{claim_id:uuid}",
        summary="A claim of your practices, with lines and events",
        responses=_ERRORS,
    )
    async def claim(self, staff: NamedDependency[StaffScope], claim_id: FromPath[uuid.UUID]) -> schemas.Claim:
        return await service.read_claim(await service.claim_practice(staff, claim_id), claim_id)

    @post(
        "/claims/{claim_id:uuid}/resubmit",
        summary="Send a corrected rejected claim again (back to ready, for the next batch)",
        responses=created_responses(schemas.Claim, 200),
    )
    async def resubmit(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ResubmitClaim],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        return await _on_claim(
            staff, request, claim_id, lambda p: service.resubmit(p, claim_id, data), key=idempotency_key
        )

    @post(
        "/claims/{claim_id:uuid}/replace",
        summary="Replace a claim the payer holds (frequency 7, referencing its claim control number)",
        responses=created_responses(schemas.Claim, 201),
    )
    async def replace(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ReplaceClaim],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        return await _on_claim(
            staff,
            request,
            claim_id,
            lambda p: service.replace(
                p, claim_id, data, secrets=SecretResolver(request.app.state.settings.secrets_dir)
            ),
            key=idempotency_key,
            status=201,
        )

    @post(
        "/claims/{claim_id:uuid}/void",
        summary="Void a claim (in place before the payer has it; by a frequency-8 claim after)",
        responses=created_responses(schemas.Claim, 200),
    )
    async def void(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.VoidClaim],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        return await _on_claim(
            staff, request, claim_id, lambda p: service.void(p, claim_id, data), key=idempotency_key
        )

    @post(
        "/claims/{claim_id:uuid}/close",
        summary="Close a claim with a reason",
        responses=created_responses(schemas.Claim, 200),
    )
    async def close(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        claim_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CloseClaim],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        return await _on_claim(
            staff, request, claim_id, lambda p: service.close(p, claim_id, data), key=idempotency_key
        )

    @post(
        "/submission-batches/{batch_id:uuid}/replay",
        summary="Send a dead-lettered submission batch again (back to pending; its dead-letter item done)",
        responses=created_responses(schemas.Batch, 200),
    )
    async def replay(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        batch_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        practice = await submission.batch_practice(staff, batch_id)

        async def produce() -> tuple[int, schemas.Batch]:
            batch = await submission.replay(practice, batch_id, actor=staff.principal.subject)
            return 200, batch_views.batch_view(batch)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=BATCH, produce=produce
        )


class BillingSupervisionController(Controller):
    """Supervisors: the billing queue over the practices they supervise."""

    path = "/api/v1/supervision/billing"
    tags = ["supervision"]
    guards = [requires_roles(Role.SUPERVISOR), requires_scopes(Scope.STAFF_MANAGE)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @get("/", summary="Billing queue depth and age per practice and per reason", responses=_ERRORS)
    async def report(self, staff: NamedDependency[StaffScope]) -> schemas.BillingQueueReport:
        return await billing.queue_report(staff)
