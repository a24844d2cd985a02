"""271 eligibility response (005010X279A1): per patient, coverage active or not, plan dates, group, and the
benefits by service type (EB), or why the payer refused to answer (AAA). Reader, writer, guide checks.

EB01 says what a benefit is: 1 active coverage, 6 inactive, B copayment (EB07 money), A coinsurance (EB08
percent, a decimal fraction: 0.2 is 20 %), C deductible (EB07, over the EB06 time period), G out-of-pocket
maximum, and more. EB12 says in network (Y), out of network (N) or both (W). AAA03 gives the reject reason
(72 invalid member id, 75 subscriber not found, 42 unable to respond now...) and AAA04 what to do next.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import msgspec

from rcm.x12.document import Finding
from rcm.x12.eligibility import (
    GUIDE,
    Hierarchy,
    Member,
    Source,
    TreeCheck,
    dates_of,
    demographics_into,
    member_of,
    provider_of,
    require_guide,
    write_demographics,
    write_member,
    write_provider,
    write_source,
)
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.model import Envelope, Provider, SingleTransaction, convert, d8
from rcm.x12.segments import Segment
from rcm.x12.values import cents, quantity
from rcm.x12.writer import TransactionWriter, amount, text

ACTIVE, INACTIVE = "1", "6"


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """AAA: the request could not be answered (reason AAA03, follow-up AAA04)."""

    reason: str
    follow_up: str | None = None
    valid_request: bool = False  # AAA01: Y when the request was valid but could not be processed


class PlanDate(msgspec.Struct, frozen=True, kw_only=True):
    """DTP at the patient level: 291 plan, 346 plan begin, 347 plan end, 356/357 eligibility begin/end."""

    qualifier: str
    start: date
    end: date


class Benefit(msgspec.Struct, frozen=True, kw_only=True):
    code: str  # EB01
    coverage_level: str | None = None  # EB02: IND individual, FAM family, EMP...
    service_types: tuple[str, ...] = ()  # EB03
    insurance_type: str | None = None  # EB04
    plan: str | None = None  # EB05 plan coverage description
    time_period: str | None = None  # EB06: 23 calendar year, 29 remaining, 27 visit...
    amount: int | None = None  # EB07, cents
    percent: str | None = None  # EB08, decimal fraction as text
    quantity_qualifier: str | None = None  # EB09
    quantity: str | None = None  # EB10
    authorization_required: str | None = None  # EB11: Y, N, U
    in_network: str | None = None  # EB12: Y, N, W
    messages: tuple[str, ...] = ()  # MSG01


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What the payer says about one patient (the subscriber, or a dependent of theirs)."""

    trace_number: str | None
    subscriber: Member
    dependent: Member | None = None
    group_number: str | None = None  # REF*6P
    dates: tuple[PlanDate, ...] = ()
    benefits: tuple[Benefit, ...] = ()
    rejections: tuple[Rejection, ...] = ()

    @property
    def coverage(self) -> str:
        """active, inactive, or unknown (rejected, or no EB*1/EB*6 given)."""
        codes = {benefit.code for benefit in self.benefits}
        if ACTIVE in codes:
            return "active"
        return "inactive" if INACTIVE in codes else "unknown"


class EligibilityResponse(msgspec.Struct, frozen=True, kw_only=True):
    envelope: Envelope
    reference: str
    trace_originator: str  # TRN03 of the answers (the requester's, echoed)
    source: Source
    receiver: Provider
    answers: tuple[Answer, ...]
    rejections: tuple[Rejection, ...] = ()  # AAA at the payer or receiver level: the whole request refused


class Response271(msgspec.Struct, frozen=True, kw_only=True):
    """A 271 as read: what ``EligibilityResponse`` holds but the envelope."""

    reference: str
    trace_originator: str
    source: Source
    receiver: Provider
    answers: tuple[Answer, ...]
    rejections: tuple[Rejection, ...] = ()


def write_271(response: EligibilityResponse) -> str:
    transaction = SingleTransaction(
        response.envelope,
        functional_id="HB",
        transaction_set="271",
        guide=GUIDE,
        structure="0022",
        purpose="11",
        reference=response.reference,
    )
    with transaction as body:
        hl = Hierarchy(body)
        source = write_source(body, hl, response.source)
        _rejections(body, response.rejections)
        receiver = hl.open(source, "21", bool(response.answers))
        write_provider(body, "1P", response.receiver)
        for answer in response.answers:
            dependent = answer.dependent
            subscriber = hl.open(receiver, "22", dependent is not None)
            if dependent is None:
                _patient(body, response, answer, "IL", answer.subscriber)
            else:
                write_member(body, "IL", answer.subscriber)
                write_demographics(body, answer.subscriber)
                hl.open(subscriber, "23", False)
                _patient(body, response, answer, "03", dependent)
    return transaction.text


def _rejections(body: TransactionWriter, rejections: tuple[Rejection, ...]) -> None:
    for rejection in rejections:
        body.segment(
            "AAA", "Y" if rejection.valid_request else "N", None, rejection.reason, rejection.follow_up
        )


def _patient(
    body: TransactionWriter, response: EligibilityResponse, answer: Answer, entity: str, patient: Member
) -> None:
    # 2000C/D TRN, then 2100C/D: NM1, REF, AAA, DMG, DTP; then the 2110 benefit loops (EB, MSG).
    if answer.trace_number:
        body.segment("TRN", "2", answer.trace_number, response.trace_originator)
    write_member(body, entity, patient)
    if answer.group_number:
        body.segment("REF", "6P", answer.group_number)
    _rejections(body, answer.rejections)
    write_demographics(body, patient)
    for plan_date in answer.dates:
        if plan_date.start == plan_date.end:
            body.segment("DTP", plan_date.qualifier, "D8", d8(plan_date.start))
        else:
            body.segment("DTP", plan_date.qualifier, "RD8", f"{d8(plan_date.start)}-{d8(plan_date.end)}")
    for benefit in answer.benefits:
        body.segment(
            "EB",
            benefit.code,
            benefit.coverage_level,
            list(benefit.service_types) or None,
            benefit.insurance_type,
            text(benefit.plan, body.delimiters, max_length=50),
            benefit.time_period,
            None if benefit.amount is None else amount(benefit.amount),
            benefit.percent,
            benefit.quantity_qualifier,
            benefit.quantity,
            benefit.authorization_required,
            benefit.in_network,
        )
        for message in benefit.messages:
            body.segment("MSG", text(message, body.delimiters, max_length=264))


def read_271(transaction: Transaction) -> Response271:
    require_guide(transaction, (GUIDE, "005010X279"))
    repetition = transaction.delimiters.repetition
    data: dict[str, Any] = {"answers": [], "rejections": [], "trace_originator": ""}
    answer: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    benefit: dict[str, Any] | None = None
    for segment in transaction:
        sid = segment.id
        if sid == "BHT":
            data["reference"] = segment[3]
        elif sid == "HL":
            member = benefit = None
            answer = _level(data, answer, segment[3])
        elif sid == "TRN" and answer is not None:
            answer["trace_number"] = segment[2]
            data["trace_originator"] = segment[3]
        elif sid == "NM1" and benefit is None:
            member = _named(data, answer, segment) or member
        elif sid == "REF" and segment[1] == "6P" and answer is not None and benefit is None:
            answer["group_number"] = segment[2]
        elif sid == "AAA":
            rejection = {
                "reason": segment[3],
                "follow_up": segment[4] or None,
                "valid_request": segment[1] == "Y",
            }
            (answer["rejections"] if answer is not None else data["rejections"]).append(rejection)
        elif sid == "DMG" and member is not None and benefit is None:
            demographics_into(member, segment)
        elif sid == "DTP" and answer is not None and benefit is None:
            start, end = dates_of(segment)
            answer["dates"].append({"qualifier": segment[1], "start": start, "end": end})
        elif sid == "EB" and answer is not None:
            benefit = _benefit(segment, repetition)
            answer["benefits"].append(benefit)
        elif sid == "MSG" and benefit is not None:
            benefit["messages"].append(segment[1])
    return convert(data, Response271, transaction)


def _level(data: dict[str, Any], answer: dict[str, Any] | None, level: str) -> dict[str, Any] | None:
    if level == "22":
        answer = {"trace_number": None, "dates": [], "benefits": [], "rejections": []}
        data["answers"].append(answer)
    elif level == "23" and answer is not None:
        # The dependent's answer replaces the subscriber's shell (which only names the subscriber).
        answer["rejections"], answer["dates"], answer["benefits"] = [], [], []
    return answer


def _named(data: dict[str, Any], answer: dict[str, Any] | None, segment: Segment) -> dict[str, Any] | None:
    """The parties of 2100A/B/C/D; NM1s inside benefit loops (2120C: other payers, primary care) are not."""
    entity = segment[1]
    if entity == "PR":
        data["source"] = {"name": segment[3], "payer_id": segment[9]}
    elif entity == "1P" or (entity in ("FA", "80", "2B", "GP", "P5") and "receiver" not in data):
        data["receiver"] = provider_of(segment)
    elif entity in ("IL", "03") and answer is not None:
        member = member_of(segment)
        answer["subscriber" if entity == "IL" else "dependent"] = member
        return member
    return None


def _benefit(segment: Segment, repetition: str | None) -> dict[str, Any]:
    raw_types = segment[3]
    types = raw_types.split(repetition) if raw_types and repetition else ([raw_types] if raw_types else [])
    return {
        "code": segment[1],
        "coverage_level": segment[2] or None,
        "service_types": types,
        "insurance_type": segment[4] or None,
        "plan": segment[5] or None,
        "time_period": segment[6] or None,
        "amount": cents(segment, 7, required=False),
        "percent": quantity(segment, 8),
        "quantity_qualifier": segment[9] or None,
        "quantity": quantity(segment, 10),
        "authorization_required": segment[11] or None,
        "in_network": segment[12] or None,
        "messages": [],
    }


def read_271_response(transaction: Transaction, envelope: Envelope) -> EligibilityResponse:
    read = read_271(transaction)
    return EligibilityResponse(envelope=envelope, **msgspec.structs.asdict(read))


def check_271(transaction: Transaction) -> Iterator[Finding]:
    """Tree and parties, and every patient answered: benefits (EB) or a rejection (AAA)."""
    tree = TreeCheck(
        {"20": None, "21": "20", "22": "21", "23": "22"},
        {"20": ("PR",), "21": ("1P",), "22": ("IL",), "23": ("03",)},
    )
    answered = True
    patient: Any = None
    for segment in transaction:
        if segment.id == "HL":
            if patient is not None and not answered:
                yield Finding(
                    "HL", patient.index, None, "the patient has neither benefits (EB) nor a rejection"
                )
            patient = segment if segment[4] == "0" and segment[3] in ("22", "23") else None
            answered = False
        elif segment.id in ("EB", "AAA"):
            answered = True
        if segment.id == "EB":
            try:
                cents(segment, 7, required=False)
            except X12Error as exc:
                yield Finding("EB", segment.index, exc.element, exc.message)
        yield from tree.segment(segment)
    if patient is not None and not answered:
        yield Finding("HL", patient.index, None, "the patient has neither benefits (EB) nor a rejection")
    yield from tree.end(transaction)
