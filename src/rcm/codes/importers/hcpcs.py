"""HCPCS Level II codes and modifiers: the public CSV copy that ships with RCM, and CMS's quarterly
fixed-width ANWEB file (LAYOUTS.md section 4) with add and termination dates.

One file gives two releases: procedure codes (record ids 3, continued by 4) and modifiers (7, continued
by 8). A continuation record carries more of the long description.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

from rcm.codes.importers.base import (
    CodeFileError,
    CodeRow,
    ParsedRelease,
    file_checksum,
    numbered_lines,
    parse_compact_date,
)
from rcm.codes.models import CodeSet

# The shipped copy: CMS's Level II file of about 2022 (it has G2211 and lacks the 2023 additions), without
# dates, so its codes are valid from January 1, 2022 (rcm/codes/fixtures/hcpcs/README.md).
SHIPPED_LABEL = "public copy (about 2022)"
SHIPPED_FROM = date(2022, 1, 1)

_PROCEDURE = re.compile(r"^[A-V][0-9]{4}$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_RECIDS = {"3": (CodeSet.HCPCS, False), "4": (CodeSet.HCPCS, True), "7": (CodeSet.MODIFIER, False)}
_RECIDS["8"] = (CodeSet.MODIFIER, True)


class _Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.codes: dict[CodeSet, dict[str, CodeRow]] = {CodeSet.HCPCS: {}, CodeSet.MODIFIER: {}}

    def add(self, line: int, recid: str, code: str, description: str, **dates: date | None) -> None:
        if recid not in _RECIDS:
            raise CodeFileError(self.source, line, 0, f"record id is not 3, 4, 7 or 8: {recid!r}")
        code_set, continued = _RECIDS[recid]
        shape = _PROCEDURE if code_set is CodeSet.HCPCS else _MODIFIER
        if not shape.match(code):
            raise CodeFileError(self.source, line, 0, f"not a HCPCS {code_set.value} code: {code!r}")
        rows = self.codes[code_set]
        if continued:
            if code not in rows:
                raise CodeFileError(self.source, line, 0, f"continuation of {code} before its first record")
            first = rows[code]
            rows[code] = CodeRow(
                code=code,
                description=f"{first.description} {description}".strip(),
                effective_from=first.effective_from,
                effective_through=first.effective_through,
            )
            return
        if code in rows:
            raise CodeFileError(self.source, line, 0, f"code {code} listed twice")
        rows[code] = CodeRow(
            code=code,
            description=description,
            effective_from=dates.get("effective_from"),
            effective_through=dates.get("effective_through"),
        )

    def releases(
        self, *, label: str, effective_from: date, checksum: str, source: str
    ) -> list[ParsedRelease]:
        return [
            ParsedRelease(
                code_set=code_set,
                label=label,
                effective_from=effective_from,
                effective_through=None,
                source=source,
                checksum=checksum,
                rows=list(rows.values()),
            )
            for code_set, rows in self.codes.items()
        ]


def from_csv(
    path: Path, *, label: str = SHIPPED_LABEL, effective_from: date = SHIPPED_FROM
) -> list[ParsedRelease]:
    """The CSV copy: ``hcpcs,seqnum,recid,long_description,short_description`` (UTF-8, BOM)."""
    source = path.name
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
    header = next(reader, None)
    expected = ["hcpcs", "seqnum", "recid", "long_description", "short_description"]
    if header is None or [h.strip().lower() for h in header] != expected:
        raise CodeFileError(source, 1, 1, f"header row is not {','.join(expected)}")
    collector = _Collector(source)
    for fields in reader:
        number = reader.line_num
        if not any(fields):
            continue
        if len(fields) != len(expected):
            raise CodeFileError(source, number, len(fields) + 1, f"{len(fields)} fields, expected 5")
        code, _, recid, long_description, short_description = (f.strip() for f in fields)
        try:
            collector.add(number, recid, code, long_description or short_description)
        except CodeFileError as exc:
            column = 3 if "record id" in exc.message else 1
            raise CodeFileError(source, number, column, exc.message) from None
    return collector.releases(
        label=label, effective_from=effective_from, checksum=file_checksum(path), source=source
    )


_MONTHS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}
_ANWEB_NAME = re.compile(r"HCPC(\d{4})_([A-Z]{3})_ANWEB", re.IGNORECASE)


def guess_anweb_window(path: Path) -> tuple[str, date] | None:
    """``HCPC2026_JAN_ANWEB_01122026.txt`` is the January 2026 quarter, in force from 2026-01-01."""
    match = _ANWEB_NAME.search(path.name)
    if not match or match.group(2).upper() not in _MONTHS:
        return None
    year, month = int(match.group(1)), _MONTHS[match.group(2).upper()]
    return f"{year} {match.group(2).upper()}", date(year, month, 1)


def _optional_date(line: str, start: int, *, source: str, number: int, what: str) -> date | None:
    value = line[start - 1 : start + 7].strip()
    if not value:
        return None
    return parse_compact_date(value, source=source, line=number, column=start, what=what)


def from_anweb(path: Path, *, label: str, effective_from: date) -> list[ParsedRelease]:
    """CMS's fixed-width file (320-character records, Latin-1). Positions used: 1-5 HCPC (a modifier sits
    in 4-5, blank-padded), 11 record id, 12-91 long description chunk, 92-119 short description, 269-276 add
    date, 277-284 action effective date, 285-292 termination date (the last day the code may be billed)."""
    source = path.name
    collector = _Collector(source)
    for number, line in numbered_lines(path, "latin-1"):
        if not line.strip():
            continue
        if len(line) < 293:
            raise CodeFileError(source, number, len(line) + 1, "record shorter than 293 characters")
        code = line[0:5].strip()
        recid = line[10]
        first = recid in "37"
        added = _optional_date(line, 269, source=source, number=number, what="ADD DT") if first else None
        terminated = (
            _optional_date(line, 285, source=source, number=number, what="TERM DT") if first else None
        )
        long_chunk = line[11:91].strip()
        try:
            collector.add(
                number,
                recid,
                code,
                long_chunk or line[91:119].strip(),
                effective_from=added,
                effective_through=terminated,
            )
        except CodeFileError as exc:
            column = 11 if "record id" in exc.message else 1
            raise CodeFileError(source, number, column, exc.message) from None
    return collector.releases(
        label=label, effective_from=effective_from, checksum=file_checksum(path), source=source
    )
