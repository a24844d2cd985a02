"""What the 277CA (005010X214) and the 277 (005010X212) share: the HL hierarchy, STC statuses, the claim
status tracking loop (TRN, STC, REF, DTP) and its service lines (SVC, STC, REF*FJ, DTP).

Both are a tree of HL levels (20 information source, 21 receiver, 19 provider, then PT patient in the 277CA
or 22 subscriber and 23 dependent in the 277). ``hierarchy()`` reads the levels with their segments and
children; each transaction module maps the tree onto its typed result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import msgspec

from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.remittance_model import Person, Reference
from rcm.x12.segments import Segment
from rcm.x12.values import cents, date8, period, quantity, required
from rcm.x12.writer import Element, TransactionWriter, amount, text


class StatusCode(msgspec.Struct, frozen=True, kw_only=True):
    """C043 (STC01, STC10, STC11): claim status category (A1, A2, A3, A7, F1...), status code, entity."""

    category: str
    code: str
    entity: str | None = None


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """One STC: its codes, when, the action (U reject, WQ accept), amounts, payment and free text."""

    codes: tuple[StatusCode, ...]
    effective: date | None = None  # STC02
    action: str | None = None  # STC03
    charge: int | None = None  # STC04: total claim charge (line charge on a line)
    paid: int | None = None  # STC05 (277 only)
    adjudicated: date | None = None  # STC06 (277 only)
    check_date: date | None = None  # STC08 (277 only)
    check_number: str | None = None  # STC09 (277 only)
    message: str | None = None  # STC12 free-form text (277CA only)


class LineStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2220: SVC, its statuses, the line item control number (REF*FJ), the service dates."""

    qualifier: str
    code: str
    modifiers: tuple[str, ...] = ()
    charge: int  # SVC02
    paid: int | None = None  # SVC03 (277)
    revenue_code: str | None = None  # SVC04
    units: str | None = None  # SVC07
    statuses: tuple[Status, ...] = ()
    control_number: str | None = None  # REF*FJ
    service_start: date | None = None
    service_end: date | None = None


class ClaimStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2200D/E: one claim's status. ``tracking_number`` (TRN02) is the patient control number (CLM01)
    in a 277CA, the 276 inquiry's trace in a 277."""

    tracking_number: str
    statuses: tuple[Status, ...]
    payer_claim_control_number: str | None = None  # REF*1K
    references: tuple[Reference, ...] = ()  # the other REFs: D9, BLT, EJ (patient account), VV...
    service_start: date | None = None  # DTP*472
    service_end: date | None = None
    lines: tuple[LineStatus, ...] = ()

    @property
    def accepted(self) -> bool:
        """A 277CA's verdict: categories A1/A2 (received, accepted into adjudication), not A3-A8."""
        return all(code.category in ("A0", "A1", "A2", "A5") for s in self.statuses for code in s.codes)


@dataclass
class Level:
    """One HL: its level code (HL03), its segments after HL, its children."""

    code: str
    hl: Segment
    segments: list[Segment] = field(default_factory=list)
    children: list[Level] = field(default_factory=list)


def hierarchy(transaction: Transaction, bht_purpose: str) -> tuple[Segment, list[Level]]:
    """BHT and the HL tree's roots; an HL whose parent is not an earlier HL is refused."""
    segments = iter(transaction)
    bht = next(segments, None)
    if bht is None or bht.id != "BHT":
        raise X12Error("the transaction set starts with BHT", segment_id=bht.id if bht else "SE")
    if bht[1] != bht_purpose:
        raise X12Error(
            "BHT01 is not this transaction's hierarchical structure code", segment_id="BHT", element=1
        )
    levels: dict[str, Level] = {}
    roots: list[Level] = []
    current: Level | None = None
    for segment in segments:
        if segment.id == "HL":
            level = Level(code=required(segment, 3), hl=segment)
            identifier, parent = required(segment, 1), segment[2]
            if identifier in levels:
                raise _error(segment, 1, "HL id repeats an earlier one")
            if parent:
                if parent not in levels:
                    raise _error(segment, 2, "HL parent is not an earlier HL")
                levels[parent].children.append(level)
            else:
                roots.append(level)
            levels[identifier] = level
            current = level
        elif current is None:
            raise X12Error("segment before the first HL", segment_id=segment.id, position=segment.index)
        else:
            current.segments.append(segment)
    return bht, roots


def _error(segment: Segment, position: int, message: str) -> X12Error:
    return X12Error(
        message, segment_id=segment.id, element=position, position=segment.index, offset=segment.offset
    )


def optional(value: str) -> str | None:
    return value or None


def children(level: Level, code: str) -> Iterator[Level]:
    for child in level.children:
        if child.code != code:
            raise X12Error(
                "HL level code not expected under its parent",
                segment_id="HL",
                element=3,
                position=child.hl.index,
            )
        yield child


def person(level: Level, qualifier: str) -> Person:
    for segment in level.segments:
        if segment.id == "NM1" and segment[1] == qualifier:
            return Person(
                entity_type=required(segment, 2),
                last=optional(segment[3]),
                first=optional(segment[4]),
                middle=optional(segment[5]),
                suffix=optional(segment[7]),
                identifier_qualifier=optional(segment[8]),
                identifier=optional(segment[9]),
            )
    raise X12Error("the level has no NM1 name", segment_id="HL", position=level.hl.index)


def first(level: Level, segment_id: str, qualifier: str | None = None) -> Segment | None:
    for segment in level.segments:
        if segment.id == segment_id and (qualifier is None or segment[1] == qualifier):
            return segment
    return None


def status(segment: Segment, component: str) -> Status:
    codes = []
    for position in (1, 10, 11):
        if not segment[position]:
            continue
        parts = segment[position].split(component)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise _error(segment, position, "status needs a category and a status code")
        codes.append(
            StatusCode(category=parts[0], code=parts[1], entity=optional(parts[2] if len(parts) > 2 else ""))
        )
    if not codes:
        raise _error(segment, 1, "element is required")
    return Status(
        codes=tuple(codes),
        effective=date8(segment, 2, required=False),
        action=optional(segment[3]),
        charge=cents(segment, 4, required=False),
        paid=cents(segment, 5, required=False),
        adjudicated=date8(segment, 6, required=False),
        check_date=date8(segment, 8, required=False),
        check_number=optional(segment[9]),
        message=optional(segment[12]),
    )


def statuses(level: Level, component: str) -> tuple[Status, ...]:
    return tuple(status(segment, component) for segment in level.segments if segment.id == "STC")


def claims(segments: Sequence[Segment], component: str) -> tuple[ClaimStatus, ...]:
    """The claim status tracking loops (TRN*2 ...) among a level's segments, with their service lines."""
    found: list[ClaimStatus] = []
    index = 0
    while index < len(segments):
        trn = segments[index]
        index += 1
        if trn.id != "TRN" or trn[1] != "2":
            continue
        loop: list[Segment] = []
        while index < len(segments) and segments[index].id != "TRN":
            loop.append(segments[index])
            index += 1
        found.append(_claim(trn, loop, component))
    return tuple(found)


def _claim(trn: Segment, loop: list[Segment], component: str) -> ClaimStatus:
    found: list[Status] = []
    references: list[Reference] = []
    icn = None
    start = end = None
    lines: list[LineStatus] = []
    line_segments: list[Segment] = []
    for segment in loop:
        if segment.id == "SVC" or line_segments:
            line_segments.append(segment)
            continue
        if segment.id == "STC":
            found.append(status(segment, component))
        elif segment.id == "REF":
            if segment[1] == "1K":
                icn = required(segment, 2)
            else:
                references.append(Reference(required(segment, 1), required(segment, 2)))
        elif segment.id == "DTP" and segment[1] == "472":
            start, end = period(segment, 2, 3)
    current: list[Segment] = []
    for segment in line_segments:
        if segment.id == "SVC" and current:
            lines.append(_line(current, component))
            current = []
        current.append(segment)
    if current:
        lines.append(_line(current, component))
    return ClaimStatus(
        tracking_number=required(trn, 2),
        statuses=tuple(found),
        payer_claim_control_number=icn,
        references=tuple(references),
        service_start=start,
        service_end=end,
        lines=tuple(lines),
    )


def _line(segments: list[Segment], component: str) -> LineStatus:
    svc = segments[0]
    procedure = required(svc, 1).split(component)
    if len(procedure) < 2 or not procedure[1]:
        raise _error(svc, 1, "the procedure has no code")
    found: list[Status] = []
    control = None
    start = end = None
    for segment in segments[1:]:
        if segment.id == "STC":
            found.append(status(segment, component))
        elif segment.id == "REF" and segment[1] == "FJ":
            control = required(segment, 2)
        elif segment.id == "DTP" and segment[1] == "472":
            start, end = period(segment, 2, 3)
    charge = cents(svc, 2)
    assert charge is not None
    return LineStatus(
        qualifier=procedure[0],
        code=procedure[1],
        modifiers=tuple(m for m in procedure[2:6] if m),
        charge=charge,
        paid=cents(svc, 3, required=False),
        revenue_code=optional(svc[4]),
        units=quantity(svc, 7),
        statuses=tuple(found),
        control_number=control,
        service_start=start,
        service_end=end,
    )


# -- writing
class Hierarchy:
    """HL numbering while writing: each ``level()`` writes HL with its parent and whether children follow."""

    def __init__(self, body: TransactionWriter) -> None:
        self.body = body
        self.count = 0

    def level(self, parent: int | None, code: str, has_children: bool | None) -> int:
        self.count += 1
        child_code = None if has_children is None else ("1" if has_children else "0")
        self.body.segment("HL", self.count, parent, code, child_code)
        return self.count


def d8(value: date) -> str:
    return value.strftime("%Y%m%d")


def _money(value: int | None) -> str | None:
    return None if value is None else amount(value)


def write_status(body: TransactionWriter, found: Status) -> None:
    codes = [(c.category, c.code, c.entity) for c in found.codes]
    body.segment(
        "STC",
        codes[0],
        None if found.effective is None else d8(found.effective),
        found.action,
        _money(found.charge),
        _money(found.paid),
        None if found.adjudicated is None else d8(found.adjudicated),
        None,
        None if found.check_date is None else d8(found.check_date),
        found.check_number,
        codes[1] if len(codes) > 1 else None,
        codes[2] if len(codes) > 2 else None,
        text(found.message, body.delimiters),
    )


def _write_period(body: TransactionWriter, start: date | None, end: date | None) -> None:
    if start is None:
        return
    if end is None or end == start:
        body.segment("DTP", "472", "D8", d8(start))
    else:
        body.segment("DTP", "472", "RD8", f"{d8(start)}-{d8(end)}")


def write_claim(body: TransactionWriter, claim: ClaimStatus) -> None:
    body.segment("TRN", "2", claim.tracking_number)
    for found in claim.statuses:
        write_status(body, found)
    if claim.payer_claim_control_number:
        body.segment("REF", "1K", claim.payer_claim_control_number)
    for reference in claim.references:
        body.segment("REF", reference.qualifier, reference.value)
    _write_period(body, claim.service_start, claim.service_end)
    for line in claim.lines:
        procedure: Element = (line.qualifier, line.code, *line.modifiers)
        body.segment(
            "SVC",
            procedure,
            amount(line.charge),
            _money(line.paid),
            line.revenue_code,
            None,
            None,
            line.units,
        )
        for found in line.statuses:
            write_status(body, found)
        if line.control_number:
            body.segment("REF", "FJ", line.control_number)
        _write_period(body, line.service_start, line.service_end)
