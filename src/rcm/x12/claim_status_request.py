"""276 claim status request (005010X212): model, writer, reader, guide checks.

HL 20 the payer asked, HL 21 the information receiver (who asks: the submitter, NM1*41), HL 19 the service
provider (NPI), HL 22 the subscriber and, for a dependent, HL 23 the patient. Each claim asked about is a 2200
loop under the patient's level: TRN trace number, REF*1K the payer's claim control number, REF*EJ our patient
control number, AMT*T3 the billed amount, DTP*472 the service dates. The 277 answers per trace number.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import msgspec

from rcm.x12.document import Finding
from rcm.x12.eligibility import (
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
from rcm.x12.values import cents
from rcm.x12.writer import TransactionWriter, amount, text

GUIDE = "005010X212"


class Requester(msgspec.Struct, frozen=True, kw_only=True):
    """2100B: who asks (NM1*41, the id the payer or clearinghouse gave the submitter, under 46)."""

    name: str
    identifier: str


class ClaimQuery(msgspec.Struct, frozen=True, kw_only=True):
    trace_number: str  # TRN02, echoed by the 277
    patient_control_number: str | None = None  # REF*EJ
    payer_claim_control_number: str | None = None  # REF*1K
    total_charge: int | None = None  # AMT*T3, cents
    service_start: date | None = None  # DTP*472
    service_end: date | None = None


class StatusInquiry(msgspec.Struct, frozen=True, kw_only=True):
    subscriber: Member
    claims: tuple[ClaimQuery, ...]
    dependent: Member | None = None


class ClaimStatusRequest(msgspec.Struct, frozen=True, kw_only=True):
    envelope: Envelope
    reference: str  # BHT03
    source: Source
    requester: Requester
    provider: Provider  # 2100C service provider
    inquiries: tuple[StatusInquiry, ...]


class Request276(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    source: Source
    requester: Requester
    provider: Provider
    inquiries: tuple[StatusInquiry, ...]


def write_276(request: ClaimStatusRequest) -> str:
    if not request.inquiries:
        raise X12Error("a claim status request needs at least one inquiry", segment_id="HL")
    transaction = SingleTransaction(
        request.envelope,
        functional_id="HR",
        transaction_set="276",
        guide=GUIDE,
        structure="0010",
        purpose="13",
        reference=request.reference,
    )
    with transaction as body:
        hl = Hierarchy(body)
        source = write_source(body, hl, request.source)
        receiver = hl.open(source, "21", True)
        body.segment(
            "NM1",
            "41",
            "2",
            text(request.requester.name, body.delimiters, max_length=60),
            None,
            None,
            None,
            None,
            "46",
            request.requester.identifier,
        )
        provider = hl.open(receiver, "19", True)
        write_provider(body, "1P", request.provider)
        for inquiry in request.inquiries:
            if not inquiry.claims:
                raise X12Error("a status inquiry needs at least one claim", segment_id="TRN")
            dependent = inquiry.dependent
            subscriber = hl.open(provider, "22", dependent is not None)
            if dependent is None:
                write_demographics(body, inquiry.subscriber)
                write_member(body, "IL", inquiry.subscriber)
            else:
                write_member(body, "IL", inquiry.subscriber)
                hl.open(subscriber, "23", False)
                write_demographics(body, dependent)
                write_member(body, "QC", dependent)
            for query in inquiry.claims:
                _claim(body, query)
    return transaction.text


def _claim(body: TransactionWriter, query: ClaimQuery) -> None:
    body.segment("TRN", "1", query.trace_number)
    if query.payer_claim_control_number:
        body.segment("REF", "1K", query.payer_claim_control_number)
    if query.patient_control_number:
        body.segment("REF", "EJ", query.patient_control_number)
    if query.total_charge is not None:
        body.segment("AMT", "T3", amount(query.total_charge))
    if query.service_start is not None:
        end = query.service_end or query.service_start
        if end < query.service_start:
            raise X12Error("the service period ends before it starts", segment_id="DTP", element=3)
        body.segment("DTP", "472", "RD8", f"{d8(query.service_start)}-{d8(end)}")


def read_276(transaction: Transaction) -> Request276:
    require_guide(transaction, (GUIDE,))
    data: dict[str, Any] = {"inquiries": []}
    inquiry: dict[str, Any] | None = None
    member: dict[str, Any] | None = None  # the person the next NM1 names (DMG comes before NM1 in the 276)
    query: dict[str, Any] | None = None
    for segment in transaction:
        sid = segment.id
        if sid == "BHT":
            data["reference"] = segment[3]
        elif sid == "HL":
            query = None
            member = {}
            if segment[3] == "22":
                inquiry = {"claims": []}
                data["inquiries"].append(inquiry)
        elif sid == "DMG" and member is not None:
            demographics_into(member, segment)
        elif sid == "NM1":
            entity = segment[1]
            if entity == "PR":
                data["source"] = {"name": segment[3], "payer_id": segment[9]}
            elif entity == "41":
                data["requester"] = {"name": segment[3], "identifier": segment[9]}
            elif entity == "1P":
                data["provider"] = provider_of(segment)
            elif entity in ("IL", "QC") and inquiry is not None:
                inquiry["subscriber" if entity == "IL" else "dependent"] = {
                    **(member or {}),
                    **member_of(segment),
                }
        elif sid == "TRN" and inquiry is not None:
            query = {"trace_number": segment[2]}
            inquiry["claims"].append(query)
        elif query is not None:
            _claim_segment(query, segment)
    return convert(data, Request276, transaction)


def _claim_segment(query: dict[str, Any], segment: Any) -> None:
    if segment.id == "REF" and segment[1] == "1K":
        query["payer_claim_control_number"] = segment[2]
    elif segment.id == "REF" and segment[1] == "EJ":
        query["patient_control_number"] = segment[2]
    elif segment.id == "AMT" and segment[1] == "T3":
        query["total_charge"] = cents(segment, 2)
    elif segment.id == "DTP" and segment[1] == "472":
        query["service_start"], query["service_end"] = dates_of(segment)


def read_276_request(transaction: Transaction, envelope: Envelope) -> ClaimStatusRequest:
    read = read_276(transaction)
    return ClaimStatusRequest(envelope=envelope, **msgspec.structs.asdict(read))


def check_276(transaction: Transaction) -> Iterator[Finding]:
    tree = TreeCheck(
        {"20": None, "21": "20", "19": "21", "22": "19", "23": "22"},
        {"20": ("PR",), "21": ("41",), "19": ("1P",), "22": ("IL",), "23": ("QC",)},
        ("TRN",),
    )
    for segment in transaction:
        if segment.id == "AMT":
            try:
                cents(segment, 2)
            except X12Error as exc:
                yield Finding("AMT", segment.index, exc.element, exc.message)
        yield from tree.segment(segment)
    yield from tree.end(transaction)
