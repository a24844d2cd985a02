"""FHIR R4 intake fed with bundles shaped like Synthea's and EHRs' (tests/fhir/bundles.py)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fhir import bundles
from tests.fhir.conftest import FHIR_JSON, Fhir
from tests.support import Api

TABLES = ("patient", "coverage", "provider", "encounter", "diagnosis", "charge_line", "fhir_resource_link")


async def counts(owner_engine: AsyncEngine, tenant_id: str) -> dict[str, int]:
    out = {}
    async with owner_engine.connect() as conn:
        for table in TABLES:
            out[table] = int(
                (
                    await conn.execute(
                        text(f"SELECT count(*) FROM rcm.{table} WHERE tenant_id = :t"),  # noqa: S608 - constants
                        {"t": uuid.UUID(tenant_id)},
                    )
                ).scalar_one()
            )
    return out


def statuses(response_bundle: dict[str, Any]) -> list[str]:
    return [e["response"]["status"] for e in response_bundle["entry"]]


def outcome_expressions(body: dict[str, Any]) -> list[str]:
    OperationOutcome.model_validate(body)  # a valid R4 OperationOutcome
    return [x for issue in body["issue"] for x in issue.get("expression", [])]


async def encounter_of(api: Api, location: str) -> dict[str, Any]:
    response = await api.client.get(location, headers=api.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_ehr_visit_carries_icd_and_cpt_with_contained_and_conditional_providers(
    fhir: Fhir, practice_api: Api
) -> None:
    bundle = bundles.ehr_visit_bundle()
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "transaction-response"
    assert statuses(body) == ["201 Created"] * 6
    encounter = await encounter_of(practice_api, body["entry"][2]["response"]["location"])
    assert encounter["status"] == "needs_coding"
    assert encounter["external_id"] == bundle["entry"][2]["resource"]["id"]
    assert [d["code"] for d in encounter["diagnoses"]] == ["E119", "I10"]
    assert [
        (c["procedure_code"], c["charge_cents"], c["modifiers"], c["diagnosis_pointers"])
        for c in encounter["charges"]
    ] == [("99213", 12500, ["25"], [1, 2]), ("G2211", 1650, [], [1])]
    assert encounter["total_charge_cents"] == 14150
    assert encounter["place_of_service"] == "11"
    assert encounter["coverage_id"] is not None
    assert "SNOMED CT 44054006" in encounter["documentation"]
    # The contained practitioner renders; the organisation named only by a conditional reference (not in
    # the bundle) was created from its NPI and bills.
    rendering = (await practice_api.get(f"/providers/{encounter['rendering_provider_id']}")).json()
    billing = (await practice_api.get(f"/providers/{encounter['billing_provider_id']}")).json()
    assert (rendering["npi"], rendering["kind"]) == ("1245319599", "individual")
    assert (billing["npi"], billing["kind"], billing["name"]) == (
        "1104025329",
        "organization",
        "Example Group Practice",
    )
    patient_location = body["entry"][0]["response"]["location"]
    patient = (await practice_api.client.get(patient_location, headers=practice_api.headers)).json()
    assert patient["mrn"] == bundle["entry"][0]["resource"]["identifier"][1]["value"]
    assert patient["address"]["state"] == "MA"  # Synthea writes the state's name


async def test_synthea_record_snomed_only_is_needs_coding_with_notes(
    fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    bundle = bundles.synthea_bundle(3)
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    entries = body["entry"]
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    for kind, entry in zip(kinds, entries, strict=True):
        if kind in ("Observation", "ExplanationOfBenefit"):
            # Types we do not use: skipped and listed, not refused.
            assert entry["response"]["status"] == "200 OK"
            assert "skipped" in entry["response"]["outcome"]["issue"][0]["diagnostics"]
        elif kind in ("Encounter", "Condition", "Procedure", "Claim", "DocumentReference"):
            assert entry["response"]["status"] == "201 Created", entry
    encounter_locations = [
        e["response"]["location"] for k, e in zip(kinds, entries, strict=True) if k == "Encounter"
    ]
    assert len(set(encounter_locations)) == 3
    source_encounters = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    ]
    for location, source in zip(encounter_locations, source_encounters, strict=True):
        encounter = await encounter_of(practice_api, location)
        assert encounter["status"] == "needs_coding"
        assert encounter["diagnoses"] == []
        assert encounter["charges"] == []
        # The local date of the visit, whatever its UTC offset.
        assert encounter["service_date"] == source["period"]["start"][:10]
        documentation = encounter["documentation"]
        assert "SNOMED CT 162673000 General examination of patient (procedure)" in documentation
        assert "SNOMED CT 44054006 Diabetes mellitus type 2 (disorder)" in documentation
        assert "DEMO NOTE" in documentation  # the base64 note, decoded
        rendering = (await practice_api.get(f"/providers/{encounter['rendering_provider_id']}")).json()
        assert rendering["npi"] == "9999999919"
        assert rendering["npi_check_digit_valid"] is False  # accepted at intake, flagged for the scrub
        status = (await practice_api.get(f"/encounters/{encounter['id']}/status")).json()
        assert status["history"][0]["note"] == "npi_check_digit_failed"
    found = await counts(owner_engine, practice_api.tenant_id)
    assert (found["patient"], found["encounter"], found["coverage"]) == (1, 3, 0)


async def test_a_resent_bundle_creates_nothing_twice(
    fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    for bundle in (bundles.synthea_bundle(2), bundles.ehr_visit_bundle()):
        first = await fhir.post(bundle)
        assert first.status_code == 200, first.text
        before = await counts(owner_engine, practice_api.tenant_id)
        again = await fhir.post(bundle)  # another Idempotency-Key: answered from the identifiers
        assert again.status_code == 200, again.text
        assert "Idempotent-Replayed" not in again.headers
        assert await counts(owner_engine, practice_api.tenant_id) == before
        assert "201 Created" not in statuses(again.json())
        locations = [e["response"].get("location") for e in first.json()["entry"]]
        assert [e["response"].get("location") for e in again.json()["entry"]] == locations


async def test_same_idempotency_key_replays_the_first_response(fhir: Fhir, practice_api: Api) -> None:
    bundle = bundles.ehr_visit_bundle()
    first = await fhir.post(bundle, key="fhir-key-1")
    again = await fhir.post(bundle, key="fhir-key-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = copy.deepcopy(bundle)
    other["entry"][2]["resource"]["period"]["start"] = "2020-01-01"
    reused = await fhir.post(other, key="fhir-key-1")
    assert reused.status_code == 422
    OperationOutcome.model_validate(reused.json())


async def test_collection_is_a_transaction_and_json_content_type_is_accepted(fhir: Fhir) -> None:
    bundle = bundles.ehr_visit_bundle(bundle_type="collection")
    response = await fhir.post(bundle, content_type="application/json")
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"


async def test_transaction_is_all_or_nothing(
    fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    bundle = bundles.ehr_visit_bundle()
    bundle["entry"][4]["resource"]["code"]["coding"][0]["code"] = "NOT-ICD"
    bundle["entry"][1]["resource"]["payor"] = [{"display": "Unknown Payer"}]
    response = await fhir.post(bundle)
    assert response.status_code == 422, response.text
    expressions = outcome_expressions(response.json())
    assert "Bundle.entry[4].resource.code.coding[0].code" in expressions
    assert "Bundle.entry[1].resource.payor" in expressions
    assert await counts(owner_engine, practice_api.tenant_id) == dict.fromkeys(TABLES, 0)
    # A write that fails late (a patient whose MRN belongs to someone else) undoes the writes before it.
    first = bundles.ehr_visit_bundle()
    assert (await fhir.post(first)).status_code == 200
    before = await counts(owner_engine, practice_api.tenant_id)
    clash = bundles.ehr_visit_bundle(mrn=first["entry"][0]["resource"]["identifier"][1]["value"])
    clash["entry"][0]["resource"]["birthDate"] = "1970-01-01"
    refused = await fhir.post(clash)
    assert refused.status_code == 409, refused.text
    assert "Bundle.entry[0].resource.identifier" in outcome_expressions(refused.json())
    assert await counts(owner_engine, practice_api.tenant_id) == before


async def test_batch_answers_entry_by_entry(fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine) -> None:
    bundle = bundles.ehr_visit_bundle(bundle_type="batch")
    broken = copy.deepcopy(bundle["entry"][2])
    broken["resource"]["id"] = "enc-broken"
    broken["resource"]["identifier"][0]["value"] = "enc-broken"
    broken["resource"]["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    broken["fullUrl"] = "https://ehr.example.test/fhir/Encounter/enc-broken"
    bundle["entry"].append(broken)
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    assert statuses(body)[:6] == ["201 Created"] * 6
    last = body["entry"][6]["response"]
    assert last["status"] == "422 Unprocessable Entity"
    assert last["outcome"]["issue"][0]["expression"] == ["Bundle.entry[6].resource.subject"]
    found = await counts(owner_engine, practice_api.tenant_id)
    assert found["encounter"] == 1


async def test_conditional_reference_matching_nothing_without_npi_is_refused(fhir: Fhir) -> None:
    bundle = bundles.ehr_visit_bundle()
    encounter = bundle["entry"][2]["resource"]
    encounter["participant"] = [
        {"individual": {"reference": "Practitioner?identifier=urn:example:staff-id|D-77"}},
    ]
    response = await fhir.post(bundle)
    assert response.status_code == 422, response.text
    assert outcome_expressions(response.json()) == ["Bundle.entry[2].resource.participant[0].individual"]


async def test_conditional_patient_reference_finds_a_patient_sent_before(
    fhir: Fhir, practice_api: Api
) -> None:
    first = bundles.ehr_visit_bundle()
    assert (await fhir.post(first)).status_code == 200
    mrn = first["entry"][0]["resource"]["identifier"][1]["value"]
    later = bundles.ehr_visit_bundle()
    later["entry"] = [
        e for e in later["entry"] if e["resource"]["resourceType"] in ("Encounter", "Condition")
    ]
    for entry in later["entry"]:
        entry["resource"]["subject"] = {
            "reference": f"Patient?identifier=http://hospital.smarthealthit.org|{mrn}"
        }
    response = await fhir.post(later)
    assert response.status_code == 200, response.text
    first_patient = first_location = None
    first_body = (await fhir.post(first)).json()
    first_location = first_body["entry"][0]["response"]["location"]
    first_patient = first_location.rsplit("/", 1)[-1]
    encounter = await encounter_of(practice_api, response.json()["entry"][0]["response"]["location"])
    assert encounter["patient_id"] == first_patient
    assert encounter["coverage_id"] is None


async def test_contained_reference_to_nothing_is_refused(fhir: Fhir) -> None:
    bundle = bundles.ehr_visit_bundle()
    bundle["entry"][2]["resource"]["participant"] = [{"individual": {"reference": "#nobody"}}]
    response = await fhir.post(bundle)
    assert response.status_code == 422
    assert outcome_expressions(response.json()) == ["Bundle.entry[2].resource.participant[0].individual"]


async def test_other_tenant_sees_nothing(
    fhir: Fhir, other_fhir: Fhir, practice_api: Api, other_practice_api: Api, owner_engine: AsyncEngine
) -> None:
    bundle = bundles.ehr_visit_bundle()
    body = (await fhir.post(bundle)).json()
    location = body["entry"][2]["response"]["location"]
    encounter_id = location.rsplit("/", 1)[-1]
    assert (await other_practice_api.get(f"/encounters/{encounter_id}")).status_code == 404
    # The same bundle from the other practice makes that practice's own records: no link of A's answers it.
    other = (await other_fhir.post(bundle)).json()
    assert statuses(other) == ["201 Created"] * 6
    assert other["entry"][2]["response"]["location"].rsplit("/", 1)[-1] != encounter_id
    a, b = (
        await counts(owner_engine, practice_api.tenant_id),
        await counts(owner_engine, other_practice_api.tenant_id),
    )
    assert a == b


async def test_phi_writes_are_audited_like_the_json_intake(
    fhir: Fhir, practice_api: Api, owner_engine: AsyncEngine
) -> None:
    response = await fhir.post(bundles.ehr_visit_bundle())
    assert response.status_code == 200
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type, patient_ids FROM rcm.audit_event"
                    " WHERE tenant_id = :t ORDER BY occurred_at"
                ),
                {"t": uuid.UUID(practice_api.tenant_id)},
            )
        ).all()
    types = [r[0] for r in rows]
    for expected in ("patient.create", "coverage.create", "encounter.create", "fhir_bundle.ingest"):
        assert expected in types
    patient_id = response.json()["entry"][0]["response"]["location"].rsplit("/", 1)[-1]
    ingest = next(r for r in rows if r[0] == "fhir_bundle.ingest")
    assert [str(p) for p in ingest[1]] == [patient_id]


async def test_callers_other_than_a_practice_system_are_refused(
    fhir: Fhir, client: Any, practice_api: Api
) -> None:
    no_token = await client.post(
        "/fhir/r4", content=json.dumps(bundles.ehr_visit_bundle()), headers={"Content-Type": FHIR_JSON}
    )
    assert no_token.status_code == 401
    assert no_token.headers["content-type"].startswith(FHIR_JSON)
    OperationOutcome.model_validate(no_token.json())


async def test_capability_statement_needs_no_token(client: Any) -> None:
    response = await client.get("/fhir/r4/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    types = {r.type for r in statement.rest[0].resource}
    assert {"Patient", "Encounter", "Claim", "ChargeItem"} <= types


async def test_notes_accept_any_text_media_and_skip_binaries(fhir: Fhir, practice_api: Api) -> None:
    bundle = bundles.synthea_bundle(1)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"].append(
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "data": base64.b64encode(b"%PDF-1.4").decode(),
                    }
                }
            )
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    location = next(
        e["response"]["location"]
        for e, s in zip(response.json()["entry"], bundle["entry"], strict=True)
        if s["resource"]["resourceType"] == "Encounter"
    )
    encounter = await encounter_of(practice_api, location)
    assert "DEMO NOTE" in encounter["documentation"]
    assert "%PDF" not in encounter["documentation"]


async def test_a_practitioner_role_names_the_rendering_practitioner(fhir: Fhir, practice_api: Api) -> None:
    """US Core EHRs name a PractitionerRole as the performer; its Practitioner (with the NPI) renders."""
    bundle = bundles.ehr_visit_bundle()
    practitioner = {
        "resourceType": "Practitioner",
        "id": "pr-1",
        "identifier": [{"system": bundles.NPI, "value": "1497758544"}],
        "name": [{"family": "Fakerole", "given": ["Rowan"]}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": "role-1",
        "practitioner": {"reference": "Practitioner/pr-1"},
        "organization": {"reference": f"Organization?identifier={bundles.NPI}|1104025329"},
    }
    bundle["entry"] += [
        {"fullUrl": "https://ehr.example.test/fhir/Practitioner/pr-1", "resource": practitioner,
         "request": {"method": "PUT", "url": "Practitioner/pr-1"}},
        {"fullUrl": "https://ehr.example.test/fhir/PractitionerRole/role-1", "resource": role,
         "request": {"method": "PUT", "url": "PractitionerRole/role-1"}},
    ]  # fmt: skip
    bundle["entry"][2]["resource"]["participant"] = [{"individual": {"reference": "PractitionerRole/role-1"}}]
    response = await fhir.post(bundle)
    assert response.status_code == 200, response.text
    encounter = await encounter_of(practice_api, response.json()["entry"][2]["response"]["location"])
    rendering = (await practice_api.get(f"/providers/{encounter['rendering_provider_id']}")).json()
    assert (rendering["npi"], rendering["name"]) == ("1497758544", "Rowan Fakerole")
    assert response.json()["entry"][7]["response"]["status"] == "200 OK"
