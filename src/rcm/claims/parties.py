"""Who a claim names besides its billing provider and payer, as the 837 writer's model takes them: the
subscriber (2000B/2010BA), the patient when not the subscriber (2000C/2010CA), the referring provider
(2310A), the service facility (2310C) and the prior authorization (2300 REF*G1).

Read from the claim's encounter, its coverage and its patient; their PHI is opened here and the read is
audited (one event naming the claims and patients). What a claim lacks for the 837 (a patient address...)
is named in ``missing`` rather than raised: the caller holds the claim back, the others of the batch go.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rcm.audit.events import Action
from rcm.claims.models import Claim
from rcm.claims.states import Responsibility
from rcm.encounters.models import Encounter
from rcm.encounters.parties import facility_of, referring_of
from rcm.encounters.repository import EncounterRepository
from rcm.patients import schemas as patient_schemas
from rcm.patients import service as patients
from rcm.patients.models import Patient
from rcm.patients.repository import CoverageRepository, PatientRepository
from rcm.tenancy.scope import TenantScope
from rcm.x12.claims import Patient as X12Patient
from rcm.x12.claims import ServiceFacility, Subscriber
from rcm.x12.model import Address, PersonName, Provider

# SBR02 / PAT01 (individual relationship code) of the coverage's relationship of the patient to the insured.
RELATIONSHIP_CODES = {"self": "18", "spouse": "01", "child": "19", "other": "G8"}
SEX_CODES = {"female": "F", "male": "M"}  # DMG03; anything else is U
RESPONSIBILITY_CODES = {
    Responsibility.PRIMARY: "P",
    Responsibility.SECONDARY: "S",
    Responsibility.TERTIARY: "T",
}


@dataclass(frozen=True, slots=True)
class ClaimParties:
    """A claim's parties in the X12 model. ``subscriber.claim_filing_indicator`` is left at its default:
    the payer directory's SBR09 is the caller's (``msgspec.structs.replace``)."""

    subscriber: Subscriber | None  # None when the claim has no coverage
    patient: X12Patient | None  # 2000C: set only when the patient is not the subscriber
    relationship: str  # SBR02 "18" when self, else PAT01 (01, 19, G8)
    referring: Provider | None
    service_facility: ServiceFacility | None
    prior_authorization: str | None
    missing: tuple[str, ...] = ()  # what the 837 requires and the records lack; empty when writable


def sex_code(sex: str | None) -> str:
    return SEX_CODES.get(sex or "", "U")


def _address(address: patient_schemas.Address | None) -> Address | None:
    if address is None:
        return None
    return Address(
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        state=address.state,
        postal_code=address.postal_code.replace("-", ""),
    )


def referring_provider(encounter: Encounter) -> Provider | None:
    """2310A NM1*DN: the encounter's referring provider (a person), with its taxonomy when sent."""
    found = referring_of(encounter)
    if found is None:
        return None
    return Provider(npi=found.npi, last=found.family_name, first=found.given_name, taxonomy=found.taxonomy)


def service_facility(encounter: Encounter) -> ServiceFacility | None:
    """2310C NM1*77 with N3/N4."""
    found = facility_of(encounter)
    address = _address(found.address) if found is not None else None
    if found is None or address is None:
        return None
    return ServiceFacility(name=found.name, npi=found.npi, address=address)


def _person(person: patient_schemas.Patient | patient_schemas.Subscriber) -> PersonName:
    middle = person.middle_name if isinstance(person, patient_schemas.Subscriber) else None
    return PersonName(last=person.family_name, first=person.given_name, middle=middle)


def parties_of(
    claim: Claim,
    encounter: Encounter,
    patient: patient_schemas.Patient,
    coverage: patient_schemas.Coverage | None,
) -> ClaimParties:
    """The parties of one claim from its opened records (no database, no keys)."""
    missing: list[str] = []
    relationship = RELATIONSHIP_CODES.get(coverage.relationship if coverage else "self", "G8")
    x12_subscriber: Subscriber | None = None
    x12_patient: X12Patient | None = None
    if coverage is not None:
        # 2010BA: the patient when self, else the subscriber the coverage names.
        insured = patient if relationship == "18" else coverage.subscriber
        if insured is None:
            missing.append("subscriber name and birth date (2010BA)")
        elif relationship == "18" and insured.address is None:
            missing.append("patient address (2010BA N3/N4)")
        x12_subscriber = Subscriber(
            member_id=coverage.member_id,
            name=_person(insured or patient),
            birth_date=insured.birth_date if insured else None,
            sex=sex_code(insured.sex) if insured else None,
            address=_address(insured.address) if insured else None,
            group_number=coverage.group_number,
            responsibility=RESPONSIBILITY_CODES.get(claim.responsibility, "P"),
        )
    patient_address = _address(patient.address)
    if coverage is not None and relationship != "18":
        # 2000C/2010CA: the patient apart, its relationship to the insured in PAT01.
        if patient_address is None:
            missing.append("patient address (2010CA N3/N4)")
        else:
            x12_patient = X12Patient(
                relationship=relationship,
                name=_person(patient),
                birth_date=patient.birth_date,
                sex=sex_code(patient.sex),
                address=patient_address,
            )
    return ClaimParties(
        subscriber=x12_subscriber,
        patient=x12_patient,
        relationship=relationship,
        referring=referring_provider(encounter),
        service_facility=service_facility(encounter),
        prior_authorization=encounter.prior_authorization,
        missing=tuple(missing),
    )


async def claim_parties(scope: TenantScope, claims: Sequence[Claim]) -> dict[uuid.UUID, ClaimParties]:
    """Each claim's parties, by claim id: three reads (encounters, coverages, patients) for any number of
    claims, and one audit event for the PHI opened (patients' and subscribers' demographics)."""
    if not claims:
        return {}
    encounters = {
        row.id: row
        for row in await scope.repo(EncounterRepository).by_ids(list({c.encounter_id for c in claims}))
    }
    coverage_ids = list({c.coverage_id for c in claims if c.coverage_id is not None})
    coverages = {row.id: row for row in await scope.repo(CoverageRepository).by_ids(coverage_ids)}
    patient_rows: dict[uuid.UUID, Patient] = {
        row.id: row
        for row in await scope.repo(PatientRepository).by_ids(list({c.patient_id for c in claims}))
    }
    views = dict(
        zip(patient_rows, patients.patient_views(scope.keyring, list(patient_rows.values())), strict=True)
    )
    scope.audit(
        "claim.parties.read",
        Action.READ,
        resource_type="claim",
        resource_ids=[c.id for c in claims],
        patient_ids=list(dict.fromkeys(c.patient_id for c in claims)),
    )
    out: dict[uuid.UUID, ClaimParties] = {}
    for claim in claims:
        coverage = coverages.get(claim.coverage_id) if claim.coverage_id is not None else None
        opened = patients.coverage_view(scope.keyring, coverage) if coverage is not None else None
        out[claim.id] = parties_of(claim, encounters[claim.encounter_id], views[claim.patient_id], opened)
    return out
