"""Routes of the coding queue (coders), QA reviews, supervision (supervisors) and the practice's answers.

Staff routes span the caller's practices (``StaffScope``: their own staff assignments, never break-glass);
an item or sample of any other practice is the same 404 as one that does not exist. Writes need an
Idempotency-Key: a retry gets the first answer (``next`` is idempotent by nature: a coder holding an item
gets that item again).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.audit.events import request_info_from
from rcm.coding import qa, schemas, service, supervision
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity.admin_people import AssignmentOut, assign_to_practice, unassign_from_practice
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT
from rcm.patients.controllers import Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import provide_staff_scope
from rcm.workqueue.models import QueueKind

_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)
Since = Annotated[datetime | None, QueryParameter(description="Start of the window (default: a day ago)")]
Until = Annotated[datetime | None, QueryParameter(description="End of the window (default: now)")]
Period = Annotated[Literal["day", "week", "month"], QueryParameter(description="Reporting period")]


def _json(status: int, payload: Any) -> Response[bytes]:
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json")


class CodingController(Controller):
    """A coder's queue across the practices they are assigned to."""

    path = "/api/v1/coding"
    tags = ["coding"]
    guards = [requires_roles(Role.CODER, Role.SUPERVISOR), requires_scopes(Scope.CODING_WRITE)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @post(
        "/next",
        summary="Lease the next coding item (fair across your practices) and open it",
        responses={
            200: ResponseSpec(data_container=schemas.CodingTask, description="The item, now held by you"),
            204: ResponseSpec(data_container=None, description="Nothing to code in your practices"),
            **_ERRORS,
        },
    )
    async def next_(
        self, request: Request[Principal, Any, Any], state: State, idempotency_key: IdemKey = None
    ) -> Response[bytes]:
        check_key(idempotency_key)
        task = await service.next_task(
            state.sessions, state.keystore, request.user, request_info_from(request)
        )
        if task is None:
            return Response(b"", status_code=204)
        return _json(200, task)

    @get(
        "/items/{item_id:uuid}",
        summary="Open an item you hold: documentation (audited), the practice's codes, your draft, queries",
        responses=_ERRORS,
    )
    async def read(
        self, staff: NamedDependency[StaffScope], item_id: FromPath[uuid.UUID]
    ) -> schemas.CodingTask:
        return await service.open_task(staff, item_id)

    @put(
        "/items/{item_id:uuid}/draft",
        summary="Save a draft of your coding (a new version; the same body twice is the same draft)",
        responses=_ERRORS,
    )
    async def draft(
        self,
        staff: NamedDependency[StaffScope],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CodingCreate],
    ) -> schemas.Coding:
        return await service.save_draft(staff, item_id, data)

    @post(
        "/items/{item_id:uuid}/complete",
        summary="Complete an item: every code valid on the date of service, pointers in range",
        responses=created_responses(schemas.Completed, 200),
    )
    async def complete(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CodingCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await service.coding_item(staff, item_id)

        async def produce() -> tuple[int, schemas.Completed]:
            return 200, await service.complete(staff, practice, item_id, data)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=service.CODING_TASK, produce=produce
        )

    @post(
        "/items/{item_id:uuid}/release",
        summary="Give an item you hold back to the queue, unfinished",
        responses=created_responses(schemas.WorkItem, 200),
    )
    async def release(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await service.coding_item(staff, item_id)

        async def produce() -> tuple[int, schemas.WorkItem]:
            return 200, await service.release(staff, practice, item_id)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=service.CODING_TASK, produce=produce
        )

    @post(
        "/items/{item_id:uuid}/queries",
        summary="Ask the practice a question; the item waits until it answers, then returns to the queue",
        responses=created_responses(schemas.Query),
    )
    async def ask(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.QueryCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await service.coding_item(staff, item_id)

        async def produce() -> tuple[int, schemas.Query]:
            return 201, await service.ask(staff, practice, item_id, data)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=service.CODING_QUERY, produce=produce
        )

    # QA reviews (reviewers: coders and supervisors marked qa_reviewer on their assignment) ----------------

    @get(
        "/qa/samples",
        summary="Open QA samples of the practices you review (never your own work)",
        responses=_ERRORS,
    )
    async def samples(
        self, staff: NamedDependency[StaffScope], limit: Limit = DEFAULT_LIMIT
    ) -> schemas.Samples:
        return await qa.open_samples(staff, limit=limit)

    @get(
        "/qa/samples/{sample_id:uuid}",
        summary="A QA sample to re-code blind: the documentation, not the coding under review",
        responses=_ERRORS,
    )
    async def sample(
        self, staff: NamedDependency[StaffScope], sample_id: FromPath[uuid.UUID]
    ) -> schemas.ReviewTask:
        return await qa.review_task(staff, sample_id)

    @post(
        "/qa/samples/{sample_id:uuid}/review",
        summary="Record your blind coding of a sample; the agreement with the original is scored",
        responses=created_responses(schemas.Sample, 200),
    )
    async def review(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        sample_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CodingCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await qa.reviewer_practice(staff, sample_id)

        async def produce() -> tuple[int, schemas.Sample]:
            return 200, await qa.review(staff, sample_id, data)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=qa.QA_SAMPLE, produce=produce
        )


class SupervisionController(Controller):
    """Supervisors, over the practices they supervise (the ones they are assigned to)."""

    path = "/api/v1/supervision"
    tags = ["supervision"]
    guards = [requires_roles(Role.SUPERVISOR), requires_scopes(Scope.STAFF_MANAGE)]
    dependencies = {"staff": Provide(provide_staff_scope)}

    @get("/queue", summary="Queue depth, age and SLA breaches per practice and per coder", responses=_ERRORS)
    async def queue(
        self,
        staff: NamedDependency[StaffScope],
        kind: FromQuery[QueueKind] = QueueKind.CODING,
        since: Since = None,
    ) -> schemas.QueueReport:
        return await supervision.queue_report(staff, kind, since=since or supervision.default_since())

    @post(
        "/items/{item_id:uuid}/reassign",
        summary="Hand an item to a coder of its practice (their lease from now)",
        responses=created_responses(schemas.WorkItem, 200),
    )
    async def reassign(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.Reassign],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        _, practice = await service.coding_item(staff, item_id)

        async def produce() -> tuple[int, schemas.WorkItem]:
            return 200, await supervision.reassign(staff, practice, item_id, data)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=service.CODING_TASK, produce=produce
        )

    @put(
        "/items/{item_id:uuid}/priority",
        summary="Re-prioritise an item (and move its due date)",
        responses=_ERRORS,
    )
    async def reprioritise(
        self,
        staff: NamedDependency[StaffScope],
        item_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.Reprioritise],
    ) -> schemas.WorkItem:
        _, practice = await service.coding_item(staff, item_id)
        return await supervision.reprioritise(staff, practice, item_id, data)

    @post(
        "/staff/{user_id:uuid}/assignments",
        summary="Assign a coder or biller to a practice you supervise (never yourself)",
        responses=created_responses(AssignmentOut, 201),
        guards=[requires_mfa],
    )
    async def assign(
        self,
        *,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        state: State,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.StaffAssign],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        # Unsupervised: the same 422 as no practice. (No keyring is opened here: the control transaction
        # below may create the practice's first data key, and must not wait on this one.)
        await supervision.supervised(staff, data.tenant)
        return await assign_to_practice(
            request,
            state,
            user_id=user_id,
            tenant_slug=data.tenant,
            qa_reviewer=data.qa_reviewer,
            idempotency_key=idempotency_key,
            access="supervisor",
            check=supervision.assignment_check(staff.tenant_ids),
        )

    @delete(
        "/staff/{user_id:uuid}/assignments/{tenant_slug:str}",
        status_code=204,
        summary="End a coder's or biller's assignment to a practice you supervise (never your own)",
        responses=_ERRORS,
        guards=[requires_mfa],
    )
    async def unassign(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        state: State,
        user_id: FromPath[uuid.UUID],
        tenant_slug: FromPath[str],
    ) -> None:
        await unassign_from_practice(
            request,
            state,
            user_id=user_id,
            tenant_slug=tenant_slug,
            access="supervisor",
            check=supervision.assignment_check(staff.tenant_ids),
        )

    @post(
        "/qa/samples",
        summary="Sample a practice's completed codings for blind QA review",
        responses=created_responses(schemas.Samples, 201),
    )
    async def sample(
        self,
        staff: NamedDependency[StaffScope],
        request: Request[Any, Any, Any],
        data: JSONBody[schemas.SampleCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        practice = await supervision.practice_by_slug(staff, data.tenant)

        async def produce() -> tuple[int, schemas.Samples]:
            return 201, await qa.draw(staff, practice, data)

        return await run_idempotent(
            practice, request, key=idempotency_key, resource_type=qa.QA_SAMPLE, produce=produce
        )

    @get(
        "/qa/agreement",
        summary="QA agreement per coder over time (diagnosis and procedure level)",
        responses=_ERRORS,
    )
    async def agreement(
        self,
        staff: NamedDependency[StaffScope],
        since: Since = None,
        until: Until = None,
        period: Period = "week",
    ) -> schemas.AgreementReport:
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=90)
        return await qa.agreement_report(staff, since=start, until=end, period=period)


class CodingQueryController(Controller):
    """The practice's side of coding queries: read the open ones, answer (the item returns to the queue)."""

    path = "/api/v1/tenants/{tenant_slug:str}/coding-queries"
    tags = ["coding"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_roles(Role.PRACTICE_CLIENT, Role.PRACTICE_OWNER)]

    @get(
        "/",
        summary="Open questions from the coders about this practice's encounters",
        responses=_ERRORS,
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def list_(
        self, tenant: NamedDependency[TenantScope], limit: Limit = DEFAULT_LIMIT
    ) -> list[schemas.Query]:
        return await service.open_queries(tenant, limit=limit)

    @post(
        "/{query_id:uuid}/answer",
        summary="Answer a coder's question: the encounter's item returns to the coding queue",
        responses=created_responses(schemas.Query),
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
    )
    async def answer(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        query_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.QueryAnswer],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Query]:
            return 201, await service.answer(tenant, query_id, data)  # the answer is created

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.CODING_QUERY, produce=produce
        )
