"""Who a claim names beyond its own rows: the subscriber and patient loops (2000B/2000C) with their PHI
opened from the patient and coverage rows, and the claim's provider loops (2310x).

``claim_parties`` is THE place where intake's parties enter the 837. Today main records the patient, the
coverage (member id, group number, relationship) and the encounter's rendering provider. Referring provider
(2310A), service facility (2310C), prior authorization (REF*G1) and a dependent's subscriber demographics
(name, birth date, sex, address of a subscriber who is not the patient) are being added to intake
(branch ``intakefields``): each fills the ``Parties`` field of the same name in ``_parties``, and
``_subscriber_of`` builds the 2000B subscriber from the stored subscriber instead of refusing.

Reads PHI: the caller (``render_batch`` through ``batch_document``) audits it, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rcm.claims.batches import BatchDocument
from rcm.claims.models import Claim
from rcm.encounters.repository import EncounterRepository
from rcm.kit.errors import Conflict, FieldError
from rcm.patients import schemas as patient_schemas
from rcm.patients.repository import CoverageRepository, PatientRepository
from rcm.patients.service import coverage_view, patient_views
from rcm.providers.models import Provider as ProviderRow
from rcm.providers.repository import ProviderRepository
from rcm.tenancy.scope import TenantScope
from rcm.x12 import claims as x12
from rcm.x12.model import Address, PersonName, Provider

# DMG03: administrative sex as X12 codes it (other and unknown are U).
SEX = {"female": "F", "male": "M", "other": "U", "unknown": "U"}
RESPONSIBILITY = {"primary": "P", "secondary": "S", "tertiary": "T"}
_HONORIFICS = frozenset({"dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."})


@dataclass(frozen=True, slots=True)
class Parties:
    """One claim's parties as the writer takes them. The last three are intake's to fill (see above)."""

    subscriber: x12.Subscriber
    patient: x12.Patient | None  # 2000C, when the subscriber is not the patient
    rendering: Provider | None  # 2310B, when it is not the billing provider
    referring: Provider | None = None  # 2310A
    service_facility: x12.ServiceFacility | None = None  # 2310C
    prior_authorization: str | None = None  # REF*G1


async def claim_parties(scope: TenantScope, document: BatchDocument) -> dict[uuid.UUID, Parties]:
    """Each claim's parties, read in one statement per table and opened with one opener per model; every
    claim whose parties cannot be written is named (by its patient control number, never PHI)."""
    claims = [claim for claim, _ in document.claims]
    patients = {
        view.id: view
        for view in patient_views(
            scope.keyring, await scope.repo(PatientRepository).many({c.patient_id for c in claims})
        )
    }
    coverage_ids = {c.coverage_id for c in claims if c.coverage_id is not None}
    coverages = {
        row.id: coverage_view(scope.keyring, row)
        for row in await scope.repo(CoverageRepository).many(coverage_ids)
    }
    encounters = {
        e.id: e for e in await scope.repo(EncounterRepository).many({c.encounter_id for c in claims})
    }
    providers = {
        p.id: p
        for p in await scope.repo(ProviderRepository).many(
            {e.rendering_provider_id for e in encounters.values()}
        )
    }
    filing = document.payer.claim_filing_indicator.value
    found: dict[uuid.UUID, Parties] = {}
    errors: list[FieldError] = []
    for claim in claims:
        where = f"/claims/{claim.patient_control_number}"
        patient = patients[claim.patient_id]
        coverage = coverages.get(claim.coverage_id) if claim.coverage_id else None
        if coverage is None:
            errors.append(FieldError(f"{where}/coverage_id", "the claim has no coverage to bill"))
            continue
        encounter = encounters[claim.encounter_id]
        rendering = providers.get(encounter.rendering_provider_id)
        try:
            found[claim.id] = _parties(
                claim,
                patient=patient,
                coverage=coverage,
                rendering=rendering,
                filing=filing,
                document=document,
                where=where,
            )
        except _Missing as missing:
            errors.extend(missing.errors)
    if errors:
        raise Conflict("Some claims of the batch lack what the 837 needs.", errors=errors)
    return found


class _Missing(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("missing claim parties")
        self.errors = errors


def _parties(
    claim: Claim,
    *,
    patient: patient_schemas.Patient,
    coverage: patient_schemas.Coverage,
    rendering: ProviderRow | None,
    filing: str,
    document: BatchDocument,
    where: str,
) -> Parties:
    subscriber, dependent = _subscriber_of(claim, patient, coverage, filing, where)
    billing_npi = document.billing_provider.npi
    return Parties(
        subscriber=subscriber,
        patient=dependent,
        # 2310B is required only when the rendering provider is not the billing provider (837P guide).
        rendering=provider_of(rendering) if rendering is not None and rendering.npi != billing_npi else None,
    )


def _subscriber_of(
    claim: Claim,
    patient: patient_schemas.Patient,
    coverage: patient_schemas.Coverage,
    filing: str,
    where: str,
) -> tuple[x12.Subscriber, x12.Patient | None]:
    """2000B (and 2000C): the patient is the subscriber (``self``) on main; a dependent's claim needs the
    subscriber's own demographics, which intake does not record yet, so it is refused by name."""
    if coverage.relationship != "self":
        raise _Missing(
            [
                FieldError(
                    f"{where}/coverage/relationship",
                    "the subscriber is not the patient; the subscriber's name and birth date are unknown",
                )
            ]
        )
    if patient.address is None:
        raise _Missing([FieldError(f"{where}/patient/address", "is required: the patient is the subscriber")])
    subscriber = x12.Subscriber(
        member_id=coverage.member_id,
        name=PersonName(last=patient.family_name, first=patient.given_name),
        birth_date=patient.birth_date,
        sex=SEX[patient.sex],
        address=address_of(patient.address),
        group_number=coverage.group_number,
        claim_filing_indicator=filing,
        responsibility=RESPONSIBILITY[claim.responsibility.value],
    )
    return subscriber, None


def address_of(address: patient_schemas.Address) -> Address:
    return Address(
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        state=address.state,
        postal_code=address.postal_code.replace("-", ""),
    )


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
