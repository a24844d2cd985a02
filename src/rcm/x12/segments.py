"""X12 segments and the tokenizer that reads them from bytes, streamed.

X12 has no fixed delimiters: the interchange header (ISA) declares them. ISA is 16 elements; its fourth
character is the element separator, the character after the sixteenth separator is ISA16 (the component
separator) and the character after that ends every segment. ISA11 is the repetition separator from version
00501 on (``U`` in 4010 files, which have none). Real files are not always padded to ISA's fixed widths, so
the delimiters are found by counting separators, never by offsets.

Real files also carry a UTF-8 byte-order mark, put each segment on its own (sometimes indented) line and
concatenate several interchanges; the tokenizer reads all of that. It works on chunks, so a 100,000-claim file
is never held in memory whole.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import msgspec

from rcm.x12.errors import X12Error

CHUNK_SIZE = 1 << 20
_BOM = "\ufeff"
_SEGMENT_ID = re.compile(r"[A-Z0-9]{2,3}\Z")
# Whitespace between segments (line breaks, indentation) is layout, not content.
_LAYOUT = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = "^"

    def characters(self) -> str:
        return self.element + self.component + self.segment + (self.repetition or "")


DEFAULT_DELIMITERS = Delimiters()


class Segment(msgspec.Struct, gc=False):
    """One segment: its identifier, its elements (1-based, as the guides number them) and where it was read.

    ``elements[0]`` is the segment identifier, so ``seg[3]`` is the third element (NM103), as in the guides.
    A msgspec Struct because every reader builds one per segment: its construction is C, about twice as
    fast as a slotted class's ``__init__``. Not tracked by the garbage collector: it holds only a list of
    strings and two ints, so it can be in no cycle.
    """

    elements: list[str]
    index: int = 0  # 1-based ordinal of the segment in the file
    offset: int = 0  # character offset of its first character

    @property
    def id(self) -> str:
        return self.elements[0]

    def __getitem__(self, position: int) -> str:
        """Element ``position`` (1-based); an element the segment does not carry is empty."""
        elements = self.elements
        return elements[position] if position < len(elements) else ""

    def __len__(self) -> int:
        return len(self.elements) - 1

    def components(self, position: int, separator: str) -> list[str]:
        return self[position].split(separator)

    def where(self) -> str:
        return f"segment {self.id} at position {self.index}"

    def __repr__(self) -> str:
        # Elements can hold PHI (names, member ids): a repr names the segment, never its content.
        return f"<Segment {self.id} #{self.index}>"


def _leading_id(text: str) -> str | None:
    found = re.match(r"[A-Z0-9]{2,3}", text)
    return found.group(0) if found else None


def _delimiters_from_isa(head: str, offset: int) -> tuple[Delimiters, int]:
    """Delimiters declared by the ISA starting at ``head[0]``; returns them and the ISA's length."""
    if len(head) < 4:
        raise X12Error("truncated interchange header", segment_id="ISA", position=1, offset=offset)
    element = head[3]
    if element.isalnum() or element in _LAYOUT:
        raise X12Error(
            "the character after ISA is not a usable element separator",
            segment_id="ISA",
            position=1,
            offset=offset,
        )
    cursor = 3  # the first separator, after "ISA"
    for _ in range(15):
        cursor = head.find(element, cursor + 1)
        if cursor < 0:
            raise X12Error(
                "truncated interchange header: fewer than 16 elements",
                segment_id="ISA",
                position=1,
                offset=offset,
            )
    # cursor is the 16th separator: ISA16 follows, then the segment terminator.
    if cursor + 2 >= len(head):
        raise X12Error("truncated interchange header", segment_id="ISA", position=1, offset=offset)
    component = head[cursor + 1]
    terminator = head[cursor + 2]
    fields = head[: cursor + 1].split(element)
    version = fields[12].strip()
    # No strip(): Python counts the information separators 0x1C-0x1F, common delimiters, as whitespace.
    repetition: str | None = fields[11] if version >= "00501" else None
    if repetition is not None and (len(repetition) != 1 or repetition.isalnum() or repetition == " "):
        repetition = None
    found = Delimiters(element=element, component=component, segment=terminator, repetition=repetition)
    if len(set(found.characters())) != len(found.characters()):
        raise X12Error(
            "interchange header declares the same character for two delimiters",
            segment_id="ISA",
            position=1,
            offset=offset,
        )
    return found, cursor + 3


def _text_chunks(source: bytes | str | BinaryIO, encoding: str) -> Iterator[str]:
    if isinstance(source, str):
        yield source
        return
    decoder = codecs.getincrementaldecoder(encoding)()
    consumed = 0
    if isinstance(source, bytes | bytearray | memoryview):
        chunks: Iterable[bytes] = (bytes(source),)
    else:
        chunks = iter(lambda: source.read(CHUNK_SIZE), b"")
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            consumed += len(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise X12Error(
            f"the file is not {encoding} text (byte {consumed + exc.start}); name its encoding",
            offset=consumed + exc.start,
        ) from None
    if tail:
        yield tail


class SegmentReader:
    """Iterates a file's segments; ``delimiters`` are known once the first ISA has been read.

    A file may hold several interchanges, each declaring its own delimiters: they are re-read at every ISA.
    """

    def __init__(self, source: bytes | str | BinaryIO, *, encoding: str = "utf-8") -> None:
        self._chunks = _text_chunks(source, encoding)
        self._exhausted = False
        self._buffer = ""
        self._offset = 0  # characters consumed before _buffer[0]
        self._index = 0  # segments yielded so far
        self.delimiters: Delimiters | None = None

    def _more(self) -> bool:
        try:
            self._buffer += next(self._chunks)
        except StopIteration:
            self._exhausted = True
            return False
        return True

    def _header(self) -> Segment | None:
        """The next interchange's ISA, with its delimiters; None at a clean end of file."""
        # Enough text for an ISA: 106 characters when padded, a little more with layout around it.
        while not self._exhausted and len(self._buffer.lstrip(_LAYOUT + _BOM)) < 512:
            self._more()
        stripped = self._buffer.lstrip(_LAYOUT + _BOM) if self._index == 0 else self._buffer.lstrip(_LAYOUT)
        self._offset += len(self._buffer) - len(stripped)
        self._buffer = stripped
        if not stripped:
            if self._index == 0:
                raise X12Error("not X12: the file is empty")
            return None
        if not stripped.startswith("ISA"):
            raise X12Error(
                "not X12: expected an ISA interchange header"
                if self._index == 0
                else "expected ISA after IEA",
                segment_id=_leading_id(stripped),
                position=self._index + 1,
                offset=self._offset,
            )
        delimiters, length = _delimiters_from_isa(stripped, self._offset)
        self.delimiters = delimiters
        self._index += 1
        isa = Segment(stripped[: length - 1].split(delimiters.element), self._index, self._offset)
        self._buffer = stripped[length:]
        self._offset += length
        return isa

    def _body(self, delimiters: Delimiters) -> Iterator[Segment]:
        """The segments after an ISA, through its IEA (or the end of the file)."""
        terminator = delimiters.segment
        element = delimiters.element
        layout = "".join(c for c in _LAYOUT if c not in (element, terminator))
        # The per-segment loop is the cost of every reader: offset and index live in locals (written back
        # before anything else reads them) and identifiers already seen skip the pattern.
        seen: set[str] = set()
        while True:
            text = self._buffer
            pieces = text.split(terminator)
            self._buffer = pieces.pop()
            # Machine-written files carry no layout: each piece is then a segment as it stands, unstripped.
            has_layout = any(character in text for character in layout)
            offset, index = self._offset, self._index
            for number, piece in enumerate(pieces):
                if has_layout:
                    content = piece.lstrip(layout)
                    start = offset + len(piece) - len(content)
                    content = content.rstrip(layout)
                else:
                    content, start = piece, offset
                offset += len(piece) + 1
                if not content:
                    continue
                fields = content.split(element)
                index += 1
                segment_id = fields[0]
                if segment_id not in seen:
                    if _SEGMENT_ID.match(segment_id) is None:
                        self._offset, self._index = offset, index
                        raise X12Error("not a segment identifier", position=index, offset=start)
                    seen.add(segment_id)
                yield Segment(fields, index, start)
                if segment_id == "IEA":
                    self._offset, self._index = offset, index
                    # What follows is the next interchange, read with the delimiters its own ISA declares.
                    rest = terminator.join(pieces[number + 1 :])
                    self._buffer = (rest + terminator + self._buffer) if rest else self._buffer
                    return
            self._offset, self._index = offset, index
            if not self._more():
                tail = self._buffer.strip(layout)
                if tail:
                    raise X12Error(
                        "truncated: the last segment has no terminator",
                        segment_id=_leading_id(tail),
                        position=self._index + 1,
                        offset=self._offset,
                    )
                return

    def __iter__(self) -> Iterator[Segment]:
        while (isa := self._header()) is not None:
            yield isa
            assert self.delimiters is not None
            yield from self._body(self.delimiters)
