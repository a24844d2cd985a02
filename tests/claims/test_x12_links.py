"""Raw X12 linked to what it affected: each received 999/277CA/835 to the batch it answered and the claims it
matched, an 835 to its check/EFT trace number (TRN02), the 837 to its batch. The batch lists its files with
those links; the practice and its assigned staff download each as kept (audited with the patients the file
names); another practice, or a file of another batch, is the standard 404."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.responses import fetch_practice
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.kit.secrets import SecretResolver
from rcm.x12 import transactions
from rcm.x12.remittance import RemittanceStream
from tests.claims.conftest import Claims, rows
from tests.claims.test_acknowledgments import (  # noqa: F401 - the acknowledging payer's fixtures
    PAY,
    REJECT_277,
    Setup,
    _batch,
    _practice,
    _sandbox_allowed,
    _submit,
    _submitted,
    setup,
)
from tests.coding.conftest import MakeStaff


def _trace(data: bytes) -> str:
    for transaction in transactions(data):
        return RemittanceStream(transaction).header.trace_number
    raise AssertionError("no 835 transaction set")


async def test_received_files_are_linked_listed_and_downloaded_by_their_practice_only(
    *,
    setup: Setup,  # noqa: F811 - the fixture imported above
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    paid, paid_pcn = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    rejected, rejected_pcn = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    batch_id = await _batch(claims, setup.practice, setup.payer_id, 11, [paid, rejected])
    unsent, _ = await _submitted(claims, setup.api, setup.practice, setup.payer_id)
    other_batch = await _batch(claims, setup.practice, setup.payer_id, 12, [unsent])
    await _submit(setup, 11, {paid_pcn: PAY, rejected_pcn: REJECT_277})
    report = await fetch_practice(
        _practice(sessions, settings, setup.practice), BlobStore(), SecretResolver(None)
    )
    assert sorted(o.kind for o in report.outcomes) == ["277CA", "835", "999"]

    detail = await setup.api.get(f"/submission-batches/{batch_id}")
    assert detail.status_code == 200, detail.text
    listed = {f["kind"]: f for f in detail.json()["files"]}
    assert sorted(listed) == ["277CA", "835", "999"]
    assert all(f["direction"] == "inbound" and f["status"] == "processed" for f in listed.values())
    assert set(listed["277CA"]["claim_ids"]) == {str(paid), str(rejected)}
    assert listed["835"]["claim_ids"] == [str(paid)]
    assert listed["999"]["check_trace_numbers"] == listed["277CA"]["check_trace_numbers"] == []
    (trace,) = listed["835"]["check_trace_numbers"]

    # Each downloads as kept; the 835's TRN02 is the trace number linked.
    path = f"/submission-batches/{batch_id}/files"
    downloaded = {}
    for kind, file in listed.items():
        got = await setup.api.get(f"{path}/{file['id']}")
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/edi-x12")
        assert got.headers["cache-control"] == "no-store"
        assert got.content.startswith(b"ISA")
        assert len(got.content) == file["size"]
        downloaded[kind] = got.content
    assert _trace(downloaded["835"]) == trace
    links = await rows(
        owner_engine,
        "SELECT f.kind, l.submission_batch_id, l.claim_id, l.check_trace_number FROM rcm.x12_file_link l"
        " JOIN rcm.x12_file f ON (f.tenant_id, f.id) = (l.tenant_id, l.x12_file_id) WHERE l.tenant_id = :t",
        t=setup.practice.id,
    )
    assert {(r.kind, r.submission_batch_id) for r in links if r.submission_batch_id} == {
        ("999", batch_id),
        ("277CA", batch_id),
        ("835", batch_id),
    }
    assert {r.check_trace_number for r in links if r.check_trace_number} == {trace}

    # The download of PHI is audited, naming the patients of the claims the file is about.
    patients = await rows(
        owner_engine, "SELECT patient_id FROM rcm.claim WHERE id = ANY (:c)", c=[paid, rejected]
    )
    # The fetch job read the file before parsing it (no patients known yet): the download is the last read.
    reads = await rows(
        owner_engine,
        "SELECT patient_ids FROM rcm.audit_event WHERE tenant_id = :t AND event_type = 'x12_file.read'"
        " AND :f = ANY (resource_ids) ORDER BY occurred_at",
        t=setup.practice.id,
        f=uuid.UUID(listed["835"]["id"]),
    )
    assert reads
    assert {p.patient_id for p in patients} <= set(reads[-1].patient_ids)

    # Assigned staff read it too; another practice, another batch's path or an unknown file: 404.
    biller = await make_staff(Role.BILLER, setup.practice)
    staff = await biller.get(f"/tenants/{setup.practice.slug}{path}/{listed['835']['id']}")
    assert staff.status_code == 200, staff.text
    assert staff.content == downloaded["835"]
    theirs = await setup.other_api.get(f"{path}/{listed['835']['id']}")
    assert theirs.status_code == 404
    in_their_name = await setup.other_api.get(f"{path}/{listed['835']['id']}", slug=setup.practice.slug)
    assert in_their_name.status_code in (403, 404)
    wrong_batch = await setup.api.get(f"/submission-batches/{other_batch}/files/{listed['835']['id']}")
    assert wrong_batch.status_code == 404
    unknown = await setup.api.get(f"{path}/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert wrong_batch.json()["detail"] == unknown.json()["detail"]
