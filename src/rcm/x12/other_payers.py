"""The other payers of a claim (837P and 837I alike): loop 2320 (SBR, CAS, AMT*D, AMT*EAF, OI), 2330A (the
other insured, NM1*IL), 2330B (the other payer, NM1*PR, DTP*573, REF*F8) after the claim's provider loops,
and per service line loop 2430 (SVD, CAS, DTP*573, AMT*EAF) after the line's provider loops.

What a secondary (or tertiary) claim tells its payer about the payers before it. The writer refuses what a
payer's front end rejects: more than ten other payers, more CAS segments than a loop holds, a line
adjudication naming no 2330B payer, a payer's paid amount (AMT*D) that is not the sum of its lines' (SVD02).
"""

from __future__ import annotations

from itertools import groupby

from rcm.x12.claims import Claim, LineAdjudication, OtherSubscriber, Payer, ServiceLine
from rcm.x12.errors import X12Error
from rcm.x12.model import d8, n3_n4, write_nm1
from rcm.x12.remittance_model import Adjustment
from rcm.x12.remittance_writer import write_adjustments
from rcm.x12.writer import TransactionWriter, amount, text

MAX_OTHER_SUBSCRIBERS = 10  # 2320 repeats ten times
MAX_CAS = 5  # CAS segments in one 2320 or 2430 loop
_REASONS_PER_CAS = 6


def check_other_subscribers(claim: Claim) -> None:
    others = claim.other_subscribers
    if len(others) > MAX_OTHER_SUBSCRIBERS:
        raise X12Error("a claim names at most ten other payers", segment_id="SBR")
    ids = [other.payer.payer_id for other in others]
    if len(set(ids)) != len(ids):
        raise X12Error("each other payer is named once (2330B NM109)", segment_id="NM1", element=9)
    for other in others:
        _check_cas(other.adjustments)
        lines = [a for line in claim.lines for a in line.adjudications if a.payer_id == other.payer.payer_id]
        if lines and other.paid is not None and sum(a.paid for a in lines) != other.paid:
            raise X12Error(
                "the other payer's paid amount is not the sum of its line payments",
                segment_id="AMT",
                element=2,
            )
    for line in claim.lines:
        for adjudication in line.adjudications:
            if adjudication.payer_id not in ids:
                raise X12Error("a line adjudication names no 2330B payer", segment_id="SVD", element=1)
            _check_cas(adjudication.adjustments)


def _check_cas(adjustments: tuple[Adjustment, ...]) -> None:
    segments = 0
    for _, run in groupby(adjustments, key=lambda adjustment: adjustment.group):
        segments += -(-len(list(run)) // _REASONS_PER_CAS)
    if segments > MAX_CAS:
        raise X12Error("at most five CAS segments per loop: group the adjustments", segment_id="CAS")


def write_other_subscribers(body: TransactionWriter, claim: Claim) -> None:
    """2320/2330A/2330B, each other payer in turn."""
    for other in claim.other_subscribers:
        _other_subscriber(body, other)


def _other_subscriber(body: TransactionWriter, other: OtherSubscriber) -> None:
    delimiters = body.delimiters
    body.segment(
        "SBR",
        other.responsibility,
        other.relationship,
        other.group_number,
        text(other.group_name, delimiters, max_length=60),
        None,
        None,
        None,
        None,
        other.claim_filing_indicator,
    )
    write_adjustments(body, other.adjustments)
    if other.paid is not None:
        body.segment("AMT", "D", amount(other.paid))
    if other.remaining_patient_liability is not None:
        body.segment("AMT", "EAF", amount(other.remaining_patient_liability))
    body.segment("OI", None, None, other.benefits_assigned, None, None, other.release_of_information)
    write_nm1(body, "IL", other.name, "MI", other.member_id)
    if other.address is not None:
        n3_n4(body, other.address)
    payer_nm1(body, other.payer)
    if other.adjudicated is not None:
        body.segment("DTP", "573", "D8", d8(other.adjudicated))
    if other.payer_claim_control_number:
        body.segment("REF", "F8", other.payer_claim_control_number)


def payer_nm1(body: TransactionWriter, payer: Payer) -> None:
    """NM1*PR of a payer by its payer id (PI): 2010BB, and 2330B for the other payers."""
    name = text(payer.name, body.delimiters, max_length=60)
    body.segment("NM1", "PR", "2", name, None, None, None, None, "PI", payer.payer_id)


def write_line_adjudications(body: TransactionWriter, line: ServiceLine) -> None:
    """2430 of one line, each other payer's in turn."""
    for adjudication in line.adjudications:
        _line_adjudication(body, line, adjudication)


def _line_adjudication(body: TransactionWriter, line: ServiceLine, adjudication: LineAdjudication) -> None:
    code = adjudication.procedure or line.procedure
    modifiers = adjudication.modifiers if adjudication.procedure else line.modifiers
    revenue = adjudication.revenue_code or line.revenue_code
    if not code and not revenue:
        raise X12Error("a line adjudication needs the procedure or revenue code", segment_id="SVD", element=3)
    body.segment(
        "SVD",
        adjudication.payer_id,
        amount(adjudication.paid),
        ("HC", code, *modifiers) if code else None,  # 837I: absent on a line billed by revenue code alone
        revenue if line.revenue_code else None,  # SVD04: 837I only (required there)
        adjudication.units,
    )
    write_adjustments(body, adjudication.adjustments)
    body.segment("DTP", "573", "D8", d8(adjudication.adjudicated))
    if adjudication.remaining_patient_liability is not None:
        body.segment("AMT", "EAF", amount(adjudication.remaining_patient_liability))
