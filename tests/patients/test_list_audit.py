"""A patient list writes its audit event in its own SELECT: the event names exactly the patients shown
(not the extra row that only says another page exists), counts them, and commits with the read."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Api, patient_payload


async def _search_events(owner_engine: AsyncEngine, tenant_id: str) -> list[Any]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT resource_ids, patient_ids, detail, actor_subject, request_id FROM rcm.audit_event"
                " WHERE tenant_id = :t AND event_type = 'patient.search' ORDER BY occurred_at"
            ),
            {"t": uuid.UUID(tenant_id)},
        )
        return list(rows.all())


async def test_the_list_event_names_the_patients_shown_and_counts_them(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    assert practice_api.tenant_id is not None
    empty = await practice_api.get("/patients?limit=2")
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    created = []
    for _ in range(3):
        response = await practice_api.post("/patients", patient_payload())
        assert response.status_code == 201, response.text
        created.append(uuid.UUID(response.json()["id"]))
    first = await practice_api.get("/patients?limit=2")
    assert first.status_code == 200
    shown = [uuid.UUID(item["id"]) for item in first.json()["items"]]
    assert len(shown) == 2
    assert first.json()["next_cursor"]
    found = await practice_api.post("/patients/search", {"mrn": "no-such-mrn"}, key=None)
    assert found.status_code == 200, found.text

    events = await _search_events(owner_engine, practice_api.tenant_id)
    assert len(events) == 3
    (no_rows, page, by_mrn) = events
    assert list(no_rows.resource_ids) == list(no_rows.patient_ids) == []
    assert no_rows.detail == {"count": 0, "by_mrn": False, "by_name_dob": False, "access": "home_tenant"}
    # In page order, the third patient (read only to learn that a next page exists) left out.
    assert list(page.resource_ids) == list(page.patient_ids) == shown
    assert shown == created[:2]
    assert page.detail["count"] == 2
    assert page.actor_subject
    assert page.request_id
    assert by_mrn.detail["by_mrn"] is True
    assert by_mrn.detail["count"] == 0
