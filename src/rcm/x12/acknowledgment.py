"""The 999 implementation acknowledgment (005010X231A1): reading what a clearinghouse says of our files, and
writing what we (or the sandbox payer) say of a received one.

A 999 answers one functional group (AK1): per transaction set an AK2, the segment errors found in it (IK3,
loop 2100) with their element errors (IK4, loop 2110), and its verdict (IK5: A accepted, E accepted with
errors, R rejected); AK9 gives the group's verdict and counts. IK404, the copy of the bad element, is
neither read nor written: it can be PHI, and the position and the error code say what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import BinaryIO

import msgspec

from rcm.x12.document import Finding
from rcm.x12.envelope import GroupHeader, Transaction, transactions
from rcm.x12.errors import X12Error
from rcm.x12.segments import Segment
from rcm.x12.values import required
from rcm.x12.writer import Party, TransactionWriter, single_group_interchange

IMPLEMENTATION = "005010X231A1"
ACCEPTED, ACCEPTED_WITH_ERRORS, REJECTED = "A", "E", "R"
PARTIALLY_ACCEPTED = "P"
_SET_STATUSES = frozenset({"A", "E", "M", "R", "W", "X"})
_GROUP_STATUSES = frozenset({"A", "E", "M", "P", "R", "W", "X"})
# IK304 segment syntax errors and IK403 element syntax errors, as X231A1 lists them.
SEGMENT_ERRORS = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"})
ELEMENT_ERRORS = frozenset(
    {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13", "I10", "I11", "I12", "I13", "I6", "I9"}
)


class ElementError(msgspec.Struct, frozen=True, kw_only=True):
    """IK4: which element (position, component, repetition), its dictionary number, the error code."""

    position: int  # IK401-1
    component: int | None = None  # IK401-2
    repetition: int | None = None  # IK401-3
    reference: str | None = None  # IK402: data element reference number
    code: str  # IK403


class SegmentError(msgspec.Struct, frozen=True, kw_only=True):
    """IK3: the segment id, its position in the transaction set (ST is 1), its loop, the error code."""

    segment_id: str  # IK301
    position: int  # IK302
    loop: str | None = None  # IK303: the loop id without its letter (2010, 2300), at most 4 characters
    code: str | None = None  # IK304: 8 when only element errors follow
    elements: tuple[ElementError, ...] = ()


class SetResponse(msgspec.Struct, frozen=True, kw_only=True):
    """AK2 ... IK5: one acknowledged transaction set."""

    transaction_set: str  # AK201
    control_number: str  # AK202
    implementation: str | None = None  # AK203
    status: str  # IK501
    codes: tuple[str, ...] = ()  # IK502-06: syntax error codes of the set
    segment_errors: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in (ACCEPTED, ACCEPTED_WITH_ERRORS)


class GroupResponse(msgspec.Struct, frozen=True, kw_only=True):
    """AK1 ... AK9: the acknowledged functional group."""

    functional_id: str  # AK101
    control_number: str  # AK102
    version: str | None = None  # AK103
    status: str  # AK901
    included: int  # AK902: transaction sets the group declared
    received: int  # AK903
    accepted: int  # AK904
    codes: tuple[str, ...] = ()  # AK905-09: functional group syntax error codes
    sets: tuple[SetResponse, ...] = ()


def set_response(
    transaction_set: str,
    control_number: str,
    implementation: str | None,
    segment_errors: Sequence[SegmentError] = (),
    *,
    reject: bool = True,
    unlocated: int = 0,
) -> SetResponse:
    """A set's verdict from its errors: accepted without any, rejected (or accepted with errors) with some.

    ``unlocated`` counts errors found without a segment position to report (IK3 needs one): they reject the
    set all the same, with IK5's code and no IK3.
    """
    if not segment_errors and not unlocated:
        return SetResponse(
            transaction_set=transaction_set,
            control_number=control_number,
            implementation=implementation,
            status=ACCEPTED,
        )
    return SetResponse(
        transaction_set=transaction_set,
        control_number=control_number,
        implementation=implementation,
        status=REJECTED if reject else ACCEPTED_WITH_ERRORS,
        codes=("5",),  # IK502 5: one or more segments in error
        segment_errors=tuple(segment_errors),
    )


def group_response(group: GroupHeader, sets: Sequence[SetResponse]) -> GroupResponse:
    """AK9 computed from the sets' verdicts: all accepted, some (P), none (R), accepted with errors (E)."""
    accepted = sum(1 for response in sets if response.accepted)
    if accepted == 0 and sets:
        status = REJECTED
    elif accepted < len(sets):
        status = PARTIALLY_ACCEPTED
    elif any(response.status == ACCEPTED_WITH_ERRORS for response in sets):
        status = ACCEPTED_WITH_ERRORS
    else:
        status = ACCEPTED
    return GroupResponse(
        functional_id=group.functional_id,
        control_number=group.control_number,
        version=group.version or None,
        status=status,
        included=len(sets),
        received=len(sets),
        accepted=accepted,
        sets=tuple(sets),
    )


def segment_errors_from(findings: Iterable[Finding], st_position: int) -> list[SegmentError]:
    """Our validators' findings as IK3/IK4 errors: positions made relative to the set's ST (ST is 1)."""
    errors: list[SegmentError] = []
    for finding in findings:
        if finding.segment_id is None or finding.position is None:
            continue
        elements: tuple[ElementError, ...] = ()
        if finding.element is not None:
            elements = (ElementError(position=finding.element, code="I12"),)  # implementation pattern
        errors.append(
            SegmentError(
                segment_id=finding.segment_id,
                position=finding.position - st_position + 1,
                code="8" if elements else "I6",
                elements=elements,
            )
        )
    return errors


def acknowledge(
    source: bytes | str | BinaryIO, *, encoding: str = "utf-8", reject: bool = True
) -> list[GroupResponse]:
    """The 999 answer to a received file: one ``GroupResponse`` per functional group, each transaction set
    checked by its kind's guide rules (``rcm.x12.kinds``) and its findings reported as IK3/IK4 errors. A set
    with findings is rejected (``reject=False``: accepted with errors). A broken envelope (a set without SE,
    a group without GE) raises ``X12Error``: nothing in it can be acknowledged set by set.
    """
    from rcm.x12 import kinds

    responses: list[GroupResponse] = []
    group: GroupHeader | None = None
    sets: list[SetResponse] = []
    for transaction in transactions(source, encoding=encoding):
        if transaction.group is not group:
            if group is not None:
                responses.append(group_response(group, sets))
            group, sets = transaction.group, []
        findings: list[Finding] = []
        check = kinds.VALIDATORS.get(transaction.kind)
        if check is not None:
            try:
                findings.extend(check(transaction))
            except X12Error as exc:
                findings.append(Finding(exc.segment_id, exc.position, exc.element, exc.message))
                try:
                    transaction.drain()  # the rest of the set, through SE, so the next set can be read
                except RuntimeError:
                    raise exc from None  # no SE: the envelope itself is broken
        errors = segment_errors_from(findings, transaction.st.index)
        header = transaction.header
        sets.append(
            set_response(
                header.transaction_set,
                header.control_number,
                header.implementation,
                errors,
                reject=reject,
                unlocated=len(findings) - len(errors),
            )
        )
    if group is not None:
        responses.append(group_response(group, sets))
    return responses


# -- writing


def write_acknowledgment(body: TransactionWriter, response: GroupResponse) -> None:
    """The body of one 999 transaction set (AK1 ... AK9) into ``body``."""
    body.segment("AK1", response.functional_id, response.control_number, response.version)
    for acknowledged in response.sets:
        body.segment(
            "AK2", acknowledged.transaction_set, acknowledged.control_number, acknowledged.implementation
        )
        for error in acknowledged.segment_errors:
            body.segment("IK3", error.segment_id, error.position, error.loop, error.code)
            for element in error.elements:
                body.segment(
                    "IK4",
                    (element.position, element.component, element.repetition),
                    element.reference,
                    element.code,
                )
        body.segment("IK5", acknowledged.status, *acknowledged.codes)
    body.segment(
        "AK9", response.status, response.included, response.received, response.accepted, *response.codes
    )


def acknowledgment_interchange(
    responses: Iterable[GroupResponse],
    *,
    sender: Party,
    receiver: Party,
    control_number: int,
    when: datetime,
    usage: str = "P",
) -> str:
    """An interchange of one FA functional group holding one 999 per acknowledged group."""
    return single_group_interchange(
        responses,
        write_acknowledgment,
        functional_id="FA",
        transaction_set="999",
        implementation=IMPLEMENTATION,
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        when=when,
        usage=usage,
    )


# -- reading
def _integer(segment: Segment, position: int, *, required: bool = True) -> int | None:
    raw = segment[position]
    if not raw:
        if required:
            raise X12Error(
                "element is required",
                segment_id=segment.id,
                element=position,
                position=segment.index,
                offset=segment.offset,
            )
        return None
    if not raw.isdigit():
        raise X12Error(
            "not a whole number",
            segment_id=segment.id,
            element=position,
            position=segment.index,
            offset=segment.offset,
        )
    return int(raw)


def _count(segment: Segment, position: int) -> int:
    value = _integer(segment, position)
    assert value is not None
    return value


def _codes(segment: Segment, start: int, end: int) -> tuple[str, ...]:
    return tuple(segment[p] for p in range(start, end + 1) if segment[p])


class _SetBuilder:
    def __init__(self, ak2: Segment) -> None:
        self.ak2 = ak2
        self.errors: list[SegmentError] = []
        self.ik3: Segment | None = None
        self.elements: list[ElementError] = []

    def close_segment(self) -> None:
        if self.ik3 is not None:
            ik3 = self.ik3
            self.errors.append(
                SegmentError(
                    segment_id=required(ik3, 1),
                    position=_count(ik3, 2),
                    loop=ik3[3] or None,
                    code=ik3[4] or None,
                    elements=tuple(self.elements),
                )
            )
        self.ik3, self.elements = None, []


def _element_error(ik4: Segment, component_separator: str) -> ElementError:
    parts = required(ik4, 1).split(component_separator)
    numbers: list[int | None] = []
    for part in [*parts, "", ""][:3]:
        if part and not part.isdigit():
            raise X12Error(
                "element position is not a number",
                segment_id="IK4",
                element=1,
                position=ik4.index,
                offset=ik4.offset,
            )
        numbers.append(int(part) if part else None)
    position = numbers[0]
    if position is None:
        raise X12Error("element position is required", segment_id="IK4", element=1, position=ik4.index)
    return ElementError(
        position=position,
        component=numbers[1],
        repetition=numbers[2],
        reference=ik4[2] or None,
        code=required(ik4, 3),
    )


def read(transaction: Transaction) -> GroupResponse:
    """One 999 as the group it acknowledges, with each transaction set's verdict and errors."""
    component = transaction.delimiters.component
    ak1: Segment | None = None
    sets: list[SetResponse] = []
    current: _SetBuilder | None = None
    ak9: Segment | None = None
    for segment in transaction:
        segment_id = segment.id
        if segment_id == "AK1":
            ak1 = segment
        elif segment_id == "AK2":
            current = _SetBuilder(segment)
        elif segment_id == "IK3" and current is not None:
            current.close_segment()
            current.ik3 = segment
        elif segment_id == "IK4" and current is not None and current.ik3 is not None:
            current.elements.append(_element_error(segment, component))
        elif segment_id == "IK5" and current is not None:
            current.close_segment()
            ak2 = current.ak2
            sets.append(
                SetResponse(
                    transaction_set=required(ak2, 1),
                    control_number=required(ak2, 2),
                    implementation=ak2[3] or None,
                    status=required(segment, 1),
                    codes=_codes(segment, 2, 6),
                    segment_errors=tuple(current.errors),
                )
            )
            current = None
        elif segment_id == "AK9":
            ak9 = segment
        elif segment_id != "CTX":  # CTX (context of an error) adds nothing the positions do not say
            raise X12Error(
                "segment not expected here in a 999",
                segment_id=segment_id,
                position=segment.index,
                offset=segment.offset,
            )
    if ak1 is None or ak9 is None:
        raise X12Error("a 999 needs AK1 and AK9", segment_id="AK1" if ak1 is None else "AK9")
    if current is not None:
        raise X12Error("AK2 without IK5", segment_id="AK2", position=current.ak2.index)
    return GroupResponse(
        functional_id=required(ak1, 1),
        control_number=required(ak1, 2),
        version=ak1[3] or None,
        status=required(ak9, 1),
        included=_count(ak9, 2),
        received=_count(ak9, 3),
        accepted=_count(ak9, 4),
        codes=_codes(ak9, 5, 9),
        sets=tuple(sets),
    )


def check(transaction: Transaction) -> Iterator[Finding]:
    """The 999's rules: code values, and AK9's counts against the sets it acknowledges."""
    response = read(transaction)
    if response.status not in _GROUP_STATUSES:
        yield Finding("AK9", None, 1, "functional group acknowledge code not in the guide")
    if response.received != len(response.sets):
        yield Finding("AK9", None, 3, "received count is not the number of AK2 acknowledged")
    if response.accepted != sum(1 for item in response.sets if item.accepted):
        yield Finding("AK9", None, 4, "accepted count is not the number of sets accepted")
    for item in response.sets:
        if item.status not in _SET_STATUSES:
            yield Finding("IK5", None, 1, "transaction set acknowledgment code not in the guide")
        for error in item.segment_errors:
            if error.code is not None and error.code not in SEGMENT_ERRORS:
                yield Finding("IK3", None, 4, "segment syntax error code not in the guide")
            for element in error.elements:
                if element.code not in ELEMENT_ERRORS:
                    yield Finding("IK4", None, 3, "element syntax error code not in the guide")
