"""Ledger routes: a claim's entries and balance, for the practice (its systems and owners) and for the staff
assigned to it (billers and supervisors); billers' 835 uploads; the unassigned-ERA queue (supervisors, and
platform admins for the whole of it); a practice's deposits and its EFT reassociation report. A claim of any
other practice is the same 404 as none; an uploaded payment whose payee is not one of the caller's practices
is queued for routing by hand.

The upload takes no Idempotency-Key: a payment is posted once by its trace number, payer and amount (the
database's unique key), so a retried upload is answered with its sets as duplicates and posts nothing."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from rcm.audit.events import Action, request_info_from
from rcm.blobs.store import BlobStore
from rcm.claims import service as claims
from rcm.claims.repository import ClaimRepository
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.principal import Role
from rcm.identity.scopes import ADMIN, Scope
from rcm.kit.db import platform_transaction
from rcm.kit.errors import FieldError, InvalidInput, problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.ledger import deposits, intake, schemas, service
from rcm.ledger import release as releases
from rcm.ledger import unassigned_store as unassigned
from rcm.ledger.models import RemittanceState
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.service import tenant_by_slug
from rcm.tenancy.staff import one_practice, provide_staff_scope
from rcm.tenancy.vocabulary import TenantStatus

_ERRORS = problem_responses()


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
            state.keystore.provider,
            BlobStore.from_settings(settings),
            SecretResolver(settings.secrets_dir),
            await request.body(),
        )

    @post(
        "/remittances/{remittance_id:uuid}/release",
        guards=[requires_scopes(Scope.PAYMENTS_WRITE)],
        summary="Review a held payment: post it whole (its balance checked again; one that still does not "
        "balance only with accept_imbalance, the difference to unapplied), discard it, or route it to the "
        "practice it belongs to (tenant: one of yours; or unassigned: the unassigned-ERA queue), posted or "
        "held there as an incoming payment would be; with a reason. One decision per payment: the same "
        "again answers it, another is a 409",
        responses=created_responses(schemas.ReleaseView, 200),
    )
    async def release(
        self,
        *,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        state: State,
        remittance_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ReleaseCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        practice = await releases.remittance_practice(staff, remittance_id)
        destination = await releases.staff_destination(staff, practice, data, state.keystore.provider)
        store = BlobStore.from_settings(state.settings)

        async def produce() -> tuple[int, schemas.ReleaseView]:
            return 200, await releases.release(practice, store, remittance_id, data, destination=destination)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=releases.RELEASE, produce=produce
        )


class UnassignedRemittanceController(Controller):
    """The unassigned-ERA queue for supervisors: payments a biller of their practices uploaded whose payee
    named none of them (or several), listed without PHI and routed by hand to one of the supervisor's
    practices (``rcm.ledger.unassigned_store``)."""

    path = "/api/v1/billing/unassigned-remittances"
    tags = ["ledger"]
    guards = [requires_roles(Role.SUPERVISOR), requires_scopes(Scope.PAYMENTS_READ)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @get("", summary="Payments no practice was found for (open, or routed), oldest first", responses=_ERRORS)
    async def queue(
        self,
        staff: NamedDependency[StaffScope],
        routed: Annotated[bool, QueryParameter(description="Routed ones instead of open ones")] = False,
    ) -> list[schemas.UnassignedView]:
        rows = await unassigned.listed(staff.session, visible_to=list(staff.tenant_ids), routed=routed)
        staff.audit(
            "remittance.unassigned_list",
            Action.READ,
            resource_type=unassigned.RESOURCE,
            detail={"count": len(rows), "routed": routed},
        )
        return [unassigned.view(row) for row in rows]

    @post(
        "/{queued_id:uuid}/route",
        guards=[requires_scopes(Scope.PAYMENTS_WRITE)],
        summary="Route a queued payment to one of your practices: posted there as if its payee had named "
        "it (a payment received before is still refused as a duplicate); a second routing is a 409",
        responses=created_responses(schemas.RoutedUnassigned, 200),
    )
    async def route(
        self,
        *,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        state: State,
        queued_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RouteUnassigned],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        tenant = await tenant_by_slug(staff.session, data.tenant)
        if tenant is None or tenant.id not in staff.tenant_ids:
            raise InvalidInput(
                "No practice of yours has this slug.", errors=[FieldError("/tenant", "unknown")]
            )
        practice = await one_practice(staff, tenant.id)
        provider = state.keystore.provider

        async def produce() -> tuple[int, schemas.RoutedUnassigned]:
            row, file = await unassigned.take(staff.session, queued_id, visible_to=list(staff.tenant_ids))
            if tenant.id not in row.candidates:
                raise InvalidInput(
                    "This payment may not be routed to that practice.",
                    errors=[FieldError("/tenant", "is not among the practices it may go to")],
                )
            store = BlobStore.from_settings(state.settings)
            return 200, await intake.route_by_hand(practice, provider, store, row, file)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=unassigned.RESOURCE, produce=produce
        )


class AdminUnassignedRemittanceController(Controller):
    """The whole unassigned-ERA queue for platform admins (admin role and scope, a second factor): the
    operator's imports (``rcm remit import``) included, routed to any active practice."""

    path = "/api/v1/admin/unassigned-remittances"
    tags = ["ledger"]
    guards = [requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa]

    @get(
        "",
        summary="Every payment no practice was found for (open, or routed), oldest first",
        responses=_ERRORS,
    )
    async def queue(
        self,
        request: Request[Any, Any, Any],
        state: State,
        routed: Annotated[bool, QueryParameter(description="Routed ones instead of open ones")] = False,
    ) -> list[schemas.UnassignedView]:
        async with platform_transaction(state.sessions) as session:
            rows = await unassigned.listed(session, visible_to=None, routed=routed)
            await unassigned.listed_audit(
                session, current_principal(request), request_info_from(request), [r.id for r in rows]
            )
        return [unassigned.view(row) for row in rows]

    @post(
        "/{queued_id:uuid}/route",
        summary="Route a queued payment to a practice: posted there as if its payee had named it (a payment "
        "received before is still refused as a duplicate); a second routing is a 409",
        responses=created_responses(schemas.RoutedUnassigned, 200),
    )
    async def route(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        queued_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RouteUnassigned],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async with platform_transaction(state.sessions) as session:
            tenant = await tenant_by_slug(session, data.tenant)
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            raise InvalidInput("No active practice has this slug.", errors=[FieldError("/tenant", "unknown")])
        provider = state.keystore.provider
        store = BlobStore.from_settings(state.settings)
        async with job_tenant_scope(
            state.sessions,
            state.keystore,
            TenantId(tenant.id),
            actor=current_principal(request),
            request=request_info_from(request),
            job="remittance.route_by_hand",
        ) as practice:

            async def produce() -> tuple[int, schemas.RoutedUnassigned]:
                row, file = await unassigned.take(practice.session, queued_id, visible_to=None)
                return 200, await intake.route_by_hand(practice, provider, store, row, file)

            return await run_idempotent(
                practice, request, key=idempotency_key, resource_type=unassigned.RESOURCE, produce=produce
            )


class DepositController(Controller):
    """A practice's bank deposits (the practice's systems and owners, its billers) and the EFT reassociation
    report pairing them with the 835 payments received (``rcm.ledger.deposits``)."""

    path = "/api/v1/tenants/{tenant_slug:str}"
    tags = ["ledger"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/deposits",
        guards=[requires_scopes(Scope.PAYMENTS_WRITE)],
        responses=created_responses(schemas.DepositView),
        summary="Report a bank deposit (date, cents, the EFT trace number): paired with 835 payments by the "
        "EFT reassociation report",
    )
    async def deposit(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.DepositCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.DepositView]:
            return await deposits.record(tenant, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=deposits.DEPOSIT, produce=produce
        )

    @get(
        "/reports/eft-reassociation",
        guards=[requires_scopes(Scope.PAYMENTS_READ)],
        responses=_ERRORS,
        summary="835 payments paired with the deposits that carried them (by trace number, else amount and "
        "a date within 3 days), what is left on either side, and totals",
    )
    async def reassociation(
        self,
        tenant: NamedDependency[TenantScope],
        since: Annotated[
            date | None, QueryParameter(description="First day (default: 30 days before until)")
        ] = None,
        until: Annotated[
            date | None, QueryParameter(description="Last day, included (default: today)")
        ] = None,
    ) -> schemas.EftReassociation:
        return await deposits.reassociation(tenant, since=since, until=until)
