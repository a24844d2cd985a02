"""Submission batch routes: a practice (its own system and owner) and the staff assigned to it read its
batches, each with its claims and kept X12 files, and download the 837 as the payer received it.

Another practice's batch, or an unknown id, is the standard 404; the practice's own batch not rendered yet
is a 404 that says so."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from rcm.blobs.download import attachment
from rcm.blobs.store import BlobStore
from rcm.claims import batch_views, schemas
from rcm.claims.models import BatchStatus
from rcm.identity.guards import requires_scopes
from rcm.identity.scopes import Scope
from rcm.kit.errors import problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, Page
from rcm.patients.controllers import Cursor, Limit
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope

_ERRORS = problem_responses()
_DOWNLOAD = {
    200: ResponseSpec(
        data_container=bytes, media_type=batch_views.CONTENT_TYPE, description="The interchange"
    ),
    **_ERRORS,
}
StatusFilter = Annotated[BatchStatus | None, QueryParameter(description="Only batches in this status")]


class SubmissionBatchController(Controller):
    """A practice's submission batches: what was sent to which payer, under which control numbers."""

    path = "/api/v1/tenants/{tenant_slug:str}/submission-batches"
    tags = ["claims"]
    dependencies = {"tenant": Provide(provide_tenant_scope)}
    guards = [requires_scopes(Scope.CLAIMS_READ)]

    @get(
        "/",
        summary="List the practice's submission batches (keyset paged; filter by status)",
        responses=_ERRORS,
    )
    async def list_(
        self,
        *,
        tenant: NamedDependency[TenantScope],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: StatusFilter = None,
    ) -> Page[schemas.Batch]:
        return await batch_views.list_batches(tenant, limit=limit, cursor=cursor, status=status)

    @get(
        "/{batch_id:uuid}",
        summary="A batch: its claims (ids, control numbers, states) and its kept X12 files",
        responses=_ERRORS,
    )
    async def read(
        self, tenant: NamedDependency[TenantScope], batch_id: FromPath[uuid.UUID]
    ) -> schemas.BatchDetail:
        return await batch_views.read_batch(tenant, batch_id)

    @get(
        "/{batch_id:uuid}/x12",
        summary="The batch's 837 as the payer received it (application/edi-x12)",
        description="404 until the batch is rendered (when it is submitted). Audited as a read of the "
        "batch's patients' PHI.",
        media_type=batch_views.CONTENT_TYPE,
        responses=_DOWNLOAD,
    )
    async def interchange(
        self, tenant: NamedDependency[TenantScope], state: State, batch_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        found = await batch_views.batch_interchange(tenant, BlobStore.from_settings(state.settings), batch_id)
        return _download(found)

    @get(
        "/{batch_id:uuid}/files/{file_id:uuid}",
        summary="One X12 file of the batch as sent or received (the 837, a 999, 277CA or 835 about it)",
        description="The files are those the batch detail lists. Audited as a read of the PHI the file "
        "holds (the patients of the batch's claims and of the claims the file matched).",
        media_type=batch_views.CONTENT_TYPE,
        responses=_DOWNLOAD,
    )
    async def file(
        self,
        tenant: NamedDependency[TenantScope],
        state: State,
        batch_id: FromPath[uuid.UUID],
        file_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        store = BlobStore.from_settings(state.settings)
        return _download(await batch_views.batch_file(tenant, store, batch_id, file_id))


def _download(found: batch_views.Interchange) -> Response[bytes]:
    return attachment(found.data, media_type=batch_views.CONTENT_TYPE, filename=found.filename)
