"""The 837I claim loop (2300/2400 of 005010X223A2): type of bill, statement period, admission, attending.

The envelope, billing provider and subscriber loops are the 837P's (``claims837``); only the claim differs.
"""

from __future__ import annotations

from rcm.x12.claims import Claim, Institutional
from rcm.x12.claims837 import (
    check_claim,
    diagnosis,
    procedure,
    provider_nm1,
    references,
    service_date,
    service_facility,
)
from rcm.x12.errors import X12Error
from rcm.x12.model import Provider, d8
from rcm.x12.other_payers import write_line_adjudications, write_other_subscribers
from rcm.x12.writer import TransactionWriter, amount

# HI holds twelve codes: other diagnoses beyond twelve go to a second HI*ABF (the guide allows two).
_HI_CAPACITY = 12


def write_institutional_claim(body: TransactionWriter, claim: Claim) -> None:
    check_claim(claim, "837I")
    facts = claim.institutional
    assert facts is not None
    if facts.statement_end < facts.statement_start:
        raise X12Error("the statement period ends before it starts", segment_id="DTP")
    # CLM05: facility type code (first two digits of the type of bill), qualifier A, frequency. CLM06 is not
    # used in the 837I.
    body.segment(
        "CLM",
        claim.patient_control_number,
        amount(claim.total_charge),
        None,
        None,
        (claim.place_of_service, "A", claim.frequency),
        None,
        claim.assignment,
        claim.benefits_assigned,
        claim.release_of_information,
    )
    _dates(body, facts)
    references(body, claim)
    codes = [diagnosis(code) for code in claim.diagnoses]
    body.segment("HI", ("ABK", codes[0]))
    if facts.admitting_diagnosis:
        body.segment("HI", ("ABJ", diagnosis(facts.admitting_diagnosis)))
    others = codes[1:]
    for start in range(0, len(others), _HI_CAPACITY):
        body.segment("HI", *[("ABF", code) for code in others[start : start + _HI_CAPACITY]])
    _providers(body, claim, facts.attending)
    write_other_subscribers(body, claim)
    _lines(body, claim)


def _dates(body: TransactionWriter, facts: Institutional) -> None:
    """DTP*434 statement period, DTP*435 admission (DT with the hour when known), CL1."""
    body.segment("DTP", "434", "RD8", f"{d8(facts.statement_start)}-{d8(facts.statement_end)}")
    if facts.admission_date is not None:
        if facts.admission_hour is None:
            body.segment("DTP", "435", "D8", d8(facts.admission_date))
        else:
            if not 0 <= facts.admission_hour <= 23:
                raise X12Error("admission hour must be 0 to 23", segment_id="DTP", element=3)
            body.segment("DTP", "435", "DT", f"{d8(facts.admission_date)}{facts.admission_hour:02d}00")
    body.segment("CL1", facts.admission_type, facts.admission_source, facts.patient_status)


def _providers(body: TransactionWriter, claim: Claim, attending: Provider) -> None:
    # 2310A attending (required), 2310D rendering, 2310E service facility, 2310F referring: the guide's order.
    provider_nm1(body, "71", attending, "AT", person=True)
    if claim.rendering is not None:
        provider_nm1(body, "82", claim.rendering, person=True)
    if claim.service_facility is not None:
        service_facility(body, claim.service_facility)
    if claim.referring is not None:
        provider_nm1(body, "DN", claim.referring, person=True)


def _lines(body: TransactionWriter, claim: Claim) -> None:
    for number, line in enumerate(claim.lines, start=1):
        if not line.revenue_code:
            raise X12Error("an institutional service line needs a revenue code", segment_id="SV2", element=1)
        body.segment("LX", number)
        body.segment(
            "SV2",
            line.revenue_code,
            procedure(line) if line.procedure else None,
            amount(line.charge),
            "UN",
            line.units,
        )
        service_date(body, line)
        if line.control_number:
            body.segment("REF", "6R", line.control_number)
        # 2420C rendering, 2420D referring.
        if line.rendering is not None:
            provider_nm1(body, "82", line.rendering, person=True)
        if line.referring is not None:
            provider_nm1(body, "DN", line.referring, person=True)
        write_line_adjudications(body, line)
