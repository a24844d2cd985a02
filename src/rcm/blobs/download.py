"""A blob sent to the client as a route's answer: streamed from the store, or held whole (a small file).

Used by every route that hands a practice's file back: an encounter's documents, patient statements, appeal
letters, the X12 files of a submission batch. A file's name is an opaque one (an id): never the patient's.
Every answer is ``no-store`` (the edge's default too): nothing in between may keep a copy of PHI.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from litestar import Response
from litestar.datastructures import State
from litestar.response import Stream

from rcm.blobs.store import BlobStore
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope


def attachment_headers(filename: str | None) -> dict[str, str]:
    """The headers of a file's answer: saved as ``filename`` when there is one, never cached."""
    headers = {"Cache-Control": "no-store"}
    if filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return headers


def attachment(data: bytes, *, media_type: str, filename: str) -> Response[bytes]:
    """A file read whole (an appeal letter, an X12 interchange), to be saved as ``filename``."""
    return Response(data, media_type=media_type, headers=attachment_headers(filename))


def stream_blob(
    tenant: TenantScope,
    state: State,
    blob_id: uuid.UUID,
    *,
    job: str,
    media_type: str,
    filename: str | None = None,
) -> Stream:
    """The blob streamed to the client, after the route has checked access and audited the read.

    The request's transaction (and its audit event) commits before the body is sent; the content is then read
    in short transactions of their own (a slow client holds no snapshot open), acting as the caller under the
    name ``job``, one step of chunks in memory at a time."""
    store = BlobStore.from_settings(state.settings)

    def reader() -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            state.sessions,
            state.keystore,
            tenant.tenant_id,
            actor=tenant.principal,
            request=tenant.request,
            job=job,
        )

    async def content() -> AsyncIterator[bytes]:
        async for chunk in store.open_in_steps(reader, blob_id):
            yield chunk

    return Stream(content(), media_type=media_type, headers=attachment_headers(filename))
