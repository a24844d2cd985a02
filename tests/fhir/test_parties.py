"""FHIR intake of a claim's other parties: a RelatedPerson subscriber of a dependent's Coverage, an Encounter
participant of type REF, a Location as the service facility and the Claim's preAuthRef; broken variants are
a 4xx OperationOutcome naming the element, and nothing is written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fhir import bundles
from tests.fhir.conftest import Fhir
from tests.fhir.test_intake import TABLES, counts, encounter_of, outcome_expressions, statuses
from tests.support import Api

REF_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
PATIENT, COVERAGE, ENCOUNTER, CLAIM, RELATED, REFERRER, LOCATION = 0, 1, 2, 5, 6, 7, 8


def dependent_bundle() -> dict[str, Any]:
    """The EHR visit of a child, covered under a parent's plan, referred, seen at a facility of its own,
    under a prior authorization."""
    bundle = bundles.ehr_visit_bundle()
    entries = bundle["entry"]
    patient, coverage = entries[PATIENT]["resource"], entries[COVERAGE]["resource"]
    encounter, claim = entries[ENCOUNTER]["resource"], entries[CLAIM]["resource"]
    patient["birthDate"] = "2012-05-06"
    related_id, referrer_id, location_id = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("rp", "pr", "loc"))
    related = {
        "resourceType": "RelatedPerson",
        "id": related_id,
        "patient": {"reference": f"Patient/{patient['id']}"},
        "name": [{"family": "Parentfake", "given": ["Pat", "Quinn"]}],
        "gender": "male",
        "birthDate": "1975-06-15",
        "address": [{"line": ["9 Oak Street"], "city": "Peoria", "state": "Illinois", "postalCode": "61602"}],
    }
    referrer = {
        "resourceType": "Practitioner",
        "id": referrer_id,
        "identifier": [{"system": bundles.NPI, "value": "1679576722"}],
        "name": [{"family": "Referfake", "given": ["Rita"]}],
    }
    location = {
        "resourceType": "Location",
        "id": location_id,
        "name": "Fake Ambulatory Center",
        "identifier": [{"system": bundles.NPI, "value": "1555555550"}],
        "address": {"line": ["200 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"},
    }
    coverage["relationship"] = {"coding": [{"system": RELATIONSHIP, "code": "child"}]}
    coverage["subscriber"] = {"reference": f"RelatedPerson/{related_id}"}
    encounter["participant"].append(
        {
            "type": [{"coding": [{"system": REF_TYPE, "code": "REF"}]}],
            "individual": {"reference": f"Practitioner/{referrer_id}"},
        }
    )
    encounter["location"] = [{"location": {"reference": f"Location/{location_id}"}}]
    claim["insurance"][0]["preAuthRef"] = ["PA-2026/0042"]
    base = "https://ehr.example.test/fhir"
    for resource in (related, referrer, location):
        entries.append(
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )
    return bundle


async def test_dependent_visit_carries_subscriber_referrer_facility_and_authorization(
    fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    bundle = dependent_bundle()
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert statuses(body)[: CLAIM + 1] == ["201 Created"] * (CLAIM + 1)
    assert statuses(body)[RELATED] == "200 OK"
    encounter = await encounter_of(practice_api, body["entry"][ENCOUNTER]["response"]["location"])
    assert encounter["referring_provider"] == {
        "npi": "1679576722",
        "family_name": "Referfake",
        "given_name": "Rita",
        "taxonomy": None,
    }
    assert encounter["service_facility"] == {
        "name": "Fake Ambulatory Center",
        "npi": "1555555550",
        "address": {
            "line1": "200 Main St",
            "line2": None,
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
    }
    assert encounter["prior_authorization"] == "PA-2026/0042"
    # The referrer is no performer: the contained practitioner still renders.
    rendering = (await practice_api.get(f"/providers/{encounter['rendering_provider_id']}")).json()
    assert rendering["npi"] == "1245319599"

    [coverage] = (await practice_api.get(f"/patients/{encounter['patient_id']}/coverages")).json()
    assert coverage["relationship"] == "child"
    assert coverage["subscriber"] == {
        "family_name": "Parentfake",
        "given_name": "Pat",
        "middle_name": "Quinn",
        "birth_date": "1975-06-15",
        "sex": "male",
        "address": {
            "line1": "9 Oak Street",
            "line2": None,
            "city": "Peoria",
            "state": "IL",
            "postal_code": "61602",
        },
    }
    async with owner_engine.connect() as conn:
        raw = (
            await conn.execute(
                text("SELECT subscriber_family_name, subscriber_birth_date FROM rcm.coverage WHERE id = :c"),
                {"c": uuid.UUID(coverage["id"])},
            )
        ).one()
    assert b"Parentfake" not in raw[0]
    assert b"1975" not in raw[1]


async def test_facility_of_the_billing_provider_is_no_2310c(fhir: Fhir, practice_api: Api) -> None:
    bundle = dependent_bundle()
    # The Location is the billing organization's own (its managing Organization's NPI bills).
    location = bundle["entry"][LOCATION]["resource"]
    del location["identifier"]
    location["managingOrganization"] = {"reference": f"Organization?identifier={bundles.NPI}|1104025329"}
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    encounter = await encounter_of(practice_api, response.json()["entry"][ENCOUNTER]["response"]["location"])
    assert encounter["service_facility"] is None
    assert encounter["referring_provider"]["npi"] == "1679576722"


async def test_the_claims_referral_names_the_referrer(fhir: Fhir, practice_api: Api) -> None:
    """No REF participant: the requester of the Claim's referral (a contained ServiceRequest) refers."""
    bundle = dependent_bundle()
    entries = bundle["entry"]
    _res(entries, ENCOUNTER)["participant"].pop()
    referrer_id = _res(entries, REFERRER)["id"]
    claim = _res(entries, CLAIM)
    claim["contained"] = [
        {
            "resourceType": "ServiceRequest",
            "id": "referral",
            "status": "completed",
            "intent": "order",
            "subject": {"reference": f"Patient/{_res(entries, PATIENT)['id']}"},
            "requester": {"reference": f"Practitioner/{referrer_id}"},
        }
    ]
    claim["referral"] = {"reference": "#referral"}
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    encounter = await encounter_of(practice_api, response.json()["entry"][ENCOUNTER]["response"]["location"])
    assert encounter["referring_provider"]["npi"] == "1679576722"
    assert encounter["referring_provider"]["family_name"] == "Referfake"


def _broken(change: Any) -> dict[str, Any]:
    bundle = dependent_bundle()
    change(bundle["entry"])
    return bundle


def _res(entries: list[dict[str, Any]], index: int) -> dict[str, Any]:
    resource: dict[str, Any] = entries[index]["resource"]
    return resource


BROKEN: dict[str, tuple[Any, str]] = {
    "a dependent without subscriber": (
        lambda e: _res(e, COVERAGE).pop("subscriber"),
        f"Bundle.entry[{COVERAGE}].resource.subscriber",
    ),
    "a subscriber without birth date": (
        lambda e: _res(e, RELATED).pop("birthDate"),
        f"Bundle.entry[{RELATED}].resource.birthDate",
    ),
    "a subscriber without name": (
        lambda e: _res(e, RELATED).pop("name"),
        f"Bundle.entry[{RELATED}].resource.name",
    ),
    "a RelatedPerson subscriber on a self coverage": (
        lambda e: _res(e, COVERAGE).update(
            relationship={"coding": [{"system": RELATIONSHIP, "code": "self"}]}
        ),
        f"Bundle.entry[{COVERAGE}].resource.subscriber",
    ),
    "a subscriber not in the bundle": (
        lambda e: _res(e, COVERAGE).update(subscriber={"reference": "RelatedPerson/never-sent"}),
        f"Bundle.entry[{COVERAGE}].resource.subscriber",
    ),
    "a referrer failing the NPI check digit": (
        lambda e: _res(e, REFERRER)["identifier"][0].update(value="1679576720"),
        f"Bundle.entry[{ENCOUNTER}].resource.participant[1].individual",
    ),
    "a referrer without NPI": (
        lambda e: _res(e, REFERRER).pop("identifier"),
        f"Bundle.entry[{ENCOUNTER}].resource.participant[1].individual",
    ),
    "a prior authorization X12 cannot carry": (
        lambda e: _res(e, CLAIM)["insurance"][0].update(preAuthRef=["PA*1~2"]),
        f"Bundle.entry[{CLAIM}].resource.insurance[0].preAuthRef[0]",
    ),
    "a claim facility without address": (
        lambda e: (
            _res(e, CLAIM).update(facility={"reference": f"Location/{_res(e, LOCATION)['id']}"}),
            _res(e, LOCATION).pop("address"),
        ),
        f"Bundle.entry[{LOCATION}].resource.address",
    ),
    "a claim facility failing the NPI check digit": (
        lambda e: (
            _res(e, CLAIM).update(facility={"reference": f"Location/{_res(e, LOCATION)['id']}"}),
            _res(e, LOCATION)["identifier"][0].update(value="1555555551"),
        ),
        f"Bundle.entry[{CLAIM}].resource.facility",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
async def test_broken_parties_name_the_element(
    name: str, fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    change, expression = BROKEN[name]
    response = await fhir.post(_broken(change))
    assert 400 <= response.status_code < 500, response.text
    named = outcome_expressions(response.json())
    assert expression in named, (name, named)
    assert "Parentfake" not in response.text
    assert await counts(owner_engine, practice_api.tenant_id or "") == dict.fromkeys(TABLES, 0)
