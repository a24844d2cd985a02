"""Submission batches as a practice and its billers read them: the list, one batch with its claims and the
X12 files kept for it (the 837 sent, the acknowledgments received), and the interchange itself as the payer
received it.

The list and the batch show no PHI (ids, control numbers, states, amounts); reading a batch names its
claims' patients in the audit trail, as reading claims does. The interchange is PHI: ``interchanges.read``
audits it with the batch's patients, and its file name is the kind and ISA13, nothing else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.claims import schemas
from rcm.claims.batches import BATCH
from rcm.claims.models import BatchStatus, SubmissionBatch
from rcm.claims.repository import ClaimRepository
from rcm.claims.service import row_fields
from rcm.interchanges import service as interchanges
from rcm.interchanges.models import Direction, X12File
from rcm.interchanges.repository import X12FileLinkRepository, X12FileRepository
from rcm.kit.errors import NotFound, RCMError
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.tenancy.scope import TenantScope

CONTENT_TYPE = interchanges.CONTENT_TYPE


class NoInterchangeYet(RCMError):
    """The practice's own batch, not rendered yet: a 404 that says why (another practice's batch, or an
    unknown id, is the standard 404 before this is ever reached)."""

    status_code = 404
    title = "Not found"

    def __init__(self) -> None:
        super().__init__("The batch has no kept 837 yet: it is rendered when it is submitted.")


@dataclass(frozen=True, slots=True)
class Interchange:
    data: bytes
    filename: str  # opaque: the kind and the ISA13, no PHI


def batch_view(batch: SubmissionBatch) -> schemas.Batch:
    return schemas.Batch(**row_fields(schemas.Batch, batch))


async def list_batches(
    scope: TenantScope, *, limit: int, cursor: str | None, status: BatchStatus | None = None
) -> Page[schemas.Batch]:
    rows = await scope.repo(ClaimRepository).batches_page(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None, status=status
    )
    page = paginate(rows, limit, batch_view)
    scope.audit(
        "submission_batch.list",
        Action.READ,
        resource_type=BATCH,
        resource_ids=[b.id for b in rows[:limit]],
        detail={"status": status.value if status else None},
    )
    return page


async def _batch(scope: TenantScope, batch_id: uuid.UUID) -> SubmissionBatch:
    batch = await scope.repo(ClaimRepository).batch(batch_id)
    if batch is None:
        raise NotFound
    return batch


async def read_batch(scope: TenantScope, batch_id: uuid.UUID) -> schemas.BatchDetail:
    batch = await _batch(scope, batch_id)
    claims = await scope.repo(ClaimRepository).batch_claims(batch_id)
    kept = sorted(
        await scope.repo(X12FileRepository).of_batch(batch_id),
        key=lambda f: (f.direction is not Direction.OUTBOUND, f.created_at, f.id),
    )
    ours = {c.id for c in claims}
    links = await scope.repo(X12FileLinkRepository).of_files([f.id for f in kept])
    scope.audit(
        "submission_batch.read",
        Action.READ,
        resource_type=BATCH,
        resource_ids=[batch.id, *(c.id for c in claims)],
        patient_ids=[c.patient_id for c in claims],
    )
    return schemas.BatchDetail(
        batch=batch_view(batch),
        claims=[schemas.BatchClaim(**row_fields(schemas.BatchClaim, c)) for c in claims],
        files=[
            schemas.BatchFile(
                **row_fields(schemas.BatchFile, f, skip=("claim_ids", "check_trace_numbers")),
                claim_ids=[k.claim_id for k in links if k.x12_file_id == f.id and k.claim_id in ours],
                check_trace_numbers=[
                    k.check_trace_number for k in links if k.x12_file_id == f.id and k.check_trace_number
                ],
            )
            for f in kept
        ],
    )


async def batch_file(
    scope: TenantScope, store: BlobStore, batch_id: uuid.UUID, file_id: uuid.UUID
) -> Interchange:
    """One kept file of the batch (the 837 or a file received about it), byte for byte, audited as a read
    of the PHI it holds: the patients of the batch's claims and of every claim the file matched. A file
    not of this batch (another batch's, another practice's, unknown) is the standard 404."""
    await _batch(scope, batch_id)
    row = next((f for f in await scope.repo(X12FileRepository).of_batch(batch_id) if f.id == file_id), None)
    if row is None:
        raise NotFound
    claims = scope.repo(ClaimRepository)
    linked = [k.claim_id for k in await scope.repo(X12FileLinkRepository).of_files([row.id]) if k.claim_id]
    patients = {c.patient_id for c in await claims.batch_claims(batch_id)}
    patients |= {c.patient_id for c in await claims.many(linked)}
    data = await interchanges.read(scope, store, row, patient_ids=sorted(patients))
    return Interchange(data=data, filename=_filename(row))


def _filename(row: X12File) -> str:
    number = row.interchange_control_number
    return f"{row.kind}-{number:09d}.x12" if number is not None else f"{row.kind}-{row.id.hex}.x12"


async def batch_interchange(scope: TenantScope, store: BlobStore, batch_id: uuid.UUID) -> Interchange:
    """The kept outbound 837 of the batch, byte for byte, audited as a read of its patients' PHI."""
    await _batch(scope, batch_id)
    kept = await scope.repo(X12FileRepository).of_batch(batch_id, direction=Direction.OUTBOUND)
    if not kept:
        raise NoInterchangeYet
    row = kept[0]
    claims = await scope.repo(ClaimRepository).batch_claims(batch_id)
    data = await interchanges.read(scope, store, row, patient_ids=sorted({c.patient_id for c in claims}))
    return Interchange(data=data, filename=_filename(row))
