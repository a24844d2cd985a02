"""A coder's round trip through the API: next item (documentation decrypted and audited), draft, complete
(validated, priced from the fee schedule), release, a query to the practice and its answer."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.coding.conftest import MakeStaff
from tests.identity.conftest import audit_rows
from tests.support import Api, encounter_payload

CODING = {
    "diagnoses": ["E11.9", "I10"],
    "lines": [
        {"procedure_code": "99213", "modifiers": ["25"], "diagnosis_pointers": [1, 2]},
        {"procedure_code": "36415", "units": 2, "diagnosis_pointers": [1]},
    ],
}


async def _encounter(api: Api) -> dict[str, Any]:
    response = await api.post("/encounters", encounter_payload())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_lease_see_draft_complete(
    practice_api: Api, tenant: Tenant, make_staff: MakeStaff, owner_engine: AsyncEngine
) -> None:
    encounter = await _encounter(practice_api)
    coder = await make_staff(Role.CODER, tenant)

    leased = await coder.post("/coding/next")
    assert leased.status_code == 200, leased.text
    task = leased.json()
    item_id = task["id"]
    assert task["item"]["encounter_id"] == encounter["id"]
    assert task["item"]["leased_by"] == coder.subject
    # The SLA in the practice's manifest: priority 2, due 24 hours after arrival.
    assert task["item"]["priority"] == 2
    assert task["documentation"].startswith("DEMO NOTE")
    assert task["suggested"]["diagnoses"] == ["E119", "I10"]
    assert task["draft"] is None
    # Asking again hands back the same item (a retry of "next" takes nothing more).
    assert (await coder.post("/coding/next")).json()["id"] == item_id

    draft = await coder.put(f"/coding/items/{item_id}/draft", {"diagnoses": ["E11.9"], "lines": []})
    assert draft.status_code == 200, draft.text
    assert draft.json()["state"] == "draft"
    reopened = (await coder.get(f"/coding/items/{item_id}")).json()
    assert reopened["draft"]["diagnoses"] == ["E119"]

    # Pointers past the diagnoses are refused, naming the pointer.
    bad = await coder.post(
        f"/coding/items/{item_id}/complete",
        {"diagnoses": ["E11.9"], "lines": [{"procedure_code": "99213", "diagnosis_pointers": [2]}]},
    )
    assert bad.status_code == 422, bad.text
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/lines/0/diagnosis_pointers/0"}
    # A code the fee schedule does not price needs its charge.
    unpriced = await coder.post(
        f"/coding/items/{item_id}/complete",
        {"diagnoses": ["E11.9"], "lines": [{"procedure_code": "99999", "diagnosis_pointers": [1]}]},
    )
    assert unpriced.status_code == 422, unpriced.text
    assert unpriced.json()["errors"][0]["pointer"] == "/lines/0/charge_cents"

    done = await coder.post(f"/coding/items/{item_id}/complete", CODING)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["item"]["status"] == "done"
    assert body["coding"]["state"] == "completed"
    # Priced from the practice's fee schedule: 99213-25 has its own price; 36415 is 2 units x $15.
    assert [line["charge_cents"] for line in body["coding"]["lines"]] == [13000, 3000]
    assert body["coding"]["diagnoses"] == ["E119", "I10"]
    status = await practice_api.get(f"/encounters/{encounter['id']}/status")
    assert status.json()["status"] == "coded"
    # Done is done: no lease to complete again, nothing left to lease.
    assert (await coder.post(f"/coding/items/{item_id}/complete", CODING)).status_code == 409
    assert (await coder.post("/coding/next")).status_code == 204

    reads = await audit_rows(owner_engine, "coding.task.read", tenant_id=tenant.id)
    assert reads
    assert uuid.UUID(encounter["patient_id"]) in reads[0]["patient_ids"]
    assert await audit_rows(owner_engine, "coding.complete", tenant_id=tenant.id)


async def test_release_returns_the_item_to_the_queue(
    practice_api: Api, tenant: Tenant, make_staff: MakeStaff
) -> None:
    await _encounter(practice_api)
    alice = await make_staff(Role.CODER, tenant)
    bob = await make_staff(Role.CODER, tenant)
    item_id = (await alice.post("/coding/next")).json()["id"]
    assert (await bob.post("/coding/next")).status_code == 204  # Alice holds the only item
    assert (await bob.get(f"/coding/items/{item_id}")).status_code == 409  # and only she opens it
    assert (await bob.post(f"/coding/items/{item_id}/release")).status_code == 409
    released = await alice.post(f"/coding/items/{item_id}/release")
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "open"
    assert (await bob.post("/coding/next")).json()["id"] == item_id


async def test_a_query_waits_for_the_practice_and_returns_to_the_queue(
    practice_api: Api, tenant: Tenant, make_staff: MakeStaff
) -> None:
    await _encounter(practice_api)
    coder = await make_staff(Role.CODER, tenant)
    item_id = (await coder.post("/coding/next")).json()["id"]
    asked = await coder.post(f"/coding/items/{item_id}/queries", {"question": "Was the A1c drawn today?"})
    assert asked.status_code == 201, asked.text
    query_id = asked.json()["id"]
    assert (await coder.post("/coding/next")).status_code == 204  # the item waits on the practice

    open_queries = await practice_api.get("/coding-queries")
    assert open_queries.status_code == 200, open_queries.text
    assert [q["question"] for q in open_queries.json()] == ["Was the A1c drawn today?"]
    answered = await practice_api.post(f"/coding-queries/{query_id}/answer", {"answer": "Yes, in clinic."})
    assert answered.status_code == 201, answered.text
    assert answered.json()["status"] == "answered"
    again = await practice_api.post(f"/coding-queries/{query_id}/answer", {"answer": "Twice?"})
    assert again.status_code == 409

    back = await coder.post("/coding/next")
    assert back.status_code == 200
    assert back.json()["id"] == item_id
    assert back.json()["queries"][0]["answer"] == "Yes, in clinic."


async def test_other_practices_items_are_invisible(
    practice_api: Api, other_practice_api: Api, tenant: Tenant, other_tenant: Tenant, make_staff: MakeStaff
) -> None:
    await _encounter(other_practice_api)
    mine = await make_staff(Role.CODER, tenant)
    theirs = await make_staff(Role.CODER, other_tenant)
    item_id = (await theirs.post("/coding/next")).json()["id"]
    assert (await mine.post("/coding/next")).status_code == 204
    for response in (
        await mine.get(f"/coding/items/{item_id}"),
        await mine.put(f"/coding/items/{item_id}/draft", CODING),
        await mine.post(f"/coding/items/{item_id}/complete", CODING),
        await mine.post(f"/coding/items/{item_id}/release"),
        await mine.post(f"/coding/items/{item_id}/queries", {"question": "?"}),
    ):
        assert response.status_code == 404, response.text
    # A practice's own system is no coder.
    assert (
        await practice_api.client.post(
            "/api/v1/coding/next", headers={**practice_api.headers, "Idempotency-Key": "k"}
        )
    ).status_code == 403


async def test_completion_checks_every_code_on_the_date_of_service(
    practice_api: Api, tenant: Tenant, make_staff: MakeStaff
) -> None:
    await _encounter(practice_api)
    coder = await make_staff(Role.CODER, tenant)
    item_id = (await coder.post("/coding/next")).json()["id"]
    wrong = {
        "diagnoses": ["E11.9", "E11.65"],  # E1165 is not in the loaded release
        "lines": [
            {"procedure_code": "99213", "modifiers": ["25"], "diagnosis_pointers": [1, 2]},
            {"procedure_code": "J3490", "charge_cents": 100, "diagnosis_pointers": [1]},  # no HCPCS loaded
        ],
    }
    refused = await coder.post(f"/coding/items/{item_id}/complete", wrong)
    assert refused.status_code == 422, refused.text
    errors = {e["pointer"]: e["detail"] for e in refused.json()["errors"]}
    assert set(errors) == {"/diagnoses/1", "/lines/1/procedure_code"}
    assert errors["/diagnoses/1"].startswith("E1165 is not valid on ")
    assert "unknown code" in errors["/diagnoses/1"]
    assert (
        "HCPCS" in errors["/lines/1/procedure_code"] or "hcpcs" in errors["/lines/1/procedure_code"].lower()
    )
    # Nothing was saved and the coder still holds the item.
    assert (await coder.get(f"/coding/items/{item_id}")).json()["item"]["status"] == "leased"
