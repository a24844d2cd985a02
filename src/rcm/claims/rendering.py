"""TEMPORARY stand-in for the 837 renderer (branch ``render837`` owns ``rcm.claims.rendering``): the merge
keeps that module and drops this one. Same signature: ``render_batch`` renders a batch's 837 once, keeps it
encrypted through ``rcm.interchanges.keep`` and returns the kept row; asking again returns the same row.

This stand-in writes the batch's real envelope (ISA13/GS06/ST02 as recorded on the batch) around one BHT
and one CLM per ready claim (patient control number and total charge): enough for the submission pipeline
and the sandbox payer's received records, not an 837 a payer would adjudicate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rcm.blobs.store import BlobStore
from rcm.claims.batches import batch_document
from rcm.interchanges.models import Direction, X12File
from rcm.interchanges.repository import X12FileRepository
from rcm.interchanges.service import keep
from rcm.tenancy.scope import TenantScope
from rcm.x12.model import Envelope
from rcm.x12.writer import amount

PROFESSIONAL_GUIDE = "005010X222A1"


async def render_batch(scope: TenantScope, store: BlobStore, batch_id: uuid.UUID) -> X12File:
    kept = await scope.repo(X12FileRepository).of_batch(batch_id, direction=Direction.OUTBOUND)
    if kept:
        return kept[0]
    document = await batch_document(scope, batch_id)
    batch = document.batch
    now = datetime.now(UTC)
    envelope = Envelope(
        sender_id=batch.sender_id,
        receiver_id=batch.receiver_id,
        interchange_control_number=batch.interchange_control_number,
        group_control_number=batch.group_control_number,
        created=now,
    )
    writer = envelope.writer()
    with (
        writer.group(
            functional_id="HC",
            sender=batch.sender_id,
            receiver=batch.receiver_id,
            control_number=batch.group_control_number,
            version=PROFESSIONAL_GUIDE,
        ) as group,
        group.transaction("837", int(batch.transaction_set_control_number)) as body,
    ):
        body.segment(
            "BHT", "0019", "00", batch.id.hex[:30], now.strftime("%Y%m%d"), now.strftime("%H%M"), "CH"
        )
        for claim, _lines in document.claims:
            body.segment("CLM", claim.patient_control_number, amount(claim.total_charge_cents))
    row, _ = await keep(
        scope,
        store,
        writer.finish().encode("latin-1"),
        direction=Direction.OUTBOUND,
        connector=batch.connector,
        batch_id=batch.id,
        patient_ids=[claim.patient_id for claim, _ in document.claims],
    )
    return row
