"""Keep raw X12: ``keep`` stores an interchange's bytes encrypted (a blob under the tenant's keys) with what
its envelope says in clear, once per content (the same file received or rendered twice is one row), and
``read`` gives the bytes back, audited. Connectors, acknowledgment and remittance processing and the
submission batch download all go through here.

The row's ``error`` names a segment and a position, never content: X12 carries PHI."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.interchanges.models import KINDS, Direction, FileStatus, X12File
from rcm.interchanges.repository import X12FileLinkRepository, X12FileRepository
from rcm.tenancy.scope import TenantScope
from rcm.x12 import X12Error, transactions

X12_FILE = "x12_file"
CONTENT_TYPE = "application/edi-x12"
# A single interchange larger than this is not something a payer sends us (an 835 of 100,000 claims is
# about 60 MB); refusing it bounds what one fetch can make the worker hold.
MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the first transaction set's envelopes say: all of it clear text, no PHI."""

    kind: str  # 837P, 837I, 835, 999, 277CA, 270, 271, 276, 277, or unknown
    interchange_control_number: int | None
    sender_id: str | None
    receiver_id: str | None
    error: str | None = None  # where the file is not readable X12 (segment and position)


def envelope_of(data: bytes) -> Envelope:
    """The kind and envelope ids of an interchange, from its first transaction set (the whole file is walked,
    so truncation and count mismatches are found); ``unknown`` with ``error`` when it is not readable X12."""
    first: Envelope | None = None
    try:
        for transaction in transactions(data):
            if first is None:
                header = transaction.interchange
                number = header.control_number
                kind = transaction.kind if transaction.kind in KINDS else "unknown"
                first = Envelope(
                    kind=kind,
                    interchange_control_number=int(number) if number.isdigit() else None,
                    sender_id=header.sender_id or None,
                    receiver_id=header.receiver_id or None,
                )
    except X12Error as error:
        where = " ".join(
            part
            for part in (
                f"segment {error.segment_id}" if error.segment_id else "",
                f"at position {error.position}" if error.position is not None else "",
            )
            if part
        )
        return Envelope("unknown", None, None, None, error=where or "not X12")
    return first or Envelope("unknown", None, None, None, error="no transaction set")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def keep(
    scope: TenantScope,
    store: BlobStore,
    data: bytes,
    *,
    direction: Direction,
    connector: str | None = None,
    batch_id: uuid.UUID | None = None,
    patient_ids: Sequence[uuid.UUID] = (),
) -> tuple[X12File, bool]:
    """Store the interchange (encrypted) unless the same bytes were already kept in that direction; returns
    the row and whether it is new. Not readable X12 is still kept (as ``unknown``, ``refused``): what a payer
    sent us is evidence, whatever it is."""
    digest = hashlib.sha256(data).digest()
    repo = scope.repo(X12FileRepository)
    existing = await repo.by_digest(direction, digest)
    if existing is not None:
        return existing, False
    envelope = envelope_of(data)
    ref = await store.put(scope, _once(data), content_type=CONTENT_TYPE, max_bytes=MAX_BYTES)
    row = X12File(
        id=uuid.uuid4(),
        direction=direction,
        kind=envelope.kind,
        blob_id=ref.id,
        sha256=digest,
        size=len(data),
        interchange_control_number=envelope.interchange_control_number,
        sender_id=envelope.sender_id,
        receiver_id=envelope.receiver_id,
        connector=connector,
        submission_batch_id=batch_id,
        status=FileStatus.REFUSED if envelope.error else FileStatus.KEPT,
        error=envelope.error,
    )
    await repo.insert(row)
    if batch_id is not None:
        await scope.repo(X12FileLinkRepository).link(row.id, batch_ids=[batch_id])
    scope.audit(
        "x12_file.create",
        Action.CREATE,
        resource_type=X12_FILE,
        resource_ids=[row.id, *([batch_id] if batch_id else [])],
        patient_ids=list(patient_ids),
        detail={"direction": direction.value, "kind": envelope.kind},
    )
    return row, True


async def read(
    scope: TenantScope, store: BlobStore, row: X12File, *, patient_ids: Sequence[uuid.UUID] = ()
) -> bytes:
    """The file's bytes as they were sent or received, audited as a read of everything it holds."""
    data = await store.read_all(scope, row.blob_id)
    scope.audit(
        "x12_file.read",
        Action.READ,
        resource_type=X12_FILE,
        resource_ids=[row.id, *([row.submission_batch_id] if row.submission_batch_id else [])],
        patient_ids=list(patient_ids),
    )
    return data
