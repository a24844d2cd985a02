"""Ledger routes: a claim's entries and balance, for the practice (its systems and owners) and for the staff
assigned to it (billers and supervisors); and billers' 835 uploads. A claim of any other practice is the same
404 as none; an uploaded payment whose payee is not one of the caller's practices is left unassigned.

The upload takes no Idempotency-Key: a payment is posted once by its trace number, payer and amount (the
database's unique key), so a retried upload is answered with its sets as duplicates and posts nothing."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from rcm.blobs.store import BlobStore
from rcm.claims import service as claims
from rcm.claims.repository import ClaimRepository
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.kit.secrets import SecretResolver
from rcm.ledger import intake, schemas, service
from rcm.ledger.models import RemittanceState
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import provide_staff_scope

_ERRORS = problem_responses(400, 401, 403, 404, 429)


async def _ledger(practice: TenantScope, claim_id: uuid.UUID) -> schemas.ClaimLedger:
    claim = await practice.repo(ClaimRepository).get_or_404(claim_id)
    return await service.claim_ledger(practice, claim)


class ClaimLedgerController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/claims"
    tags = ["ledger"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(Scope.CLAIMS_READ)]

    @get(
        "/{claim_id:uuid}/ledger",
        summary="A claim's ledger: every entry (charges, payments, adjustments) and its balance",
        responses=_ERRORS,
    )
    async def ledger(
        self, tenant: NamedDependency[TenantScope], claim_id: FromPath[uuid.UUID]
    ) -> schemas.ClaimLedger:
        return await _ledger(tenant, claim_id)


class BillingLedgerController(Controller):
    """Billers' money: a claim's ledger, and 835 files uploaded and posted across their practices."""

    path = "/api/v1/billing"
    tags = ["ledger"]
    guards = [requires_roles(Role.BILLER, Role.SUPERVISOR), requires_scopes(Scope.PAYMENTS_READ)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @get(
        "/claims/{claim_id:uuid}/ledger",
        summary="The ledger of a claim of your practices: entries and balance",
        responses=_ERRORS,
    )
    async def ledger(
        self, staff: NamedDependency[StaffScope], claim_id: FromPath[uuid.UUID]
    ) -> schemas.ClaimLedger:
        return await _ledger(await claims.claim_practice(staff, claim_id), claim_id)

    @get(
        "/remittances",
        summary="The 835 payments received in your practices: posted, or held with the reason",
        responses=_ERRORS,
    )
    async def remittances(
        self,
        *,
        staff: NamedDependency[StaffScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        remittance_state: Annotated[
            RemittanceState | None, QueryParameter(description="Only payments in this state")
        ] = None,
    ) -> Page[schemas.RemittanceView]:
        return await service.staff_remittances(staff, limit=limit, cursor=cursor, state=remittance_state)

    @post(
        "/remittances",
        guards=[requires_scopes(Scope.PAYMENTS_WRITE)],
        summary="Upload an 835 (raw X12 body): each payment routed to your practice its payee names and "
        "posted; a payment received before is refused as a duplicate",
        responses={
            200: ResponseSpec(
                data_container=schemas.RemittanceImport, description="What was posted, held, refused"
            ),
            **_ERRORS,
        },
        status_code=200,
    )
    async def upload(
        self, staff: NamedDependency[StaffScope], request: Request[Any, Any, Any], state: State
    ) -> schemas.RemittanceImport:
        settings = state.settings
        return await intake.upload(
            staff,
            BlobStore.from_settings(settings),
            SecretResolver(settings.secrets_dir),
            await request.body(),
        )
