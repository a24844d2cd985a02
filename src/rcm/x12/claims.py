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
from rcm.x12.remittance_model import Adjustment


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


class LineAdjudication(msgspec.Struct, frozen=True, kw_only=True):
    """2430: how another payer (named by its 2330B id) adjudicated this line: SVD, CAS, DTP*573, AMT*EAF."""

    payer_id: str  # SVD01: the 2330B NM109 of the payer that adjudicated the line
    paid: int  # SVD02, cents (zero when that payer denied the line)
    procedure: str | None = None  # SVD03-2 (HC): as that payer adjudicated it
    modifiers: tuple[str, ...] = ()
    revenue_code: str | None = None  # SVD04 (837I)
    units: str = "1"  # SVD05
    adjustments: tuple[Adjustment, ...] = ()  # CAS: group, reason (CARC), amount
    adjudicated: date  # DTP*573: the payer's adjudication (remittance) date
    remaining_patient_liability: int | None = None  # AMT*EAF


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
    adjudications: tuple[LineAdjudication, ...] = ()  # 2430, one per other payer that adjudicated it


class OtherSubscriber(msgspec.Struct, frozen=True, kw_only=True):
    """2320/2330A/2330B: another coverage of the patient and, once it adjudicated the claim, what it decided
    (the secondary claim carries the primary's; the tertiary the primary's and the secondary's)."""

    payer: Payer  # 2330B NM1*PR
    member_id: str  # 2330A NM109 (MI)
    name: PersonName  # 2330A: the other coverage's insured
    responsibility: str = "P"  # SBR01: that payer's place in the order (P, S, T)
    relationship: str = "18"  # SBR02: the patient's relationship to that insured (18 self, 01, 19, G8)
    group_number: str | None = None  # SBR03
    group_name: str | None = None  # SBR04
    claim_filing_indicator: str = "CI"  # SBR09
    address: Address | None = None  # 2330A N3/N4
    adjustments: tuple[Adjustment, ...] = ()  # 2320 CAS: claim-level adjustments
    paid: int | None = None  # AMT*D: what that payer paid, cents; None when it has not adjudicated
    remaining_patient_liability: int | None = None  # AMT*EAF
    adjudicated: date | None = None  # 2330B DTP*573: its adjudication (remittance) date
    payer_claim_control_number: str | None = None  # 2330B REF*F8: that payer's claim number
    benefits_assigned: str = "Y"  # OI03
    release_of_information: str = "Y"  # OI06


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
    other_subscribers: tuple[OtherSubscriber, ...] = ()  # 2320, up to ten

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
