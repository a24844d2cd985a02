"""Bulk lines carry a dependent's subscriber, the referring provider, the service facility and the prior
authorization: NDJSON through the same schema as the JSON API, CSV through its documented columns."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.bulk.conftest import ndjson, run, upload
from tests.encounters.test_parties import REFERRING, dependent_payload
from tests.support import Api

pytestmark = pytest.mark.usefixtures("jobs")

CSV_HEADER = (
    "external_id,service_date,place_of_service,patient_mrn,patient_given_name,patient_family_name,"
    "patient_birth_date,patient_sex,coverage_payer_id,coverage_member_id,coverage_relationship,"
    "subscriber_family_name,subscriber_given_name,subscriber_birth_date,subscriber_sex,rendering_npi,"
    "rendering_name,referring_npi,referring_family_name,referring_given_name,facility_name,"
    "facility_address_line1,facility_city,facility_state,facility_postal_code,prior_authorization,"
    "diagnosis_codes,line1_procedure_code,line1_charge_cents,line1_diagnosis_pointers"
)


def _csv_row(*, relationship: str = "child", subscriber_birth: str = "1975-06-15") -> str:
    day = (date.today() - timedelta(days=2)).isoformat()
    suffix = uuid.uuid4().hex[:8]
    return (
        f"ENC-{suffix},{day},11,MRN-{suffix},Kid,Fakename{suffix},2012-05-06,female,DEMO-MCR,M{suffix},"
        f"{relationship},Parentfake,Pat,{subscriber_birth},male,1234567893,Dr Example Fake,1245319599,"
        "Referfake,Rita,Fake Center,200 Main St,Springfield,IL,62701,PA-77,E11.9,99213,12500,1"
    )


async def _results(api: Api, job_id: str) -> list[dict[str, object]]:
    assert await run(api, job_id) == "done"
    items: list[dict[str, object]] = (await api.get(f"/bulk-intakes/{job_id}/results")).json()["items"]
    return items


async def test_ndjson_lines_carry_the_parties(practice_api: Api) -> None:
    broken = dependent_payload()
    del broken["coverage"]["subscriber"]
    created = await upload(practice_api, ndjson(dependent_payload(), broken))
    assert created.status_code == 202, created.text
    results = await _results(practice_api, created.json()["id"])
    assert [r["outcome"] for r in results] == ["accepted", "rejected"]
    assert results[1]["errors"] == [
        {"pointer": "/coverage/subscriber", "detail": "is required when relationship is not self"}
    ]
    encounter = (await practice_api.get(f"/encounters/{results[0]['encounter_id']}")).json()
    assert encounter["referring_provider"] == REFERRING
    assert encounter["prior_authorization"] == "AUTH-2026/0042"


async def test_csv_columns_carry_the_parties(practice_api: Api) -> None:
    body = "\n".join([CSV_HEADER, _csv_row(), _csv_row(relationship="self")]) + "\n"
    created = await upload(practice_api, body.encode(), media="text/csv")
    assert created.status_code == 202, created.text
    results = await _results(practice_api, created.json()["id"])
    assert [r["outcome"] for r in results] == ["accepted", "rejected"]
    assert results[1]["errors"][0]["pointer"] == "/coverage/subscriber"  # type: ignore[index]
    encounter = (await practice_api.get(f"/encounters/{results[0]['encounter_id']}")).json()
    assert encounter["referring_provider"]["family_name"] == "Referfake"
    assert encounter["service_facility"]["address"]["city"] == "Springfield"
    assert encounter["prior_authorization"] == "PA-77"
    [coverage] = (await practice_api.get(f"/patients/{encounter['patient_id']}/coverages")).json()
    assert coverage["subscriber"]["family_name"] == "Parentfake"
    assert coverage["subscriber"]["sex"] == "male"
