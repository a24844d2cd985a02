"""The submission batch routes: a practice and its assigned staff list and read its batches (claims and kept
files, no PHI) and download the 837 exactly as kept; another practice gets the standard 404; a batch not
rendered yet is a 404 that says so; the download is audited with the batch's patients."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.batches import build_batches
from rcm.claims.rendering import render_batch
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.kit.secrets import SecretResolver
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.support import Api

ACK = Path(__file__).parents[1] / "x12" / "fixtures" / "public" / "999" / "x12-parser__x12_999_rejected.txt"


async def test_a_practice_and_its_staff_read_batches_and_download_the_kept_837(
    *,
    billing_intake: Api,
    billing_practice: Tenant,
    other_intake: Api,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    mcr_claims = [await claims.new(billing_intake, billing_practice) for _ in range(2)]
    await claims.new(billing_intake, billing_practice, payer_id="DEMO-BCX")
    store = BlobStore.from_settings(settings)
    async with practice_scope(sessions, settings, billing_practice) as scope:
        batches = {b.payer_id: b for b in await build_batches(scope)}
    mcr, bcx = batches["DEMO-MCR"], batches["DEMO-BCX"]

    # Not rendered yet: a 404 that says why.
    early = await billing_intake.get(f"/submission-batches/{mcr.id}/x12")
    assert early.status_code == 404
    assert "no kept 837 yet" in early.json()["detail"]

    async with practice_scope(sessions, settings, billing_practice) as scope:
        row = await render_batch(scope, store, mcr.id, secrets=SecretResolver())
        kept = await files.read(scope, store, row)
        # An acknowledgment linked to the batch shows beside the 837 (inbound).
        ack, _ = await files.keep(
            scope, store, ACK.read_bytes(), direction=Direction.INBOUND, batch_id=mcr.id
        )

    listed = await billing_intake.get("/submission-batches", {"limit": 1})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    rest = (
        await billing_intake.get("/submission-batches", {"limit": 1, "cursor": page["next_cursor"]})
    ).json()
    ids = {item["id"] for item in page["items"] + rest["items"]}
    assert ids == {str(mcr.id), str(bcx.id)}
    first = page["items"][0]
    assert {"interchange_control_number", "group_control_number", "claim_count", "status", "sent_at"} <= set(
        first
    )
    pending = (await billing_intake.get("/submission-batches", {"status": "pending"})).json()
    assert len(pending["items"]) == 2
    assert (await billing_intake.get("/submission-batches", {"status": "sent"})).json()["items"] == []

    detail = await billing_intake.get(f"/submission-batches/{mcr.id}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["batch"]["interchange_control_number"] == mcr.interchange_control_number
    assert sorted(c["id"] for c in body["claims"]) == sorted(str(c) for c in mcr_claims)
    assert all(
        set(c)
        == {
            "id",
            "patient_control_number",
            "state",
            "frequency",
            "total_charge_cents",
            "payer_claim_control_number",
        }
        for c in body["claims"]
    )
    assert [(f["direction"], f["kind"], f["id"]) for f in body["files"]] == [
        ("outbound", "837P", str(row.id)),
        ("inbound", "999", str(ack.id)),
    ]
    assert "Fakename" not in detail.text  # no patient name anywhere in the batch view

    download = await billing_intake.get(f"/submission-batches/{mcr.id}/x12")
    assert download.status_code == 200, download.text
    assert download.content == kept
    assert download.headers["content-type"].startswith("application/edi-x12")
    assert (
        download.headers["content-disposition"]
        == f'attachment; filename="837P-{mcr.interchange_control_number:09d}.x12"'
    )

    # Staff assigned to the practice read it too.
    biller = await make_staff(Role.BILLER, billing_practice)
    url = f"/api/v1/tenants/{billing_practice.slug}/submission-batches/{mcr.id}/x12"
    staff_download = await biller.client.get(url, headers=biller.headers())
    assert staff_download.status_code == 200, staff_download.text
    assert staff_download.content == kept

    # Each download is a PHI read naming the batch's patients.
    patients = await rows(owner_engine, "SELECT patient_id FROM rcm.claim WHERE id = ANY(:c)", c=mcr_claims)
    reads = await rows(
        owner_engine,
        "SELECT patient_ids FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'x12_file.read' AND :f = ANY (resource_ids)",
        t=billing_practice.id,
        f=row.id,
    )
    downloads = [set(r.patient_ids) for r in reads if r.patient_ids]  # not the test's own read above
    assert downloads == [{p.patient_id for p in patients}] * 2  # the practice's and the biller's

    # Another practice: the standard 404, the same for its own path with our id and for ours.
    not_found = (await other_intake.get(f"/submission-batches/{uuid.uuid4()}")).json()
    for path in (f"/submission-batches/{mcr.id}", f"/submission-batches/{mcr.id}/x12"):
        theirs = await other_intake.get(path)
        assert theirs.status_code == 404
        assert theirs.json()["detail"] == not_found["detail"]
        ours = await other_intake.get(path, slug=billing_practice.slug)
        assert ours.status_code in (403, 404)
    assert str(mcr.id) not in (await other_intake.get("/submission-batches")).text
