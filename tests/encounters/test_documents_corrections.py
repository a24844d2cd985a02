"""Documents on an encounter (sniffed, encrypted, audited) and corrections/cancellation before billing."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Api, encounter_payload

PDF = b"%PDF-1.7\n" + b"synthetic document body " * 5000


async def _encounter(api: Api) -> dict[str, object]:
    created = await api.post("/encounters", encounter_payload())
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


async def _attach(
    api: Api, encounter_id: object, content: bytes, media: str, key: str | None = None
) -> httpx.Response:
    headers = {**api.headers, "Content-Type": media, "Idempotency-Key": key or uuid.uuid4().hex}
    return await api.client.post(
        api.url(f"/encounters/{encounter_id}/documents"), content=content, headers=headers
    )


async def test_document_round_trip_and_audit(practice_api: Api, owner_engine: AsyncEngine) -> None:
    encounter = await _encounter(practice_api)
    created = await _attach(practice_api, encounter["id"], PDF, "application/pdf", key="doc-1")
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["size"] == len(PDF)
    replay = await _attach(practice_api, encounter["id"], PDF, "application/pdf", key="doc-1")
    assert replay.json()["id"] == document["id"]

    listed = await practice_api.get(f"/encounters/{encounter['id']}/documents")
    assert [d["id"] for d in listed.json()] == [document["id"]]
    content = await practice_api.get(f"/encounters/{encounter['id']}/documents/{document['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"].startswith("application/pdf")
    assert content.content == PDF

    async with owner_engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    text(
                        "SELECT event_type FROM rcm.audit_event"
                        " WHERE tenant_id = :t AND event_type LIKE 'encounter_document.%'"
                    ),
                    {"t": uuid.UUID(practice_api.tenant_id)},
                )
            )
            .scalars()
            .all()
        )
        stored = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM rcm.blob_chunk"
                    " WHERE tenant_id = :t AND position('synthetic' in encode(data, 'escape')) > 0"
                ),
                {"t": uuid.UUID(practice_api.tenant_id)},
            )
        ).scalar_one()
    assert sorted(set(events)) == [
        "encounter_document.create",
        "encounter_document.read",
        "encounter_document.replay",
        "encounter_document.search",
    ]
    assert stored == 0  # ciphertext only


async def test_document_type_is_checked(practice_api: Api, other_practice_api: Api) -> None:
    encounter = await _encounter(practice_api)
    wrong_type = await _attach(practice_api, encounter["id"], PDF, "application/zip")
    assert wrong_type.status_code == 415
    assert wrong_type.json()["errors"][0]["pointer"] == "header:Content-Type"
    mismatch = await _attach(practice_api, encounter["id"], b"MZ\x90\x00 not a png at all", "image/png")
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["pointer"] == ""
    png = await _attach(practice_api, encounter["id"], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")
    assert png.status_code == 201
    theirs = await _attach(other_practice_api, encounter["id"], PDF, "application/pdf")
    assert theirs.status_code == 404


async def test_correction_replaces_lines_and_keeps_history(practice_api: Api) -> None:
    encounter = await _encounter(practice_api)
    corrected = await practice_api.post(
        f"/encounters/{encounter['id']}/corrections",
        {
            "diagnoses": [{"code": "I10"}],
            "charges": [{"procedure_code": "99214", "charge_cents": 20000, "diagnosis_pointers": [1]}],
        },
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert [d["code"] for d in body["diagnoses"]] == ["I10"]
    assert [c["procedure_code"] for c in body["charges"]] == ["99214"]
    assert body["total_charge_cents"] == 20000
    bad = await practice_api.post(f"/encounters/{encounter['id']}/corrections", {"diagnoses": []})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/charges/0/diagnosis_pointers/0"
    status = (await practice_api.get(f"/encounters/{encounter['id']}/status")).json()
    assert [h["note"] for h in status["history"]] == [None, "corrected"]


async def test_cancel_cancels_the_work_item_and_blocks_corrections(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    encounter = await _encounter(practice_api)
    refused = await practice_api.post(f"/encounters/{encounter['id']}/cancel", {"reason": "because"})
    assert refused.status_code in (400, 422)
    cancelled = await practice_api.post(f"/encounters/{encounter['id']}/cancel", {"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    async with owner_engine.connect() as conn:
        item = (
            await conn.execute(
                text("SELECT status FROM rcm.work_item WHERE tenant_id = :t AND subject_id = :e"),
                {"t": uuid.UUID(practice_api.tenant_id), "e": uuid.UUID(str(encounter["id"]))},
            )
        ).scalar_one()
    assert item == "cancelled"
    again = await practice_api.post(f"/encounters/{encounter['id']}/corrections", {"place_of_service": "22"})
    assert again.status_code == 409
    assert (await practice_api.get(f"/encounters/{encounter['id']}")).json()["status"] == "cancelled"


async def test_billed_encounters_change_only_through_claims(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    encounter = await _encounter(practice_api)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("SELECT set_config('rcm.tenant_id', :t, true)"), {"t": practice_api.tenant_id}
        )
        await conn.execute(
            text("UPDATE rcm.encounter SET status = 'billed' WHERE tenant_id = :t AND id = :e"),
            {"t": uuid.UUID(practice_api.tenant_id), "e": uuid.UUID(str(encounter["id"]))},
        )
    refused = await practice_api.post(
        f"/encounters/{encounter['id']}/corrections", {"place_of_service": "22"}
    )
    assert refused.status_code == 409
    assert "replacement" in refused.json()["detail"]
    assert (
        await practice_api.post(f"/encounters/{encounter['id']}/cancel", {"reason": "duplicate"})
    ).status_code == 409
