"""What every importer produces, and the one error a malformed file raises (naming file, line and column)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rcm.codes.models import CodeSet, CodeSystem, Sex


class CodeFileError(ValueError):
    """A line of a code file that cannot be read: ``file:line:column: what is wrong``.

    Code files are reference data (no PHI), so the message may quote what it found.
    """

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.source = source
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A code of a code system; ``effective_from``/``effective_through`` when the file itself dates it."""

    code: str
    description: str | None
    billable: bool = True
    effective_from: date | None = None
    effective_through: date | None = None


@dataclass(frozen=True, slots=True)
class PtpRow:
    column1: str
    column2: str
    effective_from: date
    deleted_on: date | None
    modifier_indicator: int
    existed_before_1996: bool
    rationale: str | None


@dataclass(frozen=True, slots=True)
class MueRow:
    code: str
    units: int
    adjudication_indicator: int
    rationale: str | None


@dataclass(frozen=True, slots=True)
class SexAgeRow:
    system: CodeSystem
    code: str
    sex: Sex | None
    min_age_years: int | None
    max_age_years: int | None


Row = CodeRow | PtpRow | MueRow | SexAgeRow


@dataclass(slots=True)
class ParsedRelease:
    """One release read from a file: what it is, when it applies, and its rows (all in memory: the largest,
    an NCCI PTP part, is some 700k short rows)."""

    code_set: CodeSet
    label: str
    effective_from: date
    effective_through: date | None
    source: str  # where it came from (file name or package), for the operator's report
    checksum: str  # of the source bytes: the same file loaded twice is one release
    rows: list[Row] = field(default_factory=list)
    # Reads the rows when they are needed (after the checksum says the release is new): the package
    # release takes seconds to read, and a re-run of the demo should not.
    reader: Callable[[], list[Row]] | None = None

    def materialize(self) -> None:
        if self.reader is not None:
            self.rows = self.reader()
            self.reader = None


def file_checksum(path: Path, *, salt: str = "") -> str:
    digest = hashlib.sha256(salt.encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_iso_date(value: str, *, source: str, line: int, column: int, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CodeFileError(source, line, column, f"{what} is not a date YYYY-MM-DD: {value!r}") from None


def parse_compact_date(value: str, *, source: str, line: int, column: int, what: str) -> date:
    """``YYYYMMDD`` (CMS files)."""
    if len(value) != 8 or not value.isdigit():
        raise CodeFileError(source, line, column, f"{what} is not a date YYYYMMDD: {value!r}")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise CodeFileError(source, line, column, f"{what} is not a date YYYYMMDD: {value!r}") from None


def numbered_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """Lines without their line ending, numbered from 1; a byte-order mark is dropped."""
    with path.open(encoding=encoding, newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if number == 1:
                line = line.removeprefix("\ufeff")
            yield number, line
