"""The claim model the 837 writers take and the 837 readers give back (005010X222A1 and 005010X223A2).

One ``ClaimBatch`` is what a practice submits at once: billing providers (one practice may bill under
several NPIs), each with its subscriber loops (one payer each), each with its claims. Money is integer cents,
dates are ``date``. A claim is institutional (837I) when it carries ``institutional``; otherwise professional
(837P). The batch never spans practices: that is the caller's rule (one batch per tenant), not something X12
can see.
"""

from __future__ import annotations

from datetime import date

import msgspec

from rcm.x12.model import Address, Envelope, PersonName, Provider


class Payer(msgspec.Struct, frozen=True, kw_only=True):
    """2010BB: the payer's name and its payer id (NM109 under PI)."""

    name: str
    payer_id: str


class Subscriber(msgspec.Struct, frozen=True, kw_only=True):
    """2000B/2010BA: the insured."""

    member_id: str
    name: PersonName
    birth_date: date | None = None  # required by the guides when the subscriber is the patient
    sex: str | None = None  # F, M, U
    address: Address | None = None
    group_number: str | None = None  # SBR03
    group_name: str | None = None  # SBR04
    claim_filing_indicator: str = "CI"  # SBR09: CI commercial, MB Medicare B, MC Medicaid, BL, HM...
    responsibility: str = "P"  # SBR01: P primary, S secondary, T tertiary


class Patient(msgspec.Struct, frozen=True, kw_only=True):
    """2000C/2010CA: the patient when not the subscriber (HL03 = 23)."""

    relationship: (
        str  # PAT01: 01 spouse, 19 child, 20 employee, 21 unknown, 39 organ donor, 53 life partner, G8
    )
    name: PersonName
    birth_date: date
    sex: str
    address: Address


class ServiceFacility(msgspec.Struct, frozen=True, kw_only=True):
    """2310C (837P) or 2310E (837I): where the service was given, when not the billing provider's address."""

    name: str
    address: Address
    npi: str | None = None


class ServiceLine(msgspec.Struct, frozen=True, kw_only=True):
    """2400: SV1 (professional) or SV2 (institutional: ``revenue_code`` set)."""

    charge: int  # cents
    units: str = "1"  # decimal text: units may be fractional
    procedure: str | None = None  # HCPCS/CPT; required on a professional line
    modifiers: tuple[str, ...] = ()  # up to four
    revenue_code: str | None = None  # SV201, institutional lines
    place_of_service: str | None = None  # SV105, when it differs from the claim's
    diagnosis_pointers: tuple[int, ...] = ()  # SV107: 1-based positions in the claim's diagnoses, up to four
    service_date: date | None = None  # DTP*472
    service_date_end: date | None = None  # when the line spans days (RD8)
    control_number: str | None = None  # REF*6R: how the 835 names the line back
    rendering: Provider | None = None  # 2420A, when it differs from the claim's
    referring: Provider | None = None  # 2420F (837P)


class Institutional(msgspec.Struct, frozen=True, kw_only=True):
    """What makes a claim an 837I: bill type, statement period, admission, attending provider."""

    statement_start: date  # DTP*434
    statement_end: date
    attending: Provider  # 2310A, required
    patient_status: str  # CL103 (CL1 is required on every 837I): 01 discharged home, 30 still patient...
    admission_date: date | None = None  # DTP*435 (inpatient)
    admission_hour: int | None = None  # 0-23, written as DT when known
    admission_type: str | None = None  # CL101
    admission_source: str | None = None  # CL102
    admitting_diagnosis: str | None = None  # HI*ABJ


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """2300: one claim. ``place_of_service`` is CLM05-1: the place of service code (837P) or the facility type
    code, the first two digits of the type of bill (837I)."""

    patient_control_number: str  # CLM01
    total_charge: int  # CLM02, cents: the sum of the lines
    place_of_service: str
    diagnoses: tuple[str, ...]  # ICD-10-CM without the dot; the first is the principal (ABK)
    lines: tuple[ServiceLine, ...]
    frequency: str = "1"  # CLM05-3: 1 original, 7 replacement, 8 void
    payer_claim_control_number: str | None = None  # REF*F8, required for 7 and 8
    provider_signature: bool = True  # CLM06 (837P)
    assignment: str = "A"  # CLM07: A assigned, B lab services only, C not assigned
    benefits_assigned: str = "Y"  # CLM08: Y, N, W
    release_of_information: str = "Y"  # CLM09: Y, I
    prior_authorization: str | None = None  # REF*G1
    referring: Provider | None = None  # 2310A (837P), 2310F (837I)
    rendering: Provider | None = None  # 2310B (837P), 2310D (837I)
    service_facility: ServiceFacility | None = None
    institutional: Institutional | None = None

    @property
    def kind(self) -> str:
        return "837I" if self.institutional is not None else "837P"


class SubscriberLoop(msgspec.Struct, frozen=True, kw_only=True):
    """2000B (and 2000C when ``patient`` is set): a subscriber, one payer, and one patient's claims."""

    payer: Payer
    subscriber: Subscriber
    claims: tuple[Claim, ...]
    patient: Patient | None = None


class BillingProvider(msgspec.Struct, frozen=True, kw_only=True):
    """2000A/2010AA (and 2010AB when payments go to another address)."""

    name: str
    npi: str
    tin: str  # REF*EI, nine digits
    address: Address
    subscribers: tuple[SubscriberLoop, ...]
    taxonomy: str | None = None  # PRV*BI
    pay_to: Address | None = None


class Submitter(msgspec.Struct, frozen=True, kw_only=True):
    """1000A: who sends the batch, and whom to call about it (PER)."""

    name: str
    identifier: str  # NM109 under 46 (the id the receiver gave the submitter)
    contact_name: str
    phone: str | None = None
    email: str | None = None


class Receiver(msgspec.Struct, frozen=True, kw_only=True):
    """1000B: the clearinghouse or payer receiving the batch."""

    name: str
    identifier: str


class ClaimBatch(msgspec.Struct, frozen=True, kw_only=True):
    """One interchange of claims: 837P claims in one functional group, 837I claims in a second."""

    envelope: Envelope
    reference: str  # BHT03: the batch's own id, echoed by the 999 and 277CA
    submitter: Submitter
    receiver: Receiver
    billing_providers: tuple[BillingProvider, ...]
    transaction_type: str = "CH"  # BHT06: CH chargeable, RP reporting (encounters)
