"""The 835's header, read first by ``RemittanceStream``: BPR, TRN, REF, DTM, loop 1000A (payer) and 1000B
(payee); and the element helpers the claim loops share. Split from ``remittance`` to keep each file short.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rcm.x12.document import Finding
from rcm.x12.errors import X12Error
from rcm.x12.remittance_model import (
    HANDLING_CODES,
    PAYMENT_METHODS,
    Account,
    Address,
    Contact,
    Funds,
    Header,
    Payee,
    Payer,
    Person,
)
from rcm.x12.segments import Segment
from rcm.x12.values import date8, required, required_cents


def optional(value: str) -> str | None:
    return value or None


def required_date(segment: Segment, position: int) -> date:
    value = date8(segment, position)
    assert value is not None
    return value


def finding(segment: Segment, message: str, element: int | None = None) -> Finding:
    return Finding(segment.id, segment.index, element, message)


def padded(segment: Segment, size: int) -> list[str]:
    """The segment's elements with empty ones added up to ``size`` (1-based positions index it directly)."""
    elements = segment.elements
    missing = size + 1 - len(elements)
    return elements + [""] * missing if missing > 0 else elements


def person(segment: Segment) -> Person:
    e = padded(segment, 9)
    return Person(
        entity_type=e[2] or "1",
        last=e[3] or None,
        first=e[4] or None,
        middle=e[5] or None,
        suffix=e[7] or None,
        identifier_qualifier=e[8] or None,
        identifier=e[9] or None,
    )


def account(segment: Segment, start: int) -> Account:
    return Account(
        dfi_qualifier=required(segment, start),
        dfi=required(segment, start + 1),
        account_qualifier=required(segment, start + 2),
        account=required(segment, start + 3),
    )


class HeaderReader:
    """The segment cursor and the header loops; ``RemittanceStream`` reads the claims on top of it."""

    def __init__(self, segments: Iterator[Segment]) -> None:
        self._segments = segments
        self._pending: Segment | None = None
        self._bpr_position: int | None = None
        self.findings: list[Finding] = []

    # -- segment cursor: one segment of look-ahead, so a loop ends at the segment that starts the next one
    def _next(self) -> Segment | None:
        if self._pending is not None:
            segment, self._pending = self._pending, None
            return segment
        return next(self._segments, None)

    def _push(self, segment: Segment) -> None:
        self._pending = segment

    # -- header: BPR, TRN, CUR, REF, DTM, loop 1000A (payer), loop 1000B (payee)
    def _read_header(self) -> Header:  # noqa: PLR0912 - one branch per header segment
        bpr = self._next()
        if bpr is None or bpr.id != "BPR":
            raise X12Error(
                "an 835 starts with BPR",
                segment_id=bpr.id if bpr else "SE",
                position=bpr.index if bpr else None,
            )
        self._bpr_position = bpr.index
        self._check_code(bpr, 1, HANDLING_CODES)
        self._check_code(bpr, 4, PAYMENT_METHODS)
        funds = None
        if bpr[5] or bpr[6]:
            funds = Funds(
                format=required(bpr, 5),
                sender=account(bpr, 6),
                originator_id=required(bpr, 10),
                originator_supplemental=optional(bpr[11]),
                receiver=account(bpr, 12),
            )
        trace_number = trace_originator = None
        receiver_id = None
        production = None
        payer: Payer | None = None
        payee: Payee | None = None
        while (segment := self._next()) is not None:
            segment_id = segment.id
            if segment_id == "TRN":
                trace_number, trace_originator = required(segment, 2), required(segment, 3)
            elif segment_id == "REF" and segment[1] == "EV":
                receiver_id = required(segment, 2)
            elif segment_id == "DTM" and segment[1] == "405":
                production = date8(segment, 2)
            elif segment_id == "N1" and segment[1] == "PR":
                payer = self._read_payer(segment)
            elif segment_id == "N1" and segment[1] == "PE":
                payee = self._read_payee(segment)
            elif segment_id in ("CUR", "REF", "DTM"):
                continue
            else:
                self._push(segment)
                break
        if trace_number is None or trace_originator is None:
            raise X12Error("the 835 has no TRN (reassociation trace number)", segment_id="TRN")
        if payer is None:
            raise X12Error("the 835 has no payer (loop 1000A, N1*PR)", segment_id="N1")
        if payee is None:
            raise X12Error("the 835 has no payee (loop 1000B, N1*PE)", segment_id="N1")
        return Header(
            handling=required(bpr, 1),
            total_paid=required_cents(bpr, 2),
            credit_debit=required(bpr, 3),
            payment_method=required(bpr, 4),
            funds=funds,
            payment_date=required_date(bpr, 16),
            trace_number=trace_number,
            trace_originator=trace_originator,
            receiver_id=receiver_id,
            production_date=production,
            payer=payer,
            payee=payee,
        )

    def _read_address(self, n3: Segment) -> Address:
        n4 = self._next()
        if n4 is None or n4.id != "N4":
            raise X12Error("N3 without N4", segment_id="N3", position=n3.index, offset=n3.offset)
        return Address(
            line1=required(n3, 1),
            line2=optional(n3[2]),
            city=required(n4, 1),
            state=optional(n4[2]),
            postal_code=optional(n4[3]),
        )

    def _read_payer(self, n1: Segment) -> Payer:
        address = contact = payer_id = None
        while (segment := self._next()) is not None:
            if segment.id == "N3":
                address = self._read_address(segment)
            elif segment.id == "REF":
                if segment[1] == "2U":
                    payer_id = required(segment, 2)
            elif segment.id == "PER":
                if segment[1] == "BL" and contact is None:
                    contact = Contact(function="BL", name=optional(segment[2]), phone=optional(segment[4]))
            else:
                self._push(segment)
                break
        if address is None:
            self.findings.append(finding(n1, "the payer loop (1000A) has no N3/N4 address"))
        if contact is None:
            self.findings.append(finding(n1, "the payer loop (1000A) has no PER*BL technical contact"))
        return Payer(
            name=required(n1, 2),
            identifier_qualifier=optional(n1[3]),
            identifier=optional(n1[4]),
            payer_id=payer_id,
            address=address,
            technical_contact=contact,
        )

    def _read_payee(self, n1: Segment) -> Payee:
        npi = n1[4] if n1[3] == "XX" else None
        tin = n1[4] if n1[3] == "FI" else None
        if not n1[4]:
            self.findings.append(finding(n1, "the payee has no identifier (N103/N104)", 4))
        address = None
        while (segment := self._next()) is not None:
            if segment.id == "N3":
                address = self._read_address(segment)
            elif segment.id == "REF":
                if segment[1] == "TJ" and tin is None:
                    tin = required(segment, 2)
            elif segment.id != "RDM":
                self._push(segment)
                break
        return Payee(name=required(n1, 2), npi=npi or None, tin=tin or None, address=address)

    def _check_code(self, segment: Segment, position: int, codes: frozenset[str]) -> None:
        if segment[position] not in codes:
            self.findings.append(finding(segment, "code value not in the implementation guide", position))
