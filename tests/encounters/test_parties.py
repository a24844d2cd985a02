"""A dependent's coverage carries the subscriber's demographics (encrypted field by field, audited on read);
an encounter carries its referring provider, service facility and prior authorization. Bad ones are a 422
naming the field, and nothing is written."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Api, encounter_payload, patient_payload

SUBSCRIBER = {
    "family_name": "Parentfake",
    "given_name": "Patrick",
    "middle_name": "Quincy",
    "birth_date": "1975-06-15",
    "sex": "male",
    "address": {"line1": "9 Oak Street", "city": "Peoria", "state": "IL", "postal_code": "61602-1234"},
}
REFERRING = {"npi": "1245319599", "family_name": "Referfake", "given_name": "Rita", "taxonomy": "207Q00000X"}
FACILITY = {
    "name": "Fake Ambulatory Center",
    "npi": "1679576722",
    "address": {"line1": "200 Main St", "city": "Springfield", "state": "IL", "postal_code": "627019876"},
}


def dependent_payload(**overrides: Any) -> dict[str, Any]:
    coverage = {
        "payer_id": "DEMO-MCR",
        "member_id": f"M{uuid.uuid4().hex[:10]}",
        "relationship": "child",
        "subscriber": SUBSCRIBER,
    }
    fields: dict[str, Any] = {
        "patient": patient_payload(birth_date="2012-05-06"),
        "coverage": coverage,
        "referring_provider": REFERRING,
        "service_facility": FACILITY,
        "prior_authorization": "AUTH-2026/0042",
        **overrides,
    }
    return encounter_payload(**fields)


async def _one(owner_engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def test_dependent_coverage_and_encounter_parties_round_trip(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    created = await practice_api.post("/encounters", dependent_payload())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["referring_provider"] == REFERRING
    assert body["service_facility"] == {**FACILITY, "address": {**FACILITY["address"], "line2": None}}
    assert body["prior_authorization"] == "AUTH-2026/0042"
    assert (await practice_api.get(f"/encounters/{body['id']}")).json() == body

    coverages = await practice_api.get(f"/patients/{body['patient_id']}/coverages")
    assert coverages.status_code == 200
    [coverage] = coverages.json()
    assert coverage["relationship"] == "child"
    assert coverage["subscriber"] == {**SUBSCRIBER, "address": {**SUBSCRIBER["address"], "line2": None}}

    # At rest: ciphertext, never the clear text of any subscriber field; the sex plain, as the patient's.
    raw = await _one(
        owner_engine,
        "SELECT subscriber_family_name, subscriber_given_name, subscriber_middle_name, subscriber_birth_date,"
        " subscriber_address, subscriber_sex FROM rcm.coverage WHERE id = :c",
        c=uuid.UUID(coverage["id"]),
    )
    for column, clear in zip(
        raw[:5], (b"Parentfake", b"Patrick", b"Quincy", b"1975-06-15", b"Peoria"), strict=True
    ):
        assert isinstance(column, bytes)
        assert clear not in column
    assert raw[5] == "male"

    # The read that opened them is audited, naming the coverage and the patient.
    event = await _one(
        owner_engine,
        "SELECT resource_ids, patient_ids FROM rcm.audit_event WHERE tenant_id = :t"
        " AND event_type = 'coverage.search' ORDER BY occurred_at DESC LIMIT 1",
        t=uuid.UUID(practice_api.tenant_id or ""),
    )
    assert list(event.resource_ids) == [uuid.UUID(coverage["id"])]
    assert list(event.patient_ids) == [uuid.UUID(body["patient_id"])]

    stored = await _one(
        owner_engine,
        "SELECT referring_npi, referring_family_name, facility_name, facility_postal_code,"
        " prior_authorization FROM rcm.encounter WHERE id = :e",
        e=uuid.UUID(body["id"]),
    )
    assert tuple(stored) == (
        "1245319599",
        "Referfake",
        "Fake Ambulatory Center",
        "627019876",
        "AUTH-2026/0042",
    )


async def test_coverage_route_takes_the_subscriber_too(practice_api: Api) -> None:
    patient = await practice_api.post("/patients", patient_payload())
    assert patient.status_code == 201
    path = f"/patients/{patient.json()['id']}/coverages"
    spouse = {"payer_id": "DEMO-MCR", "member_id": "SPOUSE1", "relationship": "spouse"}
    refused = await practice_api.post(path, spouse)
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/subscriber"]
    minimal = {"family_name": "Spousefake", "given_name": "Sam", "birth_date": "1979-01-01"}
    created = await practice_api.post(path, {**spouse, "subscriber": minimal})
    assert created.status_code == 201, created.text
    assert created.json()["subscriber"] == {**minimal, "middle_name": None, "sex": None, "address": None}


async def _refusal(api: Api, payload: dict[str, Any]) -> list[str]:
    response = await api.post("/encounters", payload)
    assert response.status_code == 422, response.text
    assert "Parentfake" not in response.text  # no PHI in an error body
    return [error["pointer"] for error in response.json()["errors"]]


async def test_bad_parties_are_refused_naming_the_field(practice_api: Api, owner_engine: AsyncEngine) -> None:
    no_subscriber = dependent_payload()
    del no_subscriber["coverage"]["subscriber"]
    assert await _refusal(practice_api, no_subscriber) == ["/coverage/subscriber"]

    no_birth = dependent_payload()
    no_birth["coverage"]["subscriber"] = {k: v for k, v in SUBSCRIBER.items() if k != "birth_date"}
    assert any("birth_date" in p for p in await _refusal(practice_api, no_birth))

    no_name = dependent_payload()
    no_name["coverage"]["subscriber"] = {k: v for k, v in SUBSCRIBER.items() if k != "family_name"}
    assert any("family_name" in p for p in await _refusal(practice_api, no_name))

    on_self = dependent_payload()
    on_self["coverage"]["relationship"] = "self"
    assert await _refusal(practice_api, on_self) == ["/coverage/subscriber"]

    future = dependent_payload()
    future["coverage"]["subscriber"] = {**SUBSCRIBER, "birth_date": "2999-01-01"}
    assert await _refusal(practice_api, future) == ["/coverage/subscriber/birth_date"]

    typo = dependent_payload(referring_provider={**REFERRING, "npi": "1245319590"})
    assert await _refusal(practice_api, typo) == ["/referring_provider/npi"]

    facility_typo = dependent_payload(service_facility={**FACILITY, "npi": "1679576720"})
    assert await _refusal(practice_api, facility_typo) == ["/service_facility/npi"]

    for bad in ("", "A" * 51, "AUTH*1", "AUTH~1", " AUTH", "AUTH:1"):
        assert any(
            "prior_authorization" in p
            for p in await _refusal(practice_api, dependent_payload(prior_authorization=bad))
        ), bad

    no_family = dependent_payload(referring_provider={"npi": "1245319599"})
    assert any("family_name" in p for p in await _refusal(practice_api, no_family))

    no_address = dependent_payload(service_facility={"name": "Fake Center"})
    assert any("address" in p for p in await _refusal(practice_api, no_address))

    tenant = uuid.UUID(practice_api.tenant_id or "")
    counts = await _one(
        owner_engine,
        "SELECT (SELECT count(*) FROM rcm.encounter WHERE tenant_id = :t),"
        " (SELECT count(*) FROM rcm.coverage WHERE tenant_id = :t)",
        t=tenant,
    )
    assert tuple(counts) == (0, 0)


async def test_a_correction_adds_the_prior_authorization_and_replaces_the_referrer(practice_api: Api) -> None:
    payload = encounter_payload()
    created = await practice_api.post("/encounters", payload)
    assert created.status_code == 201, created.text
    encounter_id = created.json()["id"]
    assert created.json()["prior_authorization"] is None
    path = f"/encounters/{encounter_id}/corrections"

    refused = await practice_api.post(path, {"referring_provider": {**REFERRING, "npi": "1245319590"}})
    assert refused.status_code == 422
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/referring_provider/npi"]

    corrected = await practice_api.post(
        path, {"prior_authorization": "LATE-1", "referring_provider": REFERRING}
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert body["prior_authorization"] == "LATE-1"
    assert body["referring_provider"] == REFERRING
    assert body["service_facility"] is None
    assert (await practice_api.get(f"/encounters/{encounter_id}")).json()["prior_authorization"] == "LATE-1"
