"""Bulk lines of an institutional practice carry the 837I facts: NDJSON through the same schema as the JSON
API, CSV through its documented columns (``type_of_bill``... and ``line{n}_revenue_code``); a bad one is
rejected naming its pointer and column."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.bulk.conftest import ndjson, run, upload
from tests.claims.test_institutional import ATTENDING, institutional_payload
from tests.support import Api

pytestmark = pytest.mark.usefixtures("jobs")

CSV_HEADER = (
    "external_id,service_date,place_of_service,patient_mrn,patient_given_name,patient_family_name,"
    "patient_birth_date,patient_sex,coverage_payer_id,coverage_member_id,rendering_npi,rendering_name,"
    "type_of_bill,statement_start,statement_end,admission_date,admission_hour,admission_type,"
    "admission_source,patient_status,attending_npi,attending_family_name,attending_given_name,"
    "admitting_diagnosis,diagnosis_codes,line1_procedure_code,line1_revenue_code,line1_charge_cents"
)


def _csv_row(*, revenue_code: str = "0510", hour: str = "9") -> str:
    day = (date.today() - timedelta(days=2)).isoformat()
    suffix = uuid.uuid4().hex[:8]
    return (
        f"ENC-{suffix},{day},22,MRN-{suffix},Testy,Fakename{suffix},1980-02-29,female,DEMO-MCR,M{suffix},"
        f"1234567893,Dr Example Fake,0131,{day},{day},{day},{hour},3,1,01,1245319599,Attendfake,Alma,"
        f"E11.9,E11.9|I10,99213,{revenue_code},12500"
    )


async def _results(api: Api, job_id: str) -> list[dict[str, object]]:
    assert await run(api, job_id) == "done"
    items: list[dict[str, object]] = (await api.get(f"/bulk-intakes/{job_id}/results")).json()["items"]
    return items


async def test_ndjson_lines_carry_the_institutional_facts(institutional_practice_api: Api) -> None:
    broken = institutional_payload()
    broken["charges"][0]["revenue_code"] = "51"
    created = await upload(institutional_practice_api, ndjson(institutional_payload(), broken))
    assert created.status_code == 202, created.text
    results = await _results(institutional_practice_api, created.json()["id"])
    assert [r["outcome"] for r in results] == ["accepted", "rejected"]
    assert [e["pointer"] for e in results[1]["errors"]] == ["/charges/0/revenue_code"]  # type: ignore[attr-defined]
    encounter = (await institutional_practice_api.get(f"/encounters/{results[0]['encounter_id']}")).json()
    assert encounter["claim_type"] == "institutional"
    assert encounter["institutional"]["attending_provider"] == ATTENDING
    assert encounter["charges"][0]["revenue_code"] == "0510"


async def test_csv_columns_carry_the_institutional_facts(institutional_practice_api: Api) -> None:
    body = "\n".join([CSV_HEADER, _csv_row(), _csv_row(revenue_code="5100"), _csv_row(hour="24")]) + "\n"
    created = await upload(institutional_practice_api, body.encode(), media="text/csv")
    assert created.status_code == 202, created.text
    results = await _results(institutional_practice_api, created.json()["id"])
    assert [r["outcome"] for r in results] == ["accepted", "accepted", "rejected"]
    assert results[2]["errors"] == [
        {
            "pointer": "/institutional/admission_hour",
            "detail": "must be at most 23",
            "column": "admission_hour",
        }
    ]
    encounter = (await institutional_practice_api.get(f"/encounters/{results[0]['encounter_id']}")).json()
    facts = encounter["institutional"]
    assert facts["type_of_bill"] == "131"
    assert (facts["admission_hour"], facts["patient_status"]) == (9, "01")
    assert facts["attending_provider"] == ATTENDING
    assert facts["admitting_diagnosis"] == "E119"
    assert encounter["charges"][0]["revenue_code"] == "0510"
