"""Interchange (ISA/IEA), functional group (GS/GE) and transaction set (ST/SE) envelopes, read as a stream.

``transactions()`` yields one ``Transaction`` per ST; iterating a transaction yields its body segments
(between ST and SE), so a transaction reader never holds a whole 835 in memory. Control numbers and counts are
checked as the closing segments go by (SE01 segments, GE01 transaction sets, IEA01 groups, and each trailer's
control number against its header's); a file that breaks them raises ``X12Error`` naming the segment and
position. Whoever posts what a file says must therefore read it through to the end before committing
anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from rcm.x12.errors import X12Error
from rcm.x12.segments import Delimiters, Segment, SegmentReader

# Implementation guides (ST03, else GS08) and the transaction each names. GS08 and ST03 disagree in real
# files: ST03 is the more specific, so it wins.
GUIDES = {
    "005010X222A1": "837P",
    "005010X222": "837P",
    "005010X223A2": "837I",
    "005010X223A1": "837I",
    "005010X223": "837I",
    "005010X221A1": "835",
    "005010X221": "835",
    "005010X231A1": "999",
    "005010X231": "999",
    "005010X214": "277CA",
    "005010X212": "277",
    "005010X279A1": "270/271",
    "005010X279": "270/271",
}


@dataclass(frozen=True, slots=True)
class InterchangeHeader:
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str  # YYMMDD (ISA09)
    time: str  # HHMM (ISA10)
    version: str  # ISA12
    control_number: str  # ISA13
    acknowledgment_requested: str  # ISA14
    usage: str  # ISA15: P production, T test
    delimiters: Delimiters


@dataclass(frozen=True, slots=True)
class GroupHeader:
    functional_id: str  # GS01: HC claims, HP remittance, FA acknowledgments, HN status, HB/HS eligibility
    sender: str
    receiver: str
    date: str  # CCYYMMDD
    time: str
    control_number: str  # GS06
    version: str  # GS08


@dataclass(frozen=True, slots=True)
class TransactionHeader:
    transaction_set: str  # ST01: 837, 835, 999, 277, 271...
    control_number: str  # ST02
    implementation: str  # ST03, else the group's GS08


def transaction_kind(header: TransactionHeader) -> str:
    """837P, 837I, 835, 999, 277CA, 277, 270, 271, 276... from ST01 and the implementation guide."""
    guide = GUIDES.get(header.implementation)
    if guide == "270/271" or header.transaction_set in ("270", "271", "276"):
        return header.transaction_set
    if guide is not None:
        if guide.startswith(header.transaction_set):
            return guide
        return header.transaction_set
    if header.transaction_set == "837":
        return "837I" if "X223" in header.implementation else "837P"
    return header.transaction_set


class Transaction:
    """One transaction set; iterate it once for its body segments (ST and SE excluded)."""

    def __init__(
        self,
        source: _Stream,
        interchange: InterchangeHeader,
        group: GroupHeader,
        header: TransactionHeader,
        st: Segment,
    ) -> None:
        self._source = source
        self.interchange = interchange
        self.group = group
        self.header = header
        self.kind = transaction_kind(header)
        self.st = st
        self.se: Segment | None = None
        self._started = False
        self._body: Iterator[Segment] | None = None

    @property
    def delimiters(self) -> Delimiters:
        return self.interchange.delimiters

    def __iter__(self) -> Iterator[Segment]:
        if self._started:
            raise RuntimeError("a transaction set is read once")
        self._started = True
        self._body = self._segments()
        return self._body

    def _segments(self) -> Iterator[Segment]:
        count = 1  # ST
        source = self._source
        # The underlying iterator, not the stream's Python-level __next__: the body of a transaction set is
        # most of a file. ``last`` is kept for the envelope walk's truncation report.
        for segment in source.segments:
            segment_id = segment.elements[0]
            if segment_id == "SE":
                source.last = segment
                count += 1
                self.se = segment
                _check_count(segment, 1, count, "segments in the transaction set")
                _check_control(segment, 2, self.header.control_number, "ST02")
                return
            if segment_id in _ENVELOPE:
                source.last = segment
                raise X12Error(
                    f"the transaction set opened at position {self.st.index} has no SE before {segment_id}",
                    segment_id=segment_id,
                    position=segment.index,
                    offset=segment.offset,
                )
            count += 1
            yield segment
        raise X12Error(
            "truncated: the transaction set has no SE",
            segment_id="ST",
            position=self.st.index,
            offset=self.st.offset,
        )

    def drain(self) -> None:
        """Reads what is left of the set through SE, still counting: a reader that stopped early (a bad
        amount in one claim) leaves the envelope walk able to go on to the next set."""
        if not self._started:
            for _ in self:
                pass
        elif self.se is None and self._body is not None:
            for _ in self._body:
                pass
        if self.se is None:
            raise RuntimeError("a transaction set was left half read")


_ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE", "ST"})


class _Stream:
    """The file's segments, shared by the envelope walk and the transaction being read."""

    def __init__(self, reader: SegmentReader) -> None:
        self.segments = iter(reader)
        self.last: Segment | None = None

    def __iter__(self) -> Iterator[Segment]:
        return self

    def __next__(self) -> Segment:
        segment = next(self.segments)
        self.last = segment
        return segment


def _check_count(segment: Segment, position: int, actual: int, what: str) -> None:
    declared = segment[position]
    if not declared.isdigit() or int(declared) != actual:
        # The declared count is quoted only when it is a number: anything else could be layout or text.
        shown = declared if declared.isdigit() else "no readable number of"
        raise X12Error(
            f"declares {shown} {what}; the file has {actual}",
            segment_id=segment.id,
            element=position,
            position=segment.index,
            offset=segment.offset,
        )


def _check_control(segment: Segment, position: int, expected: str, header: str) -> None:
    if segment[position].strip() != expected.strip():
        raise X12Error(
            f"control number does not match {header}",
            segment_id=segment.id,
            element=position,
            position=segment.index,
            offset=segment.offset,
        )


def _unexpected(segment: Segment, where: str) -> X12Error:
    return X12Error(
        f"unexpected {where}", segment_id=segment.id, position=segment.index, offset=segment.offset
    )


class _Walk:
    """The envelope state while a file is read: which interchange and group are open, what they have held."""

    def __init__(self, reader: SegmentReader) -> None:
        self.reader = reader
        self.stream = _Stream(reader)
        self.interchange: InterchangeHeader | None = None
        self.isa: Segment | None = None
        self.group: GroupHeader | None = None
        self.groups = 0
        self.sets = 0

    def open_interchange(self, segment: Segment) -> None:
        if self.interchange is not None:
            raise _unexpected(segment, "ISA: the previous interchange has no IEA")
        assert self.reader.delimiters is not None
        self.interchange = _interchange_header(segment, self.reader.delimiters)
        self.isa = segment
        self.groups = 0

    def open_group(self, segment: Segment) -> None:
        if self.group is not None:
            raise _unexpected(segment, "GS: the previous functional group has no GE")
        self.group = GroupHeader(
            functional_id=segment[1],
            sender=segment[2].strip(),
            receiver=segment[3].strip(),
            date=segment[4],
            time=segment[5],
            control_number=segment[6],
            version=segment[8],
        )
        self.groups += 1
        self.sets = 0

    def open_transaction(self, segment: Segment) -> Transaction:
        if self.group is None or self.interchange is None:
            raise _unexpected(segment, "ST outside a functional group (GS ... GE)")
        self.sets += 1
        header = TransactionHeader(
            transaction_set=segment[1],
            control_number=segment[2],
            implementation=segment[3] or self.group.version,
        )
        return Transaction(self.stream, self.interchange, self.group, header, segment)

    def close_group(self, segment: Segment) -> None:
        if self.group is None:
            raise _unexpected(segment, "GE without GS")
        _check_count(segment, 1, self.sets, "transaction sets in the group")
        _check_control(segment, 2, self.group.control_number, "GS06")
        self.group = None

    def close_interchange(self, segment: Segment) -> None:
        assert self.interchange is not None
        if self.group is not None:
            raise _unexpected(segment, "IEA: the functional group has no GE")
        _check_count(segment, 1, self.groups, "functional groups in the interchange")
        _check_control(segment, 2, self.interchange.control_number, "ISA13")
        self.interchange = None

    def end(self) -> None:
        if self.interchange is None:
            return
        last = self.stream.last or self.isa
        assert last is not None
        missing = "GE" if self.group is not None else "IEA"
        raise X12Error(
            f"truncated: the file ends without {missing}",
            segment_id=last.id,
            position=last.index,
            offset=last.offset,
        )


def transactions(source: bytes | str | BinaryIO, *, encoding: str = "utf-8") -> Iterator[Transaction]:
    """Every transaction set of the file, in order, with its interchange and group headers.

    The caller reads each transaction (or not) before asking for the next; what it leaves unread is skipped,
    still checked.
    """
    walk = _Walk(SegmentReader(source, encoding=encoding))
    for segment in walk.stream:
        segment_id = segment.elements[0]
        if segment_id == "ISA":
            walk.open_interchange(segment)
        elif walk.interchange is None:
            raise _unexpected(segment, "segment outside an interchange (ISA ... IEA)")
        elif segment_id == "GS":
            walk.open_group(segment)
        elif segment_id == "ST":
            transaction = walk.open_transaction(segment)
            yield transaction
            transaction.drain()
        elif segment_id == "GE":
            walk.close_group(segment)
        elif segment_id == "IEA":
            walk.close_interchange(segment)
        else:
            raise _unexpected(segment, "segment outside a transaction set (ST ... SE)")
    walk.end()


def _interchange_header(segment: Segment, delimiters: Delimiters) -> InterchangeHeader:
    if len(segment) != 16:
        raise X12Error(
            f"the interchange header has {len(segment)} elements, not 16",
            segment_id="ISA",
            position=segment.index,
            offset=segment.offset,
        )
    return InterchangeHeader(
        sender_qualifier=segment[5].strip(),
        sender_id=segment[6].strip(),
        receiver_qualifier=segment[7].strip(),
        receiver_id=segment[8].strip(),
        date=segment[9],
        time=segment[10],
        version=segment[12],
        control_number=segment[13].strip(),
        acknowledgment_requested=segment[14],
        usage=segment[15],
        delimiters=delimiters,
    )
