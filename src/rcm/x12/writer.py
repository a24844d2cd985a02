"""Writing X12: segments, with the envelopes and their counts computed, never typed by hand.

X12 has no escape character: a value holding a delimiter would split its segment. Identifiers and codes that
contain one are refused (``X12Error`` naming the segment and element); free text (names, addresses, notes)
goes through ``text()``, which replaces delimiters and control characters with a space, as clearinghouses do.

Element values: ``str`` or ``int`` as written, ``None`` or ``""`` empty, a ``tuple`` a composite (joined by
the component separator), a ``list`` repeated values (joined by the repetition separator). Trailing empty
elements are dropped, as the guides require.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

from rcm.x12.errors import X12Error
from rcm.x12.segments import DEFAULT_DELIMITERS, Delimiters

Element = str | int | None | tuple[str | int | None, ...] | list[str]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s{2,}")


def text(value: str | None, delimiters: Delimiters = DEFAULT_DELIMITERS, *, max_length: int = 0) -> str:
    """Free text made safe to write: delimiters and control characters become spaces, runs of spaces one."""
    if not value:
        return ""
    cleaned = _CONTROL.sub(" ", value)
    for character in delimiters.characters():
        if character in cleaned:
            cleaned = cleaned.replace(character, " ")
    cleaned = _SPACES.sub(" ", cleaned).strip()
    return cleaned[:max_length].rstrip() if max_length else cleaned


def amount(cents: int) -> str:
    """Money as X12 writes it (R type): dollars; no trailing zeros after the point, none for whole dollars.

    The ledger is integer cents; this is the only place they become a decimal string.
    """
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    if rest == 0:
        return f"{sign}{dollars}"
    return f"{sign}{dollars}.{rest:02d}".rstrip("0")


def decimal(value: int | str) -> str:
    """A quantity (units, R type) as written; an int stays an int."""
    return str(value)


class SegmentSink:
    """Where segments go: a list of strings joined once, counted for the trailers."""

    def __init__(self, delimiters: Delimiters, *, line_breaks: bool) -> None:
        self.delimiters = delimiters
        self.parts: list[str] = []
        self._end = delimiters.segment + ("\n" if line_breaks else "")
        self._forbidden = delimiters.characters()
        # Delimiters (X12 has no escape) and control characters (line breaks and the like would corrupt the
        # file or a payer's parser) are refused in every value; free text is cleaned by text() beforehand.
        self._delimiter = re.compile("[" + re.escape(self._forbidden) + "\x00-\x1f\x7f]")

    def write(self, segment_id: str, elements: Sequence[Element]) -> None:
        delimiters = self.delimiters
        values: list[str] = []
        supplied: list[str] = []  # every caller-given text, checked for delimiters in one search
        for element in elements:
            if element is None:
                values.append("")
            elif isinstance(element, str):
                values.append(element)
                supplied.append(element)
            elif isinstance(element, int):
                values.append(str(element))
            elif isinstance(element, tuple):
                parts = ["" if part is None else str(part) for part in element]
                while parts and not parts[-1]:
                    parts.pop()
                supplied.extend(parts)
                values.append(delimiters.component.join(parts))
            else:
                if delimiters.repetition is None:
                    raise X12Error("repeated values need a repetition separator", segment_id=segment_id)
                supplied.extend(element)
                values.append(delimiters.repetition.join(element))
        if self._delimiter.search("".join(supplied)) is not None:
            self._refuse(segment_id, elements)
        while values and not values[-1]:
            values.pop()
        self.parts.append(delimiters.element.join([segment_id, *values]) + self._end)

    def _refuse(self, segment_id: str, elements: Sequence[Element]) -> None:
        """Raise naming the element that holds a delimiter (the slow path, only when one does)."""
        for position, element in enumerate(elements, start=1):
            if isinstance(element, str):
                self.checked(segment_id, position, element)
            elif isinstance(element, tuple | list):
                for part in element:
                    self.checked(segment_id, position, "" if part is None else str(part))

    def raw(self, segment: str) -> None:
        self.parts.append(segment + self._end)

    def checked(self, segment_id: str, position: int, value: str) -> str:
        for character in self._forbidden:
            if character in value:
                raise X12Error(
                    "value contains a delimiter character (X12 has no escape); clean or refuse it upstream",
                    segment_id=segment_id,
                    element=position,
                )
        if _CONTROL.search(value) is not None:
            raise X12Error(
                "value contains a control character; clean or refuse it upstream",
                segment_id=segment_id,
                element=position,
            )
        return value


@dataclass(frozen=True, slots=True)
class Party:
    """An interchange sender or receiver: ISA05/06 or ISA07/08 (qualifier ZZ mutually defined, 30 TIN...)."""

    qualifier: str
    identifier: str


class TransactionWriter:
    """ST ... SE: counts its segments and writes SE when the block ends."""

    def __init__(self, sink: SegmentSink, transaction_set: str, control_number: int, implementation: str):
        self._sink = sink
        self.control_number = f"{control_number:04d}"
        self.count = 0
        self.delimiters = sink.delimiters
        self.segment("ST", transaction_set, self.control_number, implementation)

    def segment(self, segment_id: str, *elements: Element) -> None:
        self._sink.write(segment_id, elements)
        self.count += 1

    def close(self) -> None:
        self.segment("SE", self.count + 1, self.control_number)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()


class GroupWriter:
    """GS ... GE around transaction sets of one functional id."""

    def __init__(
        self,
        sink: SegmentSink,
        *,
        functional_id: str,
        sender: str,
        receiver: str,
        control_number: int,
        version: str,
        when: datetime,
    ) -> None:
        self._sink = sink
        self.control_number = str(control_number)
        self.version = version
        self.transactions = 0
        sink.write(
            "GS",
            (
                functional_id,
                sender,
                receiver,
                when.strftime("%Y%m%d"),
                when.strftime("%H%M"),
                self.control_number,
                "X",
                version,
            ),
        )

    def transaction(
        self, transaction_set: str, control_number: int, implementation: str | None = None
    ) -> TransactionWriter:
        """ST ... SE; ST03 is the group's GS08 unless ``implementation`` says otherwise (``""`` leaves ST03
        out, for the 835, whose guide marks it not used)."""
        self.transactions += 1
        st03 = self.version if implementation is None else implementation
        return TransactionWriter(self._sink, transaction_set, control_number, st03)

    def close(self) -> None:
        self._sink.write("GE", (self.transactions, self.control_number))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()


class InterchangeWriter:
    """One interchange: ISA with fixed-width fields, its groups, IEA; ``finish()`` returns the text."""

    def __init__(
        self,
        *,
        sender: Party,
        receiver: Party,
        control_number: int,
        when: datetime,
        usage: str = "P",
        acknowledgment_requested: bool = True,
        delimiters: Delimiters = DEFAULT_DELIMITERS,
        line_breaks: bool = False,
    ) -> None:
        if not 0 < control_number < 1_000_000_000:
            raise X12Error("interchange control number must be 1 to 999999999", segment_id="ISA", element=13)
        if usage not in ("P", "T"):
            raise X12Error("usage indicator must be P or T", segment_id="ISA", element=15)
        self.sink = SegmentSink(delimiters, line_breaks=line_breaks)
        self.control_number = f"{control_number:09d}"
        self.when = when
        self.groups = 0
        for party, element in ((sender, 6), (receiver, 8)):
            if not party.identifier or len(party.identifier) > 15:
                raise X12Error("interchange id must be 1 to 15 characters", segment_id="ISA", element=element)
        isa = (
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            sender.qualifier,
            sender.identifier.ljust(15),
            receiver.qualifier,
            receiver.identifier.ljust(15),
            when.strftime("%y%m%d"),
            when.strftime("%H%M"),
            delimiters.repetition or "U",
            "00501",
            self.control_number,
            "1" if acknowledgment_requested else "0",
            usage,
        )
        for position, value in enumerate(isa[1:], start=1):
            if position != 11:
                self.sink.checked("ISA", position, value)
        # ISA11 and ISA16 are the delimiters themselves: the one place they are written as values.
        self.sink.raw(delimiters.element.join(isa) + delimiters.element + delimiters.component)

    def group(
        self, *, functional_id: str, sender: str, receiver: str, control_number: int, version: str
    ) -> GroupWriter:
        self.groups += 1
        return GroupWriter(
            self.sink,
            functional_id=functional_id,
            sender=sender,
            receiver=receiver,
            control_number=control_number,
            version=version,
            when=self.when,
        )

    def finish(self) -> str:
        self.sink.write("IEA", (self.groups, self.control_number))
        return "".join(self.sink.parts)


Body = TypeVar("Body")


def single_group_interchange(
    bodies: Iterable[Body],
    write: Callable[[TransactionWriter, Body], None],
    *,
    functional_id: str,
    transaction_set: str,
    implementation: str,
    st03: str | None = None,
    sender: Party,
    receiver: Party,
    control_number: int,
    when: datetime,
    usage: str = "P",
) -> str:
    """An interchange of one functional group (GS02/GS03 the parties' ids, GS06 the interchange's control
    number) holding one transaction set per body, each written by ``write``: what a payer's answers (835,
    999, 277CA, 277) look like. No TA1 is asked for: nobody acknowledges an acknowledgment."""
    writer = InterchangeWriter(
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        when=when,
        usage=usage,
        acknowledgment_requested=False,
    )
    with writer.group(
        functional_id=functional_id,
        sender=sender.identifier,
        receiver=receiver.identifier,
        control_number=control_number,
        version=implementation,
    ) as group:
        for number, body in enumerate(bodies, start=1):
            with group.transaction(transaction_set, number, st03) as transaction:
                write(transaction, body)
    return writer.finish()
