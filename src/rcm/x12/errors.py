"""The one error X12 reading and writing raise: it names the segment and where it is, never its content."""

from __future__ import annotations


class X12Error(ValueError):
    """Input that is not a readable X12 file, or content that cannot be written as X12.

    ``position`` is the 1-based ordinal of the segment in the file (as pyx12 and the guides' error reports
    count), ``offset`` the character offset where it starts. The message never quotes element values: they
    can be PHI.
    """

    def __init__(
        self,
        message: str,
        *,
        segment_id: str | None = None,
        position: int | None = None,
        offset: int | None = None,
        element: int | None = None,
    ) -> None:
        self.message = message
        self.segment_id = segment_id
        self.position = position
        self.offset = offset
        self.element = element
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.segment_id is not None:
            name = self.segment_id
            if self.element is not None:
                name += f"{self.element:02d}"
            where.append(f"segment {name}" if self.element is None else f"element {name}")
        if self.position is not None:
            where.append(f"at position {self.position}")
        if self.offset is not None:
            where.append(f"(character {self.offset})")
        return f"{' '.join(where)}: {self.message}" if where else self.message
