"""270 eligibility request (005010X279A1): model, writer, reader, guide checks; and the HL walk 270, 271 and
276 share.

A 270 asks one payer (information source, HL 20) on behalf of one provider (information receiver, HL 21)
about subscribers (HL 22) and, when the patient is a dependent, the dependent (HL 23, child of the
subscriber). The trace number (TRN) sits on the patient's level: the subscriber's when they are the patient,
else the dependent's; the 271 echoes it. Service types are one EQ each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import msgspec

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.model import Envelope, PersonName, Provider, SingleTransaction, convert, d8, sex_code, write_nm1
from rcm.x12.npi import npi_check_digit_valid
from rcm.x12.segments import Segment
from rcm.x12.values import date8, period
from rcm.x12.writer import TransactionWriter, text

GUIDE = "005010X279A1"


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """2100A: the payer asked (NM1*PR, payer id under PI)."""

    name: str
    payer_id: str


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """2100C/2100D: a subscriber (member id) or a dependent (no id of their own)."""

    name: PersonName
    member_id: str | None = None
    birth_date: date | None = None
    sex: str | None = None


class Inquiry(msgspec.Struct, frozen=True, kw_only=True):
    """One patient's question: who, on what date, for which service types (EQ01: 30 plan coverage...)."""

    trace_number: str
    subscriber: Member
    dependent: Member | None = None
    service_types: tuple[str, ...] = ("30",)
    service_date: date | None = None  # DTP*291; the payer assumes today when absent


class EligibilityRequest(msgspec.Struct, frozen=True, kw_only=True):
    envelope: Envelope
    reference: str  # BHT03
    trace_originator: str  # TRN03: "1" + the submitter's EIN, or "9" + an assigned number (10 characters)
    source: Source
    receiver: Provider  # 2100B: the provider asking, by NPI
    inquiries: tuple[Inquiry, ...]


# --- shared by 270, 271 and 276: the HL tree, parties, members


class Hierarchy:
    """HL01 numbering for a writer."""

    def __init__(self, body: TransactionWriter) -> None:
        self.body = body
        self.last = 0

    def open(self, parent: int | None, level: str, has_children: bool) -> int:
        self.last += 1
        self.body.segment("HL", self.last, parent, level, "1" if has_children else "0")
        return self.last


def write_source(body: TransactionWriter, hl: Hierarchy, source: Source) -> int:
    own = hl.open(None, "20", True)
    body.segment(
        "NM1",
        "PR",
        "2",
        text(source.name, body.delimiters, max_length=60),
        None,
        None,
        None,
        None,
        "PI",
        source.payer_id,
    )
    return own


def write_provider(body: TransactionWriter, entity: str, provider: Provider) -> None:
    write_nm1(body, entity, provider, "XX", provider.npi)


def write_member(body: TransactionWriter, entity: str, member: Member) -> None:
    write_nm1(body, entity, member.name, "MI" if member.member_id else None, member.member_id)


def write_demographics(body: TransactionWriter, member: Member) -> None:
    if member.birth_date is not None:
        body.segment("DMG", "D8", d8(member.birth_date), member.sex)


def member_of(segment: Segment) -> dict[str, Any]:
    name = {
        "last": segment[3],
        "first": segment[4] or None,
        "middle": segment[5] or None,
        "suffix": segment[7] or None,
    }
    return {"name": name, "member_id": segment[9] or None}


def demographics_into(member: dict[str, Any], segment: Segment) -> None:
    member["birth_date"] = date8(segment, 2)
    member["sex"] = sex_code(segment[3], segment, 3) if segment[3] else None


def provider_of(segment: Segment) -> dict[str, Any]:
    organization = segment[2] == "2"
    return {
        "npi": segment[9],
        "last": segment[3],
        "first": None if organization else segment[4] or None,
        "middle": None if organization else segment[5] or None,
        "organization": organization,
    }


def require_guide(transaction: Transaction, guides: tuple[str, ...]) -> None:
    if transaction.header.implementation not in guides:
        raise X12Error(
            f"only the {' or '.join(guides)} guide is read",
            segment_id="ST",
            element=3,
            position=transaction.st.index,
        )


def dates_of(segment: Segment) -> tuple[date, date]:
    return period(segment, 2, 3)


class TreeCheck:
    """The HL tree of a 270/271/276 (numbers in order, parents on the level above), the NPI check digit of
    NM1s under XX, and per level the NM1 entity codes it must name."""

    def __init__(
        self,
        parents: dict[str, str | None],
        needs: dict[str, tuple[str, ...]],
        patient_needs: tuple[str, ...] = (),
    ) -> None:
        self.parents = parents
        self.needs = needs
        self.patient_needs = patient_needs  # what the patient's level (no child HL: HL04 = 0) must hold
        self.levels: dict[str, str] = {}
        self.last = 0
        self.current: Segment | None = None
        self.seen: set[str] = set()
        self.found: set[str] = set()  # segment ids seen anywhere

    def segment(self, segment: Segment) -> Iterator[Finding]:
        self.found.add(segment.id)
        if segment.id == "HL":
            yield from self.close()
            number, parent, level = segment[1], segment[2], segment[3]
            if not number.isdigit() or int(number) != self.last + 1:
                yield Finding("HL", segment.index, 1, "HL01 does not follow the previous HL's number")
            self.last = int(number) if number.isdigit() else self.last + 1
            if level not in self.parents:
                yield Finding("HL", segment.index, 3, "unexpected hierarchical level code")
            elif self.parents[level] is None and parent:
                yield Finding("HL", segment.index, 2, "the top level has no parent")
            elif self.parents[level] is not None and self.levels.get(parent) != self.parents[level]:
                yield Finding("HL", segment.index, 2, "HL02 does not name a parent of the level above")
            self.levels[number] = level
            self.current, self.seen = segment, set()
        elif segment.id == "NM1":
            self.seen.add(segment[1])
            if segment[8] == "XX" and not npi_check_digit_valid(segment[9]):
                yield Finding("NM1", segment.index, 9, "NPI fails its check digit")
        else:
            self.seen.add(segment.id)

    def close(self) -> Iterator[Finding]:
        if self.current is None:
            return
        needs = self.needs.get(self.current[3], ())
        if self.current[4] == "0" and self.current[3] in ("22", "23"):
            needs += self.patient_needs
        for needed in needs:
            if needed not in self.seen:
                yield Finding("HL", self.current.index, None, f"the loop has no {needed}")

    def end(self, transaction: Transaction) -> Iterator[Finding]:
        yield from self.close()
        if "BHT" not in self.found:
            yield Finding("ST", transaction.st.index, None, "the transaction set has no BHT")
        if not self.levels:
            yield Finding("ST", transaction.st.index, None, "the transaction set has no HL loops")


# --- 270


def write_270(request: EligibilityRequest) -> str:
    if not request.inquiries:
        raise X12Error("an eligibility request needs at least one inquiry", segment_id="HL")
    transaction = SingleTransaction(
        request.envelope,
        functional_id="HS",
        transaction_set="270",
        guide=GUIDE,
        structure="0022",
        purpose="13",
        reference=request.reference,
    )
    with transaction as body:
        hl = Hierarchy(body)
        source = write_source(body, hl, request.source)
        receiver = hl.open(source, "21", True)
        write_provider(body, "1P", request.receiver)
        for inquiry in request.inquiries:
            if not inquiry.service_types:
                raise X12Error("an inquiry needs at least one service type", segment_id="EQ")
            dependent = inquiry.dependent
            subscriber = hl.open(receiver, "22", dependent is not None)
            if dependent is None:
                body.segment("TRN", "1", inquiry.trace_number, request.trace_originator)
            write_member(body, "IL", inquiry.subscriber)
            if dependent is None:
                _patient(body, inquiry, inquiry.subscriber)
            else:
                write_demographics(body, inquiry.subscriber)
                hl.open(subscriber, "23", False)
                body.segment("TRN", "1", inquiry.trace_number, request.trace_originator)
                write_member(body, "03", dependent)
                _patient(body, inquiry, dependent)
    return transaction.text


def _patient(body: TransactionWriter, inquiry: Inquiry, patient: Member) -> None:
    write_demographics(body, patient)
    if inquiry.service_date is not None:
        body.segment("DTP", "291", "D8", d8(inquiry.service_date))
    for service_type in inquiry.service_types:
        body.segment("EQ", service_type)


class Request270(msgspec.Struct, frozen=True, kw_only=True):
    """A 270 as read: what ``EligibilityRequest`` holds but the envelope."""

    reference: str
    trace_originator: str
    source: Source
    receiver: Provider
    inquiries: tuple[Inquiry, ...]


def read_270(transaction: Transaction) -> Request270:
    require_guide(transaction, (GUIDE,))
    data: dict[str, Any] = {"inquiries": [], "trace_originator": ""}
    inquiry: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    for segment in transaction:
        sid = segment.id
        if sid == "BHT":
            data["reference"] = segment[3]
        elif sid == "HL":
            member = None
            if segment[3] == "22":
                inquiry = {"service_types": []}
                data["inquiries"].append(inquiry)
        elif sid == "TRN" and inquiry is not None:
            inquiry["trace_number"] = segment[2]
            data["trace_originator"] = segment[3]
        elif sid == "NM1":
            entity = segment[1]
            if entity == "PR":
                data["source"] = {"name": segment[3], "payer_id": segment[9]}
            elif entity == "1P":
                data["receiver"] = provider_of(segment)
            elif entity in ("IL", "03") and inquiry is not None:
                member = member_of(segment)
                inquiry["subscriber" if entity == "IL" else "dependent"] = member
        elif sid == "DMG" and member is not None:
            demographics_into(member, segment)
        elif sid == "DTP" and segment[1] == "291" and inquiry is not None:
            inquiry["service_date"] = dates_of(segment)[0]
        elif sid == "EQ" and inquiry is not None:
            inquiry["service_types"].append(segment[1])
    return convert(data, Request270, transaction)


def read_270_request(transaction: Transaction, envelope: Envelope) -> EligibilityRequest:
    read = read_270(transaction)
    return EligibilityRequest(envelope=envelope, **msgspec.structs.asdict(read))


def check_270(transaction: Transaction) -> Iterator[Finding]:
    tree = TreeCheck(
        {"20": None, "21": "20", "22": "21", "23": "22"},
        {"20": ("PR",), "21": ("1P",), "22": ("IL",), "23": ("03",)},
        ("TRN", "EQ"),
    )
    for segment in transaction:
        yield from tree.segment(segment)
    yield from tree.end(transaction)
