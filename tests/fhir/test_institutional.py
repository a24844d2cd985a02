"""FHIR intake for an institutional practice: the Claim's CARIN BB-shaped supportingInfo (typeofbill,
admissiontype, pointoforigin, discharge-status, admissionperiod), billablePeriod, attending careTeam member,
admitting diagnosis and item.revenue become the encounter's institutional block and revenue codes. A
professional practice's encounter from the same bundle carries none of it (the Claim's type never decides);
a bad value is a 422 naming the element."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from tests.fhir import bundles
from tests.fhir.conftest import Fhir
from tests.fhir.test_intake import encounter_of, outcome_expressions
from tests.support import Api

ENCOUNTER, CLAIM = 2, 5
CARIN_INFO = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
NUBC = "https://www.nubc.org/CodeSystem/"


def _info(sequence: int, category: str, **value: Any) -> dict[str, Any]:
    return {"sequence": sequence, "category": {"coding": [{"system": CARIN_INFO, "code": category}]}, **value}


def institutional_bundle() -> dict[str, Any]:
    """The EHR visit of the FHIR tests, its Claim typed and filled as CARIN BB's inpatient/outpatient
    institutional claims are."""
    bundle = bundles.ehr_visit_bundle()
    entries = bundle["entry"]
    claim = entries[CLAIM]["resource"]
    day = (date.today() - timedelta(days=2)).isoformat()
    attending_id = f"att-{uuid.uuid4().hex[:8]}"
    claim["type"] = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]
    }
    claim["billablePeriod"] = {"start": day, "end": day}
    claim["supportingInfo"] = [
        _info(1, "typeofbill", code={"coding": [{"system": f"{NUBC}TypeOfBill", "code": "0131"}]}),
        _info(
            2,
            "admissiontype",
            code={"coding": [{"system": f"{NUBC}PriorityTypeOfAdmitOrVisit", "code": "3"}]},
        ),
        _info(
            3,
            "pointoforigin",
            code={"coding": [{"system": f"{NUBC}PointOfOriginForAdmissionOrVisit", "code": "1"}]},
        ),
        _info(
            4, "discharge-status", code={"coding": [{"system": f"{NUBC}PatDischargeStatus", "code": "01"}]}
        ),
        _info(5, "admissionperiod", timingPeriod={"start": f"{day}T14:30:00-07:00"}),
    ]
    claim["careTeam"] = [
        {
            "sequence": 1,
            "provider": {"reference": f"Practitioner/{attending_id}"},
            "role": {"coding": [{"code": "attending"}]},
        }
    ]
    claim["diagnosis"].append(
        {
            "sequence": 3,
            "type": [{"coding": [{"code": "admitting"}]}],
            "diagnosisCodeableConcept": {"coding": [{"system": bundles.ICD10CM, "code": "E11.9"}]},
        }
    )
    for item, code in zip(claim["item"], ("0510", "0510"), strict=False):
        item["revenue"] = {"coding": [{"system": f"{NUBC}RevenueCodes", "code": code}]}
    attending = {
        "resourceType": "Practitioner",
        "id": attending_id,
        "identifier": [{"system": bundles.NPI, "value": "1245319599"}],
        "name": [{"family": "Attendfake", "given": ["Alma"]}],
    }
    entries.append(
        {
            "fullUrl": f"https://ehr.example.test/fhir/Practitioner/{attending_id}",
            "resource": attending,
            "request": {"method": "PUT", "url": f"Practitioner/{attending_id}"},
        }
    )
    return bundle


async def test_an_institutional_claim_fills_the_institutional_block(institutional_practice_api: Api) -> None:
    response = await Fhir(institutional_practice_api).post(institutional_bundle())
    assert response.status_code == 200, response.text
    body = response.json()
    encounter = await encounter_of(
        institutional_practice_api, body["entry"][ENCOUNTER]["response"]["location"]
    )
    day = (date.today() - timedelta(days=2)).isoformat()
    assert encounter["claim_type"] == "institutional"
    assert encounter["institutional"] == {
        "type_of_bill": "131",
        "statement_start": day,
        "statement_end": day,
        "admission_date": day,
        "admission_hour": 14,
        "admission_type": "3",
        "admission_source": "1",
        "patient_status": "01",
        "attending_provider": {"npi": "1245319599", "family_name": "Attendfake", "given_name": "Alma"},
        "admitting_diagnosis": "E119",
    }
    assert [line["revenue_code"] for line in encounter["charges"]] == ["0510", "0510"]


async def test_a_professional_practice_ignores_the_institutional_claim(fhir: Fhir, practice_api: Api) -> None:
    response = await fhir.post(institutional_bundle())
    assert response.status_code == 200, response.text
    encounter = await encounter_of(practice_api, response.json()["entry"][ENCOUNTER]["response"]["location"])
    assert encounter["claim_type"] == "professional"
    assert encounter["institutional"] is None
    assert {line["revenue_code"] for line in encounter["charges"]} == {None}


async def test_a_bad_institutional_value_names_the_element(institutional_practice_api: Api) -> None:
    bundle = institutional_bundle()
    claim = bundle["entry"][CLAIM]["resource"]
    claim["item"][0]["revenue"]["coding"][0]["code"] = "510"
    claim["supportingInfo"][3]["code"]["coding"][0]["code"] = "home"
    response = await Fhir(institutional_practice_api).post(bundle)
    assert response.status_code == 422, response.text
    assert outcome_expressions(response.json()) == [f"Bundle.entry[{CLAIM}].resource.item[0].revenue"]
    claim["item"][0]["revenue"]["coding"][0]["code"] = "0510"
    response = await Fhir(institutional_practice_api).post(bundle)
    assert response.status_code == 422, response.text
    assert outcome_expressions(response.json()) == [f"Bundle.entry[{CLAIM}].resource.supportingInfo[3].code"]
