"""What the rules look at: one coded encounter, read once (``repository.load_scrub_input``), no PHI but
the patient's sex and, only when an age edit applies, the birth date (decrypted by the service, audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from rcm.tenancy.vocabulary import ClaimType


@dataclass(frozen=True, slots=True)
class DiagnosisIn:
    sequence: int  # 1-12, HI01-HI12
    code: str  # ICD-10-CM without the dot


@dataclass(frozen=True, slots=True)
class LineIn:
    line_number: int
    procedure_code: str
    modifiers: tuple[str, ...]
    units: int
    charge_cents: int
    diagnosis_pointers: tuple[int, ...]
    service_date: date  # the line's own date, or the encounter's
    revenue_code: str | None = None  # 837I SV201

    @property
    def name(self) -> str:
        return f"line {self.line_number} ({self.procedure_code})"


@dataclass(frozen=True, slots=True)
class ProviderIn:
    role: str  # rendering | billing
    npi: str


@dataclass(frozen=True, slots=True)
class CoverageIn:
    payer_id: str
    has_member_id: bool
    relationship: str
    start_date: date | None
    end_date: date | None
    # Read with the encounter for the claim a clean scrub builds (rcm.claims.building): the coverage row,
    # its priority, and the original claim already built for that responsibility, if any.
    coverage_id: uuid.UUID | None = None
    priority: str | None = None
    original_claim_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class InstitutionalIn:
    """An institutional encounter's 837I facts the edits look at (codes and dates, no PHI)."""

    type_of_bill: str | None
    statement_start: date | None
    statement_end: date | None
    admission_date: date | None
    admission_type: str | None
    patient_status: str | None
    attending_npi: str | None


@dataclass(slots=True)
class ScrubInput:
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    status: str
    service_date: date
    place_of_service: str
    patient_sex: str
    providers: tuple[ProviderIn, ...]
    coverage: CoverageIn | None
    diagnoses: tuple[DiagnosisIn, ...]
    lines: tuple[LineIn, ...]
    # Ciphertext until the service decides an age edit needs it; then ``birth_date`` holds the date.
    birth_date_sealed: bytes = field(default=b"", repr=False)
    birth_date: date | None = field(default=None, repr=False)
    # Code set -> the first day of its oldest loaded release (read with the encounter, for the lookups).
    code_set_starts: dict[str, date] | None = None
    claim_type: ClaimType = ClaimType.PROFESSIONAL
    institutional: InstitutionalIn | None = None  # set on an institutional encounter

    @property
    def service_dates(self) -> tuple[date, ...]:
        return tuple(sorted({self.service_date, *(line.service_date for line in self.lines)}))
