"""FHIR R4 bundles in the shapes Synthea and EHRs send, written here (invented, obviously fake data).

- Synthea: a ``transaction`` of one patient's whole record: ``urn:uuid`` fullUrls and references, an
  Organization and a Practitioner (NPI that fails its check digit, as Synthea's do), Encounters coded only in
  SNOMED CT, Conditions in SNOMED CT, Observations in LOINC, Claims typed ``institutional`` even for office
  visits with SNOMED lines and a display-only coverage, ExplanationOfBenefit with a contained Coverage,
  DocumentReference notes in base64, and timestamps with mixed UTC offsets.
- EHR: a ``batch`` or ``transaction`` of an office visit with ICD-10-CM conditions, a CPT-coded Claim with
  modifiers and diagnosis pointers, a contained rendering Practitioner (``#id``), conditional references to
  a Practitioner and an Organization that are not in the bundle, relative ``Patient/id`` references.
"""

from __future__ import annotations

import base64
import uuid
from datetime import date, timedelta
from typing import Any

NPI = "http://hl7.org/fhir/sid/us-npi"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
SYNTHEA = "https://github.com/synthetichealth/synthea"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _entry(resource: dict[str, Any], full_url: str | None = None, method: str = "POST") -> dict[str, Any]:
    full_url = full_url or _urn()
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": method, "url": resource["resourceType"]},
    }


def synthea_patient(mrn: str | None = None, family: str | None = None) -> dict[str, Any]:
    pid = str(uuid.uuid4())
    return {
        "resourceType": "Patient",
        "id": pid,
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Generated</div>'},
        "identifier": [
            {"system": SYNTHEA, "value": pid},
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "MR",
                            "display": "Medical Record Number",
                        }
                    ]
                },
                "system": "http://hospital.smarthealthit.org",
                "value": mrn or f"MRN-{uuid.uuid4().hex[:10]}",
            },
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]
                },
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{uuid.uuid4().int % 100:02d}-{uuid.uuid4().int % 10000:04d}",
            },
        ],
        "name": [
            {
                "use": "official",
                "family": family or f"Fakename{uuid.uuid4().hex[:6]}",
                "given": ["Testy123", "Middle"],
                "prefix": ["Mrs."],
            }
        ],
        "telecom": [{"system": "phone", "value": "555-201-4477", "use": "home"}],
        "gender": "female",
        "birthDate": "1961-03-09",
        "address": [
            {
                "line": ["100 Example Gardens Suite 2"],
                "city": "Springfield",
                "state": "Massachusetts",
                "postalCode": "01105",
                "country": "US",
            }
        ],
    }


def synthea_bundle(
    encounters: int = 3, *, mrn: str | None = None, with_notes: bool = True, note_repeat: int = 20
) -> dict[str, Any]:
    """One patient's record as Synthea writes it (a transaction), ``encounters`` wellness visits."""
    patient = synthea_patient(mrn)
    patient_url = f"urn:uuid:{patient['id']}"
    org_id, pract_id = str(uuid.uuid4()), str(uuid.uuid4())
    organization = {
        "resourceType": "Organization",
        "id": org_id,
        "identifier": [{"system": SYNTHEA, "value": org_id}],
        "active": True,
        "type": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}
                ]
            }
        ],
        "name": "EXAMPLE FAMILY HEALTH CENTER",
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": pract_id,
        # Synthea's NPIs are 999999xxxx: most fail the check digit.
        "identifier": [{"system": NPI, "value": "9999999919"}],
        "active": True,
        "name": [{"family": "Fakedoc", "given": ["Alma"], "prefix": ["Dr."]}],
        "gender": "female",
    }
    entries = [
        _entry(patient, patient_url),
        _entry(organization, f"urn:uuid:{org_id}"),
        _entry(practitioner, f"urn:uuid:{pract_id}"),
    ]
    start = date.today() - timedelta(days=30 + encounters)
    offsets = ["-05:00", "+00:00", "-08:00", "+05:30"]
    for n in range(encounters):
        enc_id = str(uuid.uuid4())
        enc_url = f"urn:uuid:{enc_id}"
        day = (start + timedelta(days=n)).isoformat()
        offset = offsets[n % len(offsets)]
        entries.append(
            _entry(
                {
                    "resourceType": "Encounter",
                    "id": enc_id,
                    "identifier": [{"use": "official", "system": SYNTHEA, "value": enc_id}],
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": SNOMED,
                                    "code": "162673000",
                                    "display": "General examination of patient (procedure)",
                                }
                            ],
                            "text": "General examination of patient (procedure)",
                        }
                    ],
                    "subject": {"reference": patient_url, "display": "Mrs. Testy123 Fakename"},
                    "participant": [
                        {
                            "type": [
                                {
                                    "coding": [
                                        {
                                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "PPRF",
                                        }
                                    ]
                                }
                            ],
                            "period": {"start": f"{day}T09:00:00{offset}", "end": f"{day}T09:15:00{offset}"},
                            "individual": {
                                "reference": f"urn:uuid:{pract_id}",
                                "display": "Dr. Alma Fakedoc",
                            },
                        }
                    ],
                    "period": {"start": f"{day}T09:00:00{offset}", "end": f"{day}T09:15:00{offset}"},
                    "serviceProvider": {
                        "reference": f"urn:uuid:{org_id}",
                        "display": "EXAMPLE FAMILY HEALTH CENTER",
                    },
                },
                enc_url,
            )
        )
        cond_url = _urn()
        entries.append(
            _entry(
                {
                    "resourceType": "Condition",
                    "id": cond_url.removeprefix("urn:uuid:"),
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                    "code": "encounter-diagnosis",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": SNOMED,
                                "code": "44054006",
                                "display": "Diabetes mellitus type 2 (disorder)",
                            }
                        ]
                    },
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": enc_url},
                    "onsetDateTime": f"{day}T09:00:00{offset}",
                    "recordedDate": f"{day}T09:00:00{offset}",
                },
                cond_url,
            )
        )
        entries.append(
            _entry(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC, "code": "8302-2", "display": "Body Height"}]},
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": enc_url},
                    "effectiveDateTime": f"{day}T09:00:00{offset}",
                    "valueQuantity": {
                        "value": 165.3,
                        "unit": "cm",
                        "system": "http://unitsofmeasure.org",
                        "code": "cm",
                    },
                }
            )
        )
        entries.append(
            _entry(
                {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": {
                        "coding": [
                            {
                                "system": SNOMED,
                                "code": "430193006",
                                "display": "Medication reconciliation (procedure)",
                            }
                        ]
                    },
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": enc_url},
                    "performedPeriod": {"start": f"{day}T09:00:00{offset}", "end": f"{day}T09:10:00{offset}"},
                }
            )
        )
        if with_notes:
            note = f"DEMO NOTE {n}: synthetic history and physical. Patient stable. " * note_repeat
            entries.append(
                _entry(
                    {
                        "resourceType": "DocumentReference",
                        "status": "superseded",
                        "type": {
                            "coding": [
                                {"system": LOINC, "code": "34117-2", "display": "History and physical note"}
                            ]
                        },
                        "subject": {"reference": patient_url},
                        "date": f"{day}T09:00:00.000{offset}",
                        "content": [
                            {
                                "attachment": {
                                    "contentType": "text/plain; charset=utf-8",
                                    "data": base64.b64encode(note.encode()).decode(),
                                }
                            }
                        ],
                        "context": {
                            "encounter": [{"reference": enc_url}],
                            "period": {"start": f"{day}T09:00:00{offset}"},
                        },
                    }
                )
            )
        claim_url = _urn()
        entries.append(
            _entry(
                {
                    "resourceType": "Claim",
                    "id": claim_url.removeprefix("urn:uuid:"),
                    "status": "active",
                    # Synthea types every claim institutional, office visits included.
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                "code": "institutional",
                            }
                        ]
                    },
                    "use": "claim",
                    "patient": {"reference": patient_url},
                    "billablePeriod": {"start": f"{day}T09:00:00{offset}", "end": f"{day}T09:15:00{offset}"},
                    "created": f"{day}T09:15:00{offset}",
                    "provider": {"reference": f"urn:uuid:{org_id}"},
                    "priority": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                "code": "normal",
                            }
                        ]
                    },
                    "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicaid"}}],
                    "item": [
                        {
                            "sequence": 1,
                            "productOrService": {
                                "coding": [
                                    {
                                        "system": SNOMED,
                                        "code": "162673000",
                                        "display": "General examination of patient (procedure)",
                                    }
                                ]
                            },
                            "encounter": [{"reference": enc_url}],
                        }
                    ],
                    "total": {"value": 136.8, "currency": "USD"},
                },
                claim_url,
            )
        )
        entries.append(
            _entry(
                {
                    "resourceType": "ExplanationOfBenefit",
                    "contained": [
                        {
                            "resourceType": "Coverage",
                            "id": "coverage",
                            "status": "active",
                            "type": {"text": "Medicaid"},
                            "beneficiary": {"reference": patient_url},
                            "payor": [{"display": "Medicaid"}],
                        }
                    ],
                    "status": "active",
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                "code": "institutional",
                            }
                        ]
                    },
                    "use": "claim",
                    "patient": {"reference": patient_url},
                    "created": f"{day}T09:15:00{offset}",
                    "insurer": {"display": "Medicaid"},
                    "provider": {"reference": f"urn:uuid:{pract_id}"},
                    "claim": {"reference": claim_url},
                    "outcome": "complete",
                    "insurance": [
                        {"focal": True, "coverage": {"reference": "#coverage", "display": "Medicaid"}}
                    ],
                }
            )
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def ehr_visit_bundle(
    *,
    bundle_type: str = "transaction",
    npi: str = "1245319599",
    org_npi: str = "1104025329",
    mrn: str | None = None,
    encounter_id: str | None = None,
    payer: str = "DEMO-MCR",
) -> dict[str, Any]:
    """An office visit from an EHR: ICD-10-CM and CPT codes, a contained rendering practitioner and
    conditional references to providers that are not in the bundle."""
    patient = synthea_patient(mrn)
    patient["id"] = f"pat-{uuid.uuid4().hex[:12]}"
    encounter_id = encounter_id or f"enc-{uuid.uuid4().hex[:12]}"
    day = (date.today() - timedelta(days=2)).isoformat()
    coverage = {
        "resourceType": "Coverage",
        "id": f"cov-{uuid.uuid4().hex[:8]}",
        "status": "active",
        "subscriberId": f"M{uuid.uuid4().hex[:9].upper()}",
        "beneficiary": {"reference": f"Patient/{patient['id']}"},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}
            ]
        },
        "payor": [
            {"identifier": {"system": "urn:example:payer-id", "value": payer}, "display": "Demo Medicare"}
        ],
        "order": 1,
    }
    condition_id = f"cond-{uuid.uuid4().hex[:8]}"
    encounter = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "identifier": [{"system": "urn:example:ehr:encounter", "value": encounter_id}],
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "rendering",
                "identifier": [{"system": NPI, "value": npi}],
                "name": [{"family": "Fakerender", "given": ["Rae"]}],
            }
        ],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": CPT, "code": "99213", "display": "Office visit, established"}]}],
        "subject": {"reference": f"Patient/{patient['id']}"},
        "participant": [{"individual": {"reference": "#rendering"}}],
        "period": {"start": f"{day}T14:30:00-07:00"},
        "diagnosis": [{"condition": {"reference": f"Condition/{condition_id}"}, "rank": 1}],
        "serviceProvider": {
            "reference": f"Organization?identifier={NPI}|{org_npi}",
            "display": "Example Group Practice",
        },
    }
    condition = {
        "resourceType": "Condition",
        "id": condition_id,
        "code": {
            "coding": [
                {
                    "system": ICD10CM,
                    "code": "E11.9",
                    "display": "Type 2 diabetes mellitus without complications",
                },
                {"system": SNOMED, "code": "44054006"},
            ]
        },
        "subject": {"reference": f"Patient/{patient['id']}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
    }
    condition2 = {
        "resourceType": "Condition",
        "id": f"cond-{uuid.uuid4().hex[:8]}",
        "code": {"coding": [{"system": ICD10CM, "code": "I10"}]},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
    }
    claim = {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": f"Patient/{patient['id']}"},
        "created": f"{day}T15:00:00Z",
        "provider": {
            "reference": f"Organization?identifier={NPI}|{org_npi}",
            "display": "Example Group Practice",
        },
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage['id']}"}}
        ],
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "E11.9"}]}},
            {"sequence": 2, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "I10"}]}},
        ],
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": [1, 2],
                "productOrService": {"coding": [{"system": CPT, "code": "99213"}]},
                "modifier": [{"coding": [{"system": CPT, "code": "25"}]}],
                "locationCodeableConcept": {"coding": [{"system": POS, "code": "11"}]},
                "quantity": {"value": 1},
                "net": {"value": 125.00, "currency": "USD"},
                "encounter": [{"reference": f"Encounter/{encounter_id}"}],
            },
            {
                "sequence": 2,
                "diagnosisSequence": [1],
                "productOrService": {
                    "coding": [
                        {
                            "system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                            "code": "G2211",
                        }
                    ]
                },
                "net": {"value": 16.5, "currency": "USD"},
                "encounter": [{"reference": f"Encounter/{encounter_id}"}],
            },
        ],
        "total": {"value": 141.5, "currency": "USD"},
    }
    base = "https://ehr.example.test/fhir"
    entries = [
        _entry(patient, f"{base}/Patient/{patient['id']}", "PUT"),
        _entry(coverage, f"{base}/Coverage/{coverage['id']}", "PUT"),
        _entry(encounter, f"{base}/Encounter/{encounter_id}", "PUT"),
        _entry(condition, f"{base}/Condition/{condition_id}", "PUT"),
        _entry(condition2, f"{base}/Condition/{condition2['id']}", "PUT"),
        _entry(claim),
    ]
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
