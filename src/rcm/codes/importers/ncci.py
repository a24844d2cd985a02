"""NCCI procedure-to-procedure edits, practitioner file (LAYOUTS.md section 1).

Tab-delimited, Latin-1, CRLF; six header lines (AMA notice, title, a wrapped column header), then rows of
seven fields: column 1 code, column 2 code, ``*`` when the edit existed before 1996, effective date
``YYYYMMDD``, deletion date ``YYYYMMDD`` or ``*`` (none), modifier indicator 0/1/9, rationale.

The deletion date is read as the first day the edit no longer applies: rows with indicator 9 carry
deletion = effective, an edit that never applied. Columns in errors are 1-based character positions.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from rcm.codes.importers.base import (
    CodeFileError,
    ParsedRelease,
    PtpRow,
    file_checksum,
    numbered_lines,
    parse_compact_date,
)
from rcm.codes.models import CodeSet

HEADER_LINES = 6
_CODE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")
_VERSION = re.compile(r"v(\d{3})r(\d)", re.IGNORECASE)
_PART = re.compile(r"-f(\d)", re.IGNORECASE)


def guess_quarter(path: Path) -> tuple[str, date] | None:
    """``ccipra-v323r0-f1.TXT``: version NNN = (year - 1994) * 10 + quarter - 1, so v323 is 2026 Q4."""
    match = _VERSION.search(path.name)
    if not match:
        return None
    version = int(match.group(1))
    year, quarter = 1994 + version // 10, version % 10 + 1
    if not 1 <= quarter <= 4:
        return None
    part = _PART.search(path.name)
    label = f"{year}Q{quarter} v{match.group(1)}r{match.group(2)}" + (f" f{part.group(1)}" if part else "")
    return label, date(year, 3 * (quarter - 1) + 1, 1)


def _columns(fields: list[str]) -> list[int]:
    starts, position = [], 1
    for field in fields:
        starts.append(position)
        position += len(field) + 1
    return starts


def from_file(path: Path, *, label: str, effective_from: date) -> ParsedRelease:
    source = path.name
    rows: dict[tuple[str, str, date], PtpRow] = {}
    for number, line in numbered_lines(path, "latin-1"):
        if number <= HEADER_LINES or not line.strip():
            continue
        fields = line.split("\t")
        at = _columns(fields)
        if len(fields) < 6:
            raise CodeFileError(
                source, number, len(line) + 1, f"{len(fields)} tab-separated fields, expected 7"
            )
        column1, column2, before_1996, effective, deletion, indicator = (f.strip() for f in fields[:6])
        for value, start, what in ((column1, at[0], "column 1"), (column2, at[1], "column 2")):
            if not _CODE.match(value):
                raise CodeFileError(source, number, start, f"{what} is not a CPT/HCPCS code: {value!r}")
        if before_1996 not in ("", "*"):
            raise CodeFileError(
                source, number, at[2], f"pre-1996 flag is neither '*' nor empty: {before_1996!r}"
            )
        begins = parse_compact_date(
            effective, source=source, line=number, column=at[3], what="effective date"
        )
        deleted = (
            None
            if deletion == "*"
            else parse_compact_date(deletion, source=source, line=number, column=at[4], what="deletion date")
        )
        if indicator not in ("0", "1", "9"):
            raise CodeFileError(source, number, at[5], f"modifier indicator is not 0, 1 or 9: {indicator!r}")
        rationale = fields[6].strip() if len(fields) > 6 and fields[6].strip() else None
        # A pair may appear twice (a deleted row and a live one); keyed with its effective date.
        rows[(column1, column2, begins)] = PtpRow(
            column1=column1,
            column2=column2,
            effective_from=begins,
            deleted_on=deleted,
            modifier_indicator=int(indicator),
            existed_before_1996=before_1996 == "*",
            rationale=rationale,
        )
    return ParsedRelease(
        code_set=CodeSet.NCCI_PTP,
        label=label,
        effective_from=effective_from,
        effective_through=None,
        source=source,
        checksum=file_checksum(path),
        rows=list(rows.values()),
    )
