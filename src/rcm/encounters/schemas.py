"""Encounter intake DTOs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from rcm.kit.phi import MaskedRepr
from rcm.patients.schemas import NO_NUL, Address, CoverageCreate, PatientCreate
from rcm.providers.schemas import Npi, ProviderCreate
from rcm.tenancy.vocabulary import ClaimType

# ICD-10-CM: letter, digit, alphanumeric, then up to four more after an optional dot (U codes included).
Icd10Cm = Annotated[str, Meta(pattern=r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")]
# CPT (five digits, or four digits + F/T/U for categories II/III) or HCPCS Level II (letter + four digits).
ProcedureCode = Annotated[str, Meta(pattern=r"^([0-9]{4}[0-9FTU]|[A-V][0-9]{4})$")]
Modifier = Annotated[str, Meta(pattern=r"^[0-9A-Z]{2}$")]
PlaceOfService = Annotated[str, Meta(pattern=r"^[0-9]{2}$")]
Cents = Annotated[int, Meta(ge=0, le=99_999_999_99)]
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
ExternalId = Annotated[str, Meta(min_length=1, max_length=80, pattern=EXTERNAL_ID_PATTERN)]
# REF*G1 (2300): what X12 carries safely, never a delimiter, no leading or trailing space.
PriorAuthorization = Annotated[
    str, Meta(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9./-]([A-Za-z0-9 ./-]*[A-Za-z0-9./-])?$")
]
Taxonomy = Annotated[str, Meta(pattern=r"^[0-9A-Z]{9}X$")]
# NUBC revenue code (837I SV201): four digits, the leading zero included (0450 emergency room).
RevenueCode = Annotated[str, Meta(pattern=r"^[0-9]{4}$")]
# NUBC type of bill (UB-04 form locator 4): facility type 1-8, classification 1-9, frequency; the leading zero
# printed on the form may be given. Whether the combination is billable is the scrub's BILL-TYPE edit.
TypeOfBill = Annotated[str, Meta(pattern=r"^0?[1-8][1-9][0-9A-Z]$")]
EncounterStatus = Literal["needs_coding", "coded", "on_hold", "billed", "closed", "cancelled"]


class DiagnosisIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Icd10Cm


class ChargeLineIn(msgspec.Struct, forbid_unknown_fields=True):
    procedure_code: ProcedureCode
    # The line's billed amount for all its units, as the 837P carries it (SV102), not a unit price.
    charge_cents: Cents
    units: Annotated[int, Meta(ge=1, le=9999)] = 1
    modifiers: Annotated[list[Modifier], Meta(max_length=4)] = msgspec.field(default_factory=list)
    # Pointers into the encounter's diagnoses (1-based), at most four as on the 837P SV107.
    diagnosis_pointers: Annotated[list[Annotated[int, Meta(ge=1, le=12)]], Meta(max_length=4)] = (
        msgspec.field(default_factory=list)
    )
    service_date: date | None = None
    revenue_code: RevenueCode | None = None  # institutional encounters only


class ReferringProvider(msgspec.Struct, forbid_unknown_fields=True):
    """837P 2310A (NM1*DN): a person, named as the 837 names one. Its NPI must pass the check digit: a
    payer rejects the claim otherwise, and nothing later could mend it (it is not a provider we keep)."""

    npi: Npi
    family_name: Annotated[str, Meta(min_length=1, max_length=60, pattern=NO_NUL)]
    given_name: Annotated[str, Meta(min_length=1, max_length=35, pattern=NO_NUL)] | None = None
    taxonomy: Taxonomy | None = None


class ServiceFacility(msgspec.Struct, forbid_unknown_fields=True):
    """837P 2310C (NM1*77, N3, N4): where the service was given, when not at the billing provider's
    address."""

    name: Annotated[str, Meta(min_length=1, max_length=60, pattern=NO_NUL)]
    address: Address
    npi: Npi | None = None


class AttendingProvider(msgspec.Struct, forbid_unknown_fields=True):
    """837I 2310A (NM1*71): the attending provider, a person. Like the rendering provider's, an NPI failing
    its check digit is accepted here and flagged by the scrub (ATTENDING-NPI)."""

    npi: Npi
    family_name: Annotated[str, Meta(min_length=1, max_length=60, pattern=NO_NUL)]
    given_name: Annotated[str, Meta(min_length=1, max_length=35, pattern=NO_NUL)] | None = None


class Institutional(msgspec.Struct, forbid_unknown_fields=True):
    """What an institutional encounter carries for the 837I (005010X223A2 loop 2300): every part optional at
    intake; what a claim cannot go without is the scrub's to name (BILL-TYPE, STATEMENT-PERIOD,
    ATTENDING-NPI, PATIENT-STATUS, REVENUE-CODES)."""

    type_of_bill: TypeOfBill | None = None  # CLM05-1 (facility type code) and CLM05-3
    statement_start: date | None = None  # DTP*434; the lines' dates when left out
    statement_end: date | None = None
    admission_date: date | None = None  # DTP*435
    admission_hour: Annotated[int, Meta(ge=0, le=23)] | None = None
    # CL101 (1 emergency, 2 urgent, 3 elective, 4 newborn, 5 trauma, 9 unknown), CL102 point of origin.
    admission_type: Annotated[str, Meta(pattern=r"^[1-59]$")] | None = None
    admission_source: Annotated[str, Meta(pattern=r"^[1-9A-G]$")] | None = None
    patient_status: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] | None = None  # CL103: 01 home, 30 still
    attending_provider: AttendingProvider | None = None
    admitting_diagnosis: Icd10Cm | None = None  # HI*ABJ


class EncounterCreate(MaskedRepr, msgspec.Struct, forbid_unknown_fields=True):
    """An encounter, with its patient, coverage and providers either referenced by id or given inline.

    Inline patients are matched by MRN and inline providers by NPI before anything is created.
    """

    external_id: ExternalId
    service_date: date
    place_of_service: PlaceOfService
    patient_id: uuid.UUID | None = None
    patient: PatientCreate | None = None
    coverage_id: uuid.UUID | None = None
    coverage: CoverageCreate | None = None
    rendering_provider_id: uuid.UUID | None = None
    rendering_provider: ProviderCreate | None = None
    billing_provider_id: uuid.UUID | None = None
    billing_provider: ProviderCreate | None = None
    documentation: Annotated[str, Meta(max_length=200_000, pattern=NO_NUL)] | None = None
    diagnoses: Annotated[list[DiagnosisIn], Meta(max_length=12)] = msgspec.field(default_factory=list)
    charges: Annotated[list[ChargeLineIn], Meta(max_length=50)] = msgspec.field(default_factory=list)
    referring_provider: ReferringProvider | None = None
    service_facility: ServiceFacility | None = None
    prior_authorization: PriorAuthorization | None = None
    # The practice's manifest ``claim_type`` when left out; ``institutional`` only on an institutional one.
    claim_type: ClaimType | None = None
    institutional: Institutional | None = None


class Diagnosis(msgspec.Struct):
    sequence: int
    code: str


class ChargeLine(msgspec.Struct):
    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    charge_cents: int
    diagnosis_pointers: list[int]
    service_date: date | None = None
    revenue_code: str | None = None


class Encounter(MaskedRepr, msgspec.Struct):
    id: uuid.UUID
    external_id: str
    status: EncounterStatus
    patient_id: uuid.UUID
    rendering_provider_id: uuid.UUID
    billing_provider_id: uuid.UUID
    service_date: date
    place_of_service: str
    total_charge_cents: int
    diagnoses: list[Diagnosis]
    charges: list[ChargeLine]
    created_at: datetime
    updated_at: datetime
    coverage_id: uuid.UUID | None = None
    documentation: str | None = None
    referring_provider: ReferringProvider | None = None
    service_facility: ServiceFacility | None = None
    prior_authorization: str | None = None
    claim_type: ClaimType = ClaimType.PROFESSIONAL
    institutional: Institutional | None = None


class EncounterSummary(msgspec.Struct):
    """List rows: no documentation text."""

    id: uuid.UUID
    external_id: str
    status: EncounterStatus
    patient_id: uuid.UUID
    service_date: date
    total_charge_cents: int
    created_at: datetime


class StatusChange(msgspec.Struct):
    status: str
    at: datetime
    note: str | None = None


class EncounterStatusView(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    status: EncounterStatus
    history: list[StatusChange]
