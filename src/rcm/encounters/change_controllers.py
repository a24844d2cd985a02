"""Routes on one encounter beyond intake: documents, corrections and cancellation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from rcm.blobs.download import stream_blob
from rcm.blobs.store import BlobStore
from rcm.encounters import corrections, documents, schemas
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope


class EncounterChangeController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/encounters/{encounter_id:uuid}"
    tags = ["encounters"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}

    @post(
        "/documents",
        responses=created_responses(documents.Document),
        summary="Attach a document (the body is the file: PDF, PNG, JPEG or TIFF)",
        description="Send the file as the raw body with its Content-Type; RCM_DOCUMENT_MAX_BYTES limits it.",
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
        request_max_body_size=None,  # RCM_DOCUMENT_MAX_BYTES, enforced while streaming into the blob store
    )
    async def attach(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        state: State,
        encounter_id: FromPath[uuid.UUID],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        check_key(idempotency_key)
        # Not yours is 404 whatever the body, and before the upload is read.
        await documents.check_encounter(tenant, encounter_id)

        async def attach(
            store: BlobStore, blob_id: uuid.UUID, kind: documents.DocumentType
        ) -> tuple[int, documents.Document]:
            return await documents.attach(tenant, store, encounter_id, blob_id=blob_id, kind=kind)

        return await documents.upload_once(
            tenant,
            request,
            state.settings,
            key=idempotency_key,
            resource_type=documents.DOCUMENT,
            attach=attach,
        )

    @get(
        "/documents",
        responses=problem_responses(),
        summary="List an encounter's documents",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def list_documents(
        self, tenant: NamedDependency[TenantScope], encounter_id: FromPath[uuid.UUID]
    ) -> list[documents.Document]:
        return await documents.list_documents(tenant, encounter_id)

    @get(
        "/documents/{document_id:uuid}/content",
        responses=problem_responses(),
        summary="Download a document",
        guards=[requires_scopes(Scope.ENCOUNTERS_READ)],
    )
    async def download(
        self,
        tenant: NamedDependency[TenantScope],
        state: State,
        encounter_id: FromPath[uuid.UUID],
        document_id: FromPath[uuid.UUID],
    ) -> Stream:
        kind, blob_id = await documents.open_document(tenant, encounter_id, document_id)
        return stream_blob(tenant, state, blob_id, job="encounter_document.download", media_type=kind.value)

    @post(
        "/corrections",
        status_code=200,
        responses=created_responses(schemas.Encounter, status=200),
        summary="Correct an encounter that is not billed yet",
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
    )
    async def correct(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[corrections.EncounterCorrection],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.Encounter]:
            return 200, await corrections.correct_encounter(tenant, encounter_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type="encounter", produce=produce
        )

    @post(
        "/cancel",
        status_code=200,
        responses=created_responses(schemas.EncounterStatusView, status=200),
        summary="Cancel an encounter that is not billed yet (its open work items are cancelled too)",
        guards=[requires_scopes(Scope.ENCOUNTERS_WRITE)],
    )
    async def cancel(
        self,
        tenant: NamedDependency[TenantScope],
        request: Request[Any, Any, Any],
        encounter_id: FromPath[uuid.UUID],
        data: JSONBody[corrections.EncounterCancel],
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        async def produce() -> tuple[int, schemas.EncounterStatusView]:
            return 200, await corrections.cancel_encounter(tenant, encounter_id, data)

        return await run_idempotent(
            tenant, request, key=idempotency_key, resource_type="encounter", produce=produce
        )
