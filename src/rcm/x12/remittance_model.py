"""The 835 (005010X221A1) as typed values: what a payer's remittance advice says, money in integer cents.

The reader (``rcm.x12.remittance``) produces these and the writer (``rcm.x12.remittance_writer``) writes them,
so the sandbox payer answers with exactly what the posting reads. They are frozen msgspec Structs: ``rcm x12
parse`` prints them as JSON, and a writer given the read result writes the same remittance back.

Codes stay strings (CLP02 status, CAS01 group, CARC, RARC...): real files carry codes the guide does not
list, and the reader keeps them, while the guide check (``check``) reports them as findings.
"""

from __future__ import annotations

from datetime import date

import msgspec

from rcm.x12.document import Finding

# CLP02 claim status codes (X221A1 1.10.2.x): 1-3 processed as primary/secondary/tertiary, 4 denied,
# 19-21 processed and forwarded, 22 reversal of a previous payment, 23 not our claim, 25 predetermination.
CLAIM_STATUSES = frozenset({"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"})
REVERSAL = "22"
# CAS01 in 5010: CR (corrections and reversals) was a 4010 group and is no longer valid.
ADJUSTMENT_GROUPS = frozenset({"CO", "OA", "PI", "PR"})
# BPR01 handling, BPR04 payment method, CLP06 claim filing indicator (fewer codes than the 837 allows) and
# PLB03-1 provider adjustment reason, as X221A1 lists them.
HANDLING_CODES = frozenset({"C", "D", "H", "I", "P", "U", "X"})
PAYMENT_METHODS = frozenset({"ACH", "BOP", "CHK", "FWT", "NON"})
# fmt: off
FILING_INDICATORS = frozenset({
    "12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF", "TV",
    "VA", "WC", "ZZ",
})
PLB_REASONS = frozenset({
    "50", "51", "72", "90", "AH", "AM", "AP", "B2", "B3", "BD", "BN", "C5", "CR", "CS", "CT", "CV",
    "CW", "DM", "E3", "FB", "FC", "GO", "HM", "IP", "IR", "IS", "J1", "L3", "L6", "LE", "LS", "OA",
    "OB", "PI", "PL", "RA", "RE", "SL", "TL", "WO", "WU",
})
# fmt: on


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """N3/N4."""

    line1: str
    line2: str | None = None
    city: str
    state: str | None = None
    postal_code: str | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """PER: name and one telephone number (TE)."""

    function: str  # PER01: BL technical contact, CX business contact
    name: str | None = None
    phone: str | None = None


class Payer(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 1000A: N1*PR (N103 XV with the CMS plan id when present), N3/N4, REF*2U payer id, PER*BL."""

    name: str
    identifier_qualifier: str | None = None  # N103
    identifier: str | None = None  # N104
    payer_id: str | None = None  # REF*2U: the payer identification number other payers use
    address: Address | None = None
    technical_contact: Contact | None = None


class Payee(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 1000B: N1*PE with the NPI (N103 XX) or the TIN (N103 FI); REF*TJ carries the TIN beside an NPI."""

    name: str
    npi: str | None = None
    tin: str | None = None
    address: Address | None = None


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """One side of an electronic funds transfer: DFI id qualifier and number, account qualifier and number."""

    dfi_qualifier: str  # 01 ABA routing number, 04 Canadian
    dfi: str
    account_qualifier: str  # DA demand deposit, SG savings
    account: str


class Funds(msgspec.Struct, frozen=True, kw_only=True):
    """BPR05-15, present when money moves electronically (ACH, FWT)."""

    format: str  # BPR05: CCP (CCD+), CTX
    sender: Account  # BPR06-09: the payer's bank and account
    originator_id: str  # BPR10: 1 followed by the payer's TIN
    originator_supplemental: str | None = None  # BPR11
    receiver: Account  # BPR12-15: the provider's bank and account


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """BPR, TRN, REF, DTM and the payer and payee loops: everything before the first claim."""

    handling: str  # BPR01: I remittance with payment, H notification only, C payment with remittance...
    total_paid: int  # BPR02, cents: what the payment (the check or the ACH credit) is worth
    credit_debit: str  # BPR03: C credit, D debit
    payment_method: str  # BPR04: ACH, BOP, CHK, FWT, NON
    funds: Funds | None = None
    payment_date: date  # BPR16: check issue date or effective date of the transfer
    trace_number: str  # TRN02: the check or EFT trace number, the key that reassociates money and 835
    trace_originator: str  # TRN03: 1 followed by the payer's TIN
    receiver_id: str | None = None  # REF*EV
    production_date: date | None = None  # DTM*405
    payer: Payer
    payee: Payee


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """An NM1: entity type 1 person or 2 organisation, name, identification qualifier and identifier."""

    entity_type: str = "1"
    last: str | None = None
    first: str | None = None
    middle: str | None = None
    suffix: str | None = None
    identifier_qualifier: str | None = None
    identifier: str | None = None


class Reference(msgspec.Struct, frozen=True):
    """A REF: qualifier (1L group number, EA medical record, F8 original reference...) and value."""

    qualifier: str
    value: str


class Adjustment(msgspec.Struct, frozen=True, kw_only=True):
    """One CAS triple: group (CO, OA, PI, PR), CARC reason, amount in cents (positive reduces payment)."""

    group: str
    reason: str
    amount: int
    quantity: str | None = None


class ServiceLine(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2110: SVC with its dates, adjustments, control number, allowed amount and RARC remarks."""

    qualifier: str  # SVC01-1: HC (HCPCS/CPT), NU (revenue code), AD, ER...
    code: str
    modifiers: tuple[str, ...] = ()
    charge: int  # SVC02
    paid: int  # SVC03
    revenue_code: str | None = None  # SVC04
    units: str | None = None  # SVC05, decimal text (units can be fractional)
    service_start: date | None = None  # DTM*472 (one date) or DTM*150
    service_end: date | None = None  # DTM*472 or DTM*151
    adjustments: tuple[Adjustment, ...] = ()
    control_number: str | None = None  # REF*6R: the line item control number the 837 sent
    allowed: int | None = None  # AMT*B6
    remarks: tuple[str, ...] = ()  # LQ*HE: RARC remark codes
    # SVC06: the procedure as billed, when the payer paid another (a bundled or split line names the code
    # the claim line carried; the SVC01 code is what the payer adjudicated)
    original_code: str | None = None
    original_modifiers: tuple[str, ...] = ()

    @property
    def billed_code(self) -> str:
        """The procedure the claim line billed: SVC06 when present, else SVC01."""
        return self.original_code or self.code

    @property
    def billed_modifiers(self) -> tuple[str, ...]:
        return self.original_modifiers if self.original_code else self.modifiers


class Claim(msgspec.Struct, frozen=True):
    """Loop 2100: CLP, claim CAS, the patient and the others named, references, dates, remarks, lines.

    Not keyword-only, unlike the other structs: msgspec builds a struct from more than 14 keywords on a slow
    path (about ten times slower), and the reader builds one per claim, so it passes them by position, in
    this order: the required fields first. Everyone else should still name them.
    """

    patient_control_number: str  # CLP01: our claim id as the 837 sent it (CLM01)
    status: str  # CLP02
    charge: int  # CLP03
    paid: int  # CLP04
    filing_indicator: str  # CLP06: MB Medicare part B, MC Medicaid, 12 PPO...
    payer_claim_control_number: str  # CLP07: the payer's id for the claim (ICN / DCN)
    patient: Person  # NM1*QC
    patient_responsibility: int | None = None  # CLP05
    facility_type: str | None = None  # CLP08: place of service or bill type's first two digits
    frequency: str | None = None  # CLP09: 1 original, 7 replacement, 8 void
    adjustments: tuple[Adjustment, ...] = ()
    insured: Person | None = None  # NM1*IL, when the insured is not the patient
    rendering: Person | None = None  # NM1*82
    remarks: tuple[str, ...] = ()  # MOA03-07 (outpatient RARC)
    inpatient_remarks: tuple[str, ...] = ()  # MIA05, MIA20-23
    references: tuple[Reference, ...] = ()
    service_start: date | None = None  # DTM*232 claim statement period start
    service_end: date | None = None  # DTM*233
    received: date | None = None  # DTM*050
    lines: tuple[ServiceLine, ...] = ()
    # AMT*I: interest the payer pays on the claim, included in CLP04 (so CLP03 - (CLP04 - AMT*I) = Σ CAS
    # when no CAS carries it)
    interest: int | None = None

    @property
    def reversal(self) -> bool:
        return self.status == REVERSAL


class ClaimSource(msgspec.Struct, frozen=True, gc=False):
    """Where a claim's parts were read: segment positions within the transaction set (ST is 1), the
    reader's side record (not part of what the writer writes): CLP, each claim adjustment's CAS, AMT*I, each
    line's SVC and each line adjustment's CAS."""

    clp: int
    adjustments: tuple[int, ...] = ()
    interest: int | None = None
    lines: tuple[int, ...] = ()
    line_adjustments: tuple[tuple[int, ...], ...] = ()


class ProviderAdjustment(msgspec.Struct, frozen=True, kw_only=True):
    """One PLB adjustment: positive reduces the payment (a recoupment), negative adds to it (interest...)."""

    provider_id: str  # PLB01: NPI or TIN
    fiscal_period_end: date  # PLB02
    reason: str  # PLB03-1: WO overpayment recovery, L6 interest, FB forward balance, 72 authorized return...
    reference: str | None = None  # PLB03-2: the claim or document the adjustment concerns
    amount: int


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """BPR02 = Σ CLP04 - Σ PLB, the check a posting needs before it releases anything."""

    total_paid: int
    claims_paid: int
    provider_adjustments: int
    balanced: bool
    unbalanced_claims: int


class Remittance(msgspec.Struct, frozen=True, kw_only=True):
    """One 835 transaction set, read whole: ``read()``'s result and what the writer takes."""

    header: Header
    claims: tuple[Claim, ...] = ()
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()
    balance: Balance | None = None
    findings: tuple[Finding, ...] = ()


def claim_imbalance(claim: Claim) -> int:
    """CLP03 - CLP04 - Σ CAS of the claim and its lines, in cents; zero when the claim balances. Interest
    (AMT*I) is included in CLP04: a claim balances as well when CLP03 - (CLP04 - AMT*I) = Σ CAS (the payer
    carried no CAS for the interest)."""
    adjusted = sum(a.amount for a in claim.adjustments)
    adjusted += sum(a.amount for line in claim.lines for a in line.adjustments)
    return balance_off(claim.charge - claim.paid - adjusted, claim.interest)


def balance_off(difference: int, interest: int | None) -> int:
    """CLP03 - CLP04 - Σ CAS (``difference``) with the claim's interest taken out of CLP04 when that is what
    makes the claim balance."""
    if difference and interest and difference + interest == 0:
        return 0
    return difference


def interest_paid(claim: Claim) -> int:
    """The part of CLP04 that is interest (AMT*I) rather than payment of the charges: AMT*I when it is what
    balances the claim, else 0 (no interest, or a CAS carried it)."""
    adjusted = sum(a.amount for a in claim.adjustments)
    adjusted += sum(a.amount for line in claim.lines for a in line.adjustments)
    difference = claim.charge - claim.paid - adjusted
    if claim.interest and difference and difference + claim.interest == 0:
        return claim.interest
    return 0


def line_imbalance(line: ServiceLine) -> int:
    """SVC02 - SVC03 - Σ line CAS, in cents."""
    return line.charge - line.paid - sum(a.amount for a in line.adjustments)


def balance_of(remittance: Remittance) -> Balance:
    """The balance of a remittance model (the writer's input), as the reader computes it."""
    claims_paid = sum(claim.paid for claim in remittance.claims)
    adjusted = sum(adjustment.amount for adjustment in remittance.provider_adjustments)
    return Balance(
        total_paid=remittance.header.total_paid,
        claims_paid=claims_paid,
        provider_adjustments=adjusted,
        balanced=remittance.header.total_paid == claims_paid - adjusted,
        unbalanced_claims=sum(1 for claim in remittance.claims if claim_imbalance(claim) != 0),
    )
