"""Documents attached to an encounter (PDF, PNG, JPEG, TIFF), stored as encrypted blobs.

The declared Content-Type must be one of those, and the first bytes must be that format's signature (a file
named .pdf holding an executable is refused). Uploading, listing and downloading are audited as PHI accesses.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.config import Settings
from rcm.encounters.models import EncounterDocument
from rcm.encounters.repository import EncounterDocumentRepository, EncounterRepository
from rcm.idempotency.service import run_idempotent
from rcm.kit.errors import FieldError, InvalidInput, NotFound, UnsupportedMediaType
from rcm.kit.strict import CONTENT_TYPE_POINTER
from rcm.tenancy.scope import TenantScope

DOCUMENT = "encounter_document"


class DocumentType(enum.StrEnum):
    PDF = "application/pdf"
    PNG = "image/png"
    JPEG = "image/jpeg"
    TIFF = "image/tiff"


# Magic numbers: PDF "%PDF-", PNG's 8-byte signature, JPEG SOI + marker, TIFF little- or big-endian.
_SIGNATURES: dict[DocumentType, tuple[bytes, ...]] = {
    DocumentType.PDF: (b"%PDF-",),
    DocumentType.PNG: (b"\x89PNG\r\n\x1a\n",),
    DocumentType.JPEG: (b"\xff\xd8\xff",),
    DocumentType.TIFF: (b"II*\x00", b"MM\x00*"),
}
_SNIFF_BYTES = 8


class Document(msgspec.Struct):
    id: uuid.UUID
    encounter_id: uuid.UUID
    content_type: DocumentType
    size: int
    sha256: str
    created_at: datetime


def document_type(content_type: str | None) -> DocumentType:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return DocumentType(media)
    except ValueError:
        raise UnsupportedMediaType(
            "A document is PDF, PNG, JPEG or TIFF.",
            errors=[
                FieldError(
                    CONTENT_TYPE_POINTER, "must be application/pdf, image/png, image/jpeg or image/tiff"
                )
            ],
        ) from None


async def sniffed(stream: AsyncIterable[bytes], kind: DocumentType) -> AsyncIterator[bytes]:
    """``stream`` unchanged, once its first bytes are checked against ``kind``'s signature."""
    head = b""
    checked = False
    async for data in stream:
        if checked:
            yield data
            continue
        head += data
        if len(head) < _SNIFF_BYTES:
            continue
        _check_signature(head, kind)
        checked = True
        yield head
    if not checked:
        _check_signature(head, kind)
        yield head


def _check_signature(head: bytes, kind: DocumentType) -> None:
    if not any(head.startswith(signature) for signature in _SIGNATURES[kind]):
        raise InvalidInput(
            f"The content is not {kind.value}.",
            errors=[FieldError("", f"the content does not start as {kind.value} does")],
        )


async def upload_once(
    scope: TenantScope,
    request: Request[Any, Any, Any],
    settings: Settings,
    *,
    key: str | None,
    resource_type: str,
    attach: Callable[[BlobStore, uuid.UUID, DocumentType], Awaitable[tuple[int, Any]]],
) -> Response[bytes]:
    """A file sent as the raw request body (its Content-Type one of ``DocumentType``, its first bytes that
    format's signature, at most RCM_DOCUMENT_MAX_BYTES) streamed into the blob store, then ``attach``ed to
    what it belongs to, once per Idempotency-Key: a retry's copy of the file is deleted and the first answer
    returned.

    The caller checks the key and that the owner exists first: not yours is a 404 before the upload is
    read."""
    store = BlobStore.from_settings(settings)
    kind = document_type(request.headers.get("content-type"))
    ref = await store.put(
        scope, sniffed(request.stream(), kind), content_type=kind.value, max_bytes=settings.document_max_bytes
    )
    produced = False

    async def produce() -> tuple[int, Any]:
        nonlocal produced
        produced = True
        return await attach(store, ref.id, kind)

    response = await run_idempotent(
        scope,
        request,
        key=key,
        resource_type=resource_type,
        produce=produce,
        body_fingerprint=bytes.fromhex(ref.sha256),
    )
    if not produced:
        await store.delete(scope, ref.id)
    return response


def view(row: EncounterDocument) -> Document:
    return Document(
        id=row.id,
        encounter_id=row.encounter_id,
        content_type=DocumentType(row.content_type),
        size=row.size,
        sha256=row.sha256.hex(),
        created_at=row.created_at,
    )


async def check_encounter(scope: TenantScope, encounter_id: uuid.UUID) -> uuid.UUID:
    """The encounter's patient id, or 404 (before an upload is read)."""
    row = await scope.repo(EncounterRepository).get_or_404(encounter_id)
    return row.patient_id


async def stored_file(
    scope: TenantScope, store: BlobStore, blob_id: uuid.UUID, kind: DocumentType
) -> dict[str, Any]:
    """The columns an uploaded file's row keeps of its blob (an encounter's document, an appeal's
    attachment): which blob, its type, size and SHA-256. No file name: a name is PHI, and nothing needs it."""
    ref = await store.ref(scope, blob_id)
    return {
        "blob_id": blob_id,
        "content_type": kind.value,
        "size": ref.size,
        "sha256": bytes.fromhex(ref.sha256),
    }


async def attach(
    scope: TenantScope,
    store: BlobStore,
    encounter_id: uuid.UUID,
    *,
    blob_id: uuid.UUID,
    kind: DocumentType,
) -> tuple[int, Document]:
    patient_id = await check_encounter(scope, encounter_id)
    row = EncounterDocument(
        id=uuid.uuid4(), encounter_id=encounter_id, **await stored_file(scope, store, blob_id, kind)
    )
    await scope.repo(EncounterDocumentRepository).insert(row)
    scope.audit(
        "encounter_document.create",
        Action.CREATE,
        resource_type=DOCUMENT,
        resource_ids=[row.id, encounter_id],
        patient_ids=[patient_id],
    )
    return 201, view(row)


async def list_documents(scope: TenantScope, encounter_id: uuid.UUID) -> list[Document]:
    patient_id = await check_encounter(scope, encounter_id)
    rows = await scope.repo(EncounterDocumentRepository).for_encounter(encounter_id)
    scope.audit(
        "encounter_document.search",
        Action.READ,
        resource_type=DOCUMENT,
        resource_ids=[r.id for r in rows],
        patient_ids=[patient_id],
        detail={"count": len(rows)},
    )
    return [view(r) for r in rows]


async def open_document(
    scope: TenantScope, encounter_id: uuid.UUID, document_id: uuid.UUID
) -> tuple[DocumentType, uuid.UUID]:
    """The document's type and blob, its read recorded in this transaction (before any byte is sent)."""
    patient_id = await check_encounter(scope, encounter_id)
    row = await scope.repo(EncounterDocumentRepository).one(encounter_id, document_id)
    if row is None:
        raise NotFound
    scope.audit(
        "encounter_document.read",
        Action.READ,
        resource_type=DOCUMENT,
        resource_ids=[row.id],
        patient_ids=[patient_id],
    )
    return DocumentType(row.content_type), row.blob_id
