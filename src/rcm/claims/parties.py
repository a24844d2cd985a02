"""Who a claim names besides its billing provider and payer, as the 837 writer's model takes them: the
subscriber (2000B/2010BA), the patient when not the subscriber (2000C/2010CA), the rendering provider
(2310B), the referring provider (2310A), the service facility (2310C) and the prior authorization (2300
REF*G1).

Read from the claim's encounter, its coverage and its patient; their PHI is opened here and the read is
audited (one event naming the claims and patients). ``claim_parties`` names what a claim lacks for the 837
(a patient address, a dependent's subscriber...) in ``missing``; ``batch_parties``, the renderer's door,
refuses the batch with a 409 naming each such claim by its patient control number (never PHI).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from rcm.audit.events import Action
from rcm.claims.batches import BatchDocument
from rcm.claims.models import Claim, ClaimLine
from rcm.claims.states import Responsibility
from rcm.encounters import schemas as encounter_schemas
from rcm.encounters.institutional import institutional_of
from rcm.encounters.models import Encounter
from rcm.encounters.parties import facility_of, referring_of
from rcm.encounters.repository import EncounterRepository
from rcm.kit.errors import Conflict, FieldError
from rcm.patients import schemas as patient_schemas
from rcm.patients import service as patients
from rcm.patients.models import Patient
from rcm.patients.repository import CoverageRepository, PatientRepository
from rcm.providers.models import Provider as ProviderRow
from rcm.providers.repository import ProviderRepository
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.vocabulary import ClaimType
from rcm.x12.claims import Institutional, LineAdjudication, OtherSubscriber, ServiceFacility, Subscriber
from rcm.x12.claims import Patient as X12Patient
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
    rendering_provider_id: uuid.UUID | None = None  # the encounter's; 2310B when not the billing NPI
    # An institutional claim's encounter facts (837I 2300), made the writer's by ``institutional_facts``.
    institutional: encounter_schemas.Institutional | None = None


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
        rendering_provider_id=encounter.rendering_provider_id,
        missing=tuple(missing),
        institutional=institutional_of(encounter) if claim.claim_type is ClaimType.INSTITUTIONAL else None,
    )


async def claim_parties(scope: TenantScope, claims: Sequence[Claim]) -> dict[uuid.UUID, ClaimParties]:
    """Each claim's parties, by claim id: three reads (encounters, coverages, patients) for any number of
    claims, and one audit event for the PHI opened (patients' and subscribers' demographics)."""
    if not claims:
        return {}
    encounters = {
        row.id: row for row in await scope.repo(EncounterRepository).many({c.encounter_id for c in claims})
    }
    coverage_ids = {c.coverage_id for c in claims if c.coverage_id is not None}
    coverages = {row.id: row for row in await scope.repo(CoverageRepository).many(coverage_ids)}
    patient_rows: dict[uuid.UUID, Patient] = {
        row.id: row for row in await scope.repo(PatientRepository).many({c.patient_id for c in claims})
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


_HONORIFICS = frozenset({"dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."})


@dataclass(frozen=True, slots=True)
class Parties:
    """One claim's parties as the writer takes them, checked complete."""

    subscriber: Subscriber
    patient: X12Patient | None  # 2000C, when the subscriber is not the patient
    rendering: Provider | None  # 2310B, when it is not the billing provider
    referring: Provider | None = None  # 2310A
    service_facility: ServiceFacility | None = None  # 2310C
    prior_authorization: str | None = None  # REF*G1
    institutional: Institutional | None = None  # the 837I's loop 2300 facts; None on an 837P claim
    type_of_bill: str | None = None  # 837I: its facility type code is CLM05-1
    # A secondary or tertiary claim's payers before it (2320/2330A/2330B) and, by line number, their line
    # adjudications (2430): ``rcm.claims.secondary.prior_payers``.
    other_subscribers: tuple[OtherSubscriber, ...] = ()
    line_adjudications: Mapping[int, tuple[LineAdjudication, ...]] = field(default_factory=dict)


def institutional_facts(
    facts: encounter_schemas.Institutional | None, lines: Sequence[ClaimLine]
) -> tuple[Institutional | None, list[str]]:
    """An institutional claim's 837I facts, or what it lacks: the type of bill (CLM05-1), the patient status
    (CL103) and the attending provider (2310A) are required; the statement period defaults to the lines'
    dates. The scrub names the same gaps first (BILL-TYPE, ADMISSION, ATTENDING-NPI)."""
    missing = []
    attending = facts.attending_provider if facts else None
    if facts is None or facts.type_of_bill is None:
        missing.append("type of bill (837I CLM05)")
    if facts is None or facts.patient_status is None:
        missing.append("patient status (837I CL103)")
    if attending is None:
        missing.append("attending provider (837I 2310A)")
    days = sorted(line.service_date for line in lines)
    if facts is None or attending is None or missing or not days:
        return None, missing or ["service lines"]
    return (
        Institutional(
            statement_start=facts.statement_start or days[0],
            statement_end=facts.statement_end or days[-1],
            attending=Provider(npi=attending.npi, last=attending.family_name, first=attending.given_name),
            patient_status=facts.patient_status or "",
            admission_date=facts.admission_date,
            admission_hour=facts.admission_hour,
            admission_type=facts.admission_type,
            admission_source=facts.admission_source,
            admitting_diagnosis=facts.admitting_diagnosis,
        ),
        [],
    )


async def batch_parties(scope: TenantScope, document: BatchDocument) -> dict[uuid.UUID, Parties]:
    """Each claim's parties for the batch's 837, SBR09 from the payer directory; every claim whose parties
    cannot be written is named (409), and nothing of the batch is written."""
    claims = [claim for claim, _ in document.claims]
    lines_of = {claim.id: lines for claim, lines in document.claims}
    found = await claim_parties(scope, claims)
    providers = {
        p.id: p
        for p in await scope.repo(ProviderRepository).many(
            {p.rendering_provider_id for p in found.values() if p.rendering_provider_id is not None}
        )
    }
    filing = document.payer.claim_filing_indicator.value
    billing_npi = document.billing_provider.npi
    out: dict[uuid.UUID, Parties] = {}
    errors: list[FieldError] = []
    for claim in claims:
        where = f"/claims/{claim.patient_control_number}"
        parties = found[claim.id]
        if parties.subscriber is None:
            errors.append(FieldError(f"{where}/coverage_id", "the claim has no coverage to bill"))
            continue
        institutional, lacking = (
            institutional_facts(parties.institutional, lines_of[claim.id])
            if claim.claim_type is ClaimType.INSTITUTIONAL
            else (None, [])
        )
        if parties.missing or lacking:
            errors.extend(FieldError(where, f"lacks {what}") for what in (*parties.missing, *lacking))
            continue
        rendering = (
            providers.get(parties.rendering_provider_id)
            if parties.rendering_provider_id is not None
            else None
        )
        # 2310B (837P) only when the rendering provider is not the billing provider; 2310D (837I) only
        # when it is not the attending provider either.
        others = {billing_npi} | ({institutional.attending.npi} if institutional is not None else set())
        out[claim.id] = Parties(
            subscriber=msgspec.structs.replace(parties.subscriber, claim_filing_indicator=filing),
            patient=parties.patient,
            rendering=provider_of(rendering)
            if rendering is not None and rendering.npi not in others
            else None,
            referring=parties.referring,
            service_facility=parties.service_facility,
            prior_authorization=parties.prior_authorization,
            institutional=institutional,
            type_of_bill=parties.institutional.type_of_bill if parties.institutional else None,
        )
    if errors:
        raise Conflict("Some claims of the batch lack what the 837 needs.", errors=errors)
    return out


def provider_of(row: ProviderRow) -> Provider:
    """A provider row as an NM1: an organization by its name; a person's single name field split into last
    and first ("Last, First" or "First Middle Last", a leading title dropped)."""
    if row.kind == "organization":
        return Provider(npi=row.npi, last=row.name, organization=True, taxonomy=row.taxonomy)
    last, first = person_name(row.name)
    return Provider(npi=row.npi, last=last, first=first, taxonomy=row.taxonomy)


def person_name(name: str) -> tuple[str, str | None]:
    if "," in name:
        last, _, first = name.partition(",")
        return last.strip(), first.strip() or None
    words = name.split()
    if len(words) > 1 and words[0].lower() in _HONORIFICS:
        words = words[1:]
    if len(words) == 1:
        return words[0], None
    return words[-1], " ".join(words[:-1])
