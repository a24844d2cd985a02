"""Denial routes under a practice, for the billers and supervisors assigned to it: its denials (closest
appeal deadline first, with the clock), appeals (letter PDF, attachments, submission, outcome), its letter
templates; and the denial analytics for those who read the practice's reports.

Another practice's denial, appeal or template is the same 404 as one that does not exist (the tenant scope
decides). Writes take an Idempotency-Key: a retry gets the first answer.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from rcm.blobs.download import attachment
from rcm.blobs.store import BlobStore
from rcm.denials import schemas, service
from rcm.denials.models import DenialStatus
from rcm.encounters import documents
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity.guards import requires_roles, requires_scopes
from rcm.identity.principal import Role
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)
_STAFF = [requires_roles(Role.BILLER, Role.SUPERVISOR), requires_scopes(Scope.CLAIMS_WRITE)]
StatusFilter = Annotated[DenialStatus | None, QueryParameter(description="Only denials in this status")]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="At most this many denials")]


class DenialController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/denials"
    tags = ["denials"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = _STAFF

    @get(
        "/",
        summary="The practice's denials, closest appeal deadline first (days_left is the clock)",
        responses=_ERRORS,
    )
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        status: StatusFilter = None,
        claim_id: FromQuery[uuid.UUID | None] = None,
        limit: Limit = 100,
    ) -> list[schemas.Denial]:
        return await service.list_denials(tenant, status=status, claim_id=claim_id, limit=limit)


class AppealController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/appeals"
    tags = ["denials"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = _STAFF

    @post(
        "/",
        summary="Appeal a claim's open denials: the letter rendered from the practice's template as a PDF",
        description="422 names the template line that failed to render (the template runs in a sandbox).",
        responses=created_responses(schemas.Appeal),
    )
    async def create(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[schemas.AppealCreate],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        store = BlobStore.from_settings(state.settings)

        async def produce() -> tuple[int, schemas.Appeal]:
            return await service.create_appeal(tenant, store, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.APPEAL, produce=produce
        )

    @get(
        "/{appeal_id:uuid}",
        summary="An appeal: its denials, attachments, submission, outcome",
        responses=_ERRORS,
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], appeal_id: FromPath[uuid.UUID]
    ) -> schemas.Appeal:
        return await service.read_appeal(tenant, appeal_id)

    @get(
        "/{appeal_id:uuid}/letter",
        summary="The appeal letter (application/pdf); audited as a read of the patient's PHI",
        media_type=service.LETTER_TYPE,
        responses={200: ResponseSpec(data_container=bytes, media_type=service.LETTER_TYPE), **_ERRORS},
    )
    async def letter(
        self, tenant: NamedDependency[TenantScope], state: State, appeal_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        data = await service.letter(tenant, BlobStore.from_settings(state.settings), appeal_id)
        # An opaque name: never the patient's.
        return attachment(data, media_type=service.LETTER_TYPE, filename=f"appeal-{appeal_id}.pdf")

    @post(
        "/{appeal_id:uuid}/attachments",
        summary="Attach a file to an appeal (the body is the file: PDF, PNG, JPEG or TIFF)",
        description="Send the file as the raw body with its Content-Type; RCM_DOCUMENT_MAX_BYTES limits it.",
        responses=created_responses(schemas.Attachment),
        request_max_body_size=None,  # RCM_DOCUMENT_MAX_BYTES, enforced while streaming into the blob store
    )
    async def attach(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        appeal_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        check_key(idempotency_key)
        await service.check_appeal(tenant, appeal_id)  # not yours is 404 before the upload is read

        async def attach(
            store: BlobStore, blob_id: uuid.UUID, kind: documents.DocumentType
        ) -> tuple[int, schemas.Attachment]:
            return await service.attach(tenant, store, appeal_id, blob_id=blob_id, kind=kind)

        return await documents.upload_once(
            tenant, request, state.settings, key=idempotency_key, resource_type=service.APPEAL, attach=attach
        )

    @post(
        "/{appeal_id:uuid}/submission",
        summary="Record the appeal's submission (date, method): its denials appealed, the claim appealed",
        responses=created_responses(schemas.Appeal, 200),
        status_code=200,
    )
    async def submit(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        appeal_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.AppealSubmission],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Appeal]:
            return 200, await service.submit_appeal(tenant, appeal_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.APPEAL, produce=produce
        )

    @post(
        "/{appeal_id:uuid}/outcome",
        summary="Record the payer's decision: overturned, upheld or partial, with the amount recovered",
        responses=created_responses(schemas.Appeal, 200),
        status_code=200,
    )
    async def decide(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        appeal_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.AppealDecision],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Appeal]:
            return 200, await service.decide_appeal(tenant, appeal_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type=service.APPEAL, produce=produce
        )


class AppealTemplateController(Controller):
    """The practice's appeal-letter templates (Jinja text, rendered in a sandbox; ``default`` is built in
    until the practice saves its own under that name)."""

    path = "/api/v1/tenants/{tenant_slug:str}/appeal-templates"
    tags = ["denials"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = _STAFF

    @get("/", summary="The practice's appeal-letter templates", responses=_ERRORS)
    async def list_(self, tenant: NamedDependency[TenantScope]) -> list[schemas.Template]:
        return await service.list_templates(tenant)

    @get("/{name:str}", summary="One appeal-letter template", responses=_ERRORS)
    async def read(
        self, tenant: NamedDependency[TenantScope], name: FromPath[schemas.TemplateName]
    ) -> schemas.Template:
        return await service.read_template(tenant, name)

    @put(
        "/{name:str}",
        summary="Create or replace a template (422 names the line that fails to compile or render)",
        responses=_ERRORS,
    )
    async def save(
        self,
        tenant: NamedDependency[TenantScope],
        name: FromPath[schemas.TemplateName],
        data: JSONBody[schemas.TemplateWrite],
    ) -> schemas.Template:
        return await service.save_template(tenant, name, data)


class DenialReportController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/reports"
    tags = ["reports"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @get(
        "/denials",
        summary="Denial counts and amounts per period, by payer, CPT, CARC and category (aggregates, no PHI)",
        responses=_ERRORS,
        guards=[requires_scopes(Scope.REPORTS_READ)],
    )
    async def denials(
        self,
        tenant: NamedDependency[TenantScope],
        group_by: Annotated[
            str | None, QueryParameter(description="Comma-separated: payer, cpt, carc, category")
        ] = None,
        period: FromQuery[schemas.Period] = schemas.Period.MONTH,
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> schemas.DenialReport:
        groups = service.parse_groups(group_by)
        return await service.report(tenant, group_by=groups, period=period, since=since, until=until)
