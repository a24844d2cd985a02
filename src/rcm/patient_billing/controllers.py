"""Patient billing routes, under a tenant: for the practice's systems and the staff assigned to it.

Reads (a balance, payments, plans, statements) need ``patients:read``; posting money, plans and statement
runs need ``payments:write`` (billers). Every read of a patient's money or statement is audited as PHI."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from rcm.blobs.download import stream_blob
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity.guards import requires_any_scope, requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.patient_billing import schemas, service, statements
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

_READ = [requires_scopes(Scope.PATIENTS_READ)]
_WRITE = [requires_scopes(Scope.PAYMENTS_WRITE)]
# A practice's own system may post what its front desk collects; refunds and plans stay with billers.
_PAY = [requires_any_scope(Scope.PAYMENTS_WRITE, Scope.PATIENT_PAYMENTS_WRITE)]


class PatientAccountController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/patients/{patient_id:uuid}"
    tags = ["patient billing"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @get(
        "/balance",
        guards=_READ,
        responses=problem_responses(),
        summary="A patient's balance: the sum of the ledger's patient-responsibility entries, by visit, aged",
    )
    async def balance(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> schemas.PatientBalance:
        return await service.patient_balance(tenant, patient_id)

    @get("/payments", guards=_READ, responses=problem_responses(), summary="A patient's payments and refunds")
    async def payments(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> list[schemas.PatientPaymentView]:
        return await service.list_payments(tenant, patient_id)

    @post(
        "/payments",
        guards=_PAY,
        responses=created_responses(schemas.PatientPaymentView),
        summary="Post a patient payment to the ledger (applied to the oldest visits first)",
        description="The amount may not exceed the patient's balance; with a payment plan in force it pays "
        "the plan's installments in order.",
    )
    async def pay(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.PatientPaymentCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.PatientPaymentView]:
            return await service.post_payment(tenant, patient_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.PAYMENT, produce=produce
        )

    @post(
        "/refunds",
        guards=_WRITE,
        responses=created_responses(schemas.PatientPaymentView),
        summary="Refund (part of) a patient payment: never more than is left of it",
    )
    async def refund(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.PatientRefundCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.PatientPaymentView]:
            return await service.post_refund(tenant, patient_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.PAYMENT, produce=produce
        )

    @get("/payment-plans", guards=_READ, responses=problem_responses(), summary="A patient's payment plans")
    async def plans(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> list[schemas.PaymentPlanView]:
        return await service.list_plans(tenant, patient_id)

    @post(
        "/payment-plans",
        guards=_WRITE,
        responses=created_responses(schemas.PaymentPlanView),
        summary="Put the patient on a payment plan (installment amount and schedule)",
    )
    async def create_plan(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.PaymentPlanCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.PaymentPlanView]:
            return await service.create_plan(tenant, patient_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.PLAN, produce=produce
        )

    @post(
        "/payment-plans/{plan_id:uuid}/cancel",
        guards=_WRITE,
        status_code=200,
        responses=created_responses(schemas.PaymentPlanView, status=200),
        summary="Cancel a patient's active payment plan",
    )
    async def cancel_plan(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        patient_id: FromPath[uuid.UUID],
        plan_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.PaymentPlanView]:
            return 200, await service.cancel_plan(tenant, patient_id, plan_id)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.PLAN, produce=produce
        )

    @get(
        "/statements",
        guards=_READ,
        responses=problem_responses(),
        summary="A patient's statements and small-balance write-offs",
    )
    async def patient_statements(
        self, tenant: NamedDependency[TenantScope], patient_id: FromPath[uuid.UUID]
    ) -> list[schemas.PatientStatement]:
        return await statements.patient_statements(tenant, patient_id)


class StatementController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}"
    tags = ["patient billing"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/statement-runs",
        guards=_WRITE,
        status_code=202,
        responses={
            **created_responses(schemas.StatementRunView, status=202),
            200: ResponseSpec(
                data_container=schemas.StatementRunView, description="The cycle's run, asked for before"
            ),
        },
        summary="Run this cycle's patient statements (a job; one run per practice cycle)",
    )
    async def start(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.StatementRunCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.StatementRunView]:
            return await statements.start_run(tenant, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=statements.RUN, produce=produce
        )

    @get(
        "/statement-runs",
        guards=_READ,
        responses=problem_responses(),
        summary="The practice's statement runs",
    )
    async def runs(
        self, *, tenant: NamedDependency[TenantScope], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[schemas.StatementRunView]:
        return await statements.list_runs(tenant, limit=limit, cursor=cursor)

    @get(
        "/statement-runs/{run_id:uuid}",
        guards=_READ,
        responses=problem_responses(),
        summary="A statement run's progress",
    )
    async def run(
        self, tenant: NamedDependency[TenantScope], run_id: FromPath[uuid.UUID]
    ) -> schemas.StatementRunView:
        return await statements.get_run(tenant, run_id)

    @get(
        "/statement-runs/{run_id:uuid}/statements",
        guards=_READ,
        responses=problem_responses(),
        summary="The statements and write-offs of a run",
    )
    async def run_statements(
        self, tenant: NamedDependency[TenantScope], run_id: FromPath[uuid.UUID]
    ) -> list[schemas.PatientStatement]:
        return await statements.run_statements_list(tenant, run_id)

    @post(
        "/payment-plans/review",
        guards=_WRITE,
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 422, 429),
        summary="Mark missed installments and default plans past the practice's limit (runs also do it)",
    )
    async def review(
        self, tenant: NamedDependency[TenantScope], data: JSONBody[schemas.PaymentPlanReview]
    ) -> schemas.PaymentPlanReviewResult:
        missed, defaulted = await service.review_plans(tenant, as_of=service.review_date(data.as_of))
        return schemas.PaymentPlanReviewResult(installments_missed=missed, plans_defaulted=defaulted)

    @get(
        "/statements/{statement_id:uuid}/{file_format:str}",
        guards=_READ,
        responses=problem_responses(),
        summary="Download a statement: pdf, json or csv",
    )
    async def download(
        self,
        tenant: NamedDependency[TenantScope],
        state: State,
        statement_id: FromPath[uuid.UUID],
        file_format: FromPath[str],
    ) -> Stream:
        blob_id = await statements.open_statement(tenant, statement_id, file_format)
        # The file's name is the statement's id: never the patient's.
        return stream_blob(
            tenant,
            state,
            blob_id,
            job="statement.download",
            media_type=statements.FORMATS[file_format],
            filename=f"statement-{statement_id}.{file_format}",
        )
