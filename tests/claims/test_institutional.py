"""Institutional practices (manifest ``claim_type: institutional``): their encounters carry the 837I facts
(type of bill, statement period, admission, patient status, attending provider) and revenue codes, pass
the institutional scrub edits, are built into claims typed institutional, batched apart from professional
claims, and rendered as an 837I that pyx12 validates with zero errors."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.claims.conftest import rows
from tests.support import Api, encounter_payload

ATTENDING = {"npi": "1245319599", "family_name": "Attendfake", "given_name": "Alma"}


def institutional_payload(**overrides: Any) -> dict[str, Any]:
    """An outpatient hospital visit (type of bill 131) with revenue-coded lines the demo code sets know."""
    day = date.today() - timedelta(days=3)
    fields: dict[str, Any] = {
        "service_date": day.isoformat(),
        "place_of_service": "22",
        "institutional": {
            "type_of_bill": "0131",
            "statement_start": day.isoformat(),
            "statement_end": day.isoformat(),
            "admission_date": day.isoformat(),
            "admission_hour": 9,
            "admission_type": "3",
            "admission_source": "1",
            "patient_status": "01",
            "attending_provider": ATTENDING,
            "admitting_diagnosis": "E11.9",
        },
        "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
        "charges": [
            {
                "procedure_code": "99213",
                "revenue_code": "0510",
                "charge_cents": 12500,
                "units": 1,
                "diagnosis_pointers": [1, 2],
            }
        ],
        **overrides,
    }
    return encounter_payload(**fields)


async def test_an_institutional_encounter_round_trips_its_facts(
    institutional_api: Api, owner_engine: AsyncEngine
) -> None:
    created = await institutional_api.post("/encounters", institutional_payload())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["claim_type"] == "institutional"
    facts = body["institutional"]
    assert facts["type_of_bill"] == "131"  # the form's leading zero dropped
    assert facts["attending_provider"] == ATTENDING
    assert facts["admitting_diagnosis"] == "E119"
    assert body["charges"][0]["revenue_code"] == "0510"
    [stored] = await rows(
        owner_engine,
        "SELECT claim_type, type_of_bill, patient_status, attending_npi FROM rcm.encounter WHERE id = :id",
        id=body["id"],
    )
    assert tuple(stored) == ("institutional", "131", "01", "1245319599")


async def test_bad_institutional_facts_are_a_422_naming_the_field(institutional_api: Api) -> None:
    payload = institutional_payload()
    payload["charges"][0]["revenue_code"] = "510"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/charges/0/revenue_code"]

    payload = institutional_payload()
    payload["institutional"]["statement_end"] = "2020-01-01"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/institutional/statement_end"]

    payload = institutional_payload()
    payload["institutional"]["type_of_bill"] = "9X1"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/institutional/type_of_bill"]


async def test_a_professional_encounter_refuses_institutional_facts(practice_api: Api) -> None:
    refused = await practice_api.post("/encounters", institutional_payload())
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/charges/0/revenue_code", "/institutional"]
    # Naming the claim type on the encounter overrides the practice's.
    created = await practice_api.post("/encounters", institutional_payload(claim_type="institutional"))
    assert created.status_code == 201, created.text
    assert created.json()["claim_type"] == "institutional"
