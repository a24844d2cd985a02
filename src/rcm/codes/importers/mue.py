"""MUE table, practitioner services (LAYOUTS.md section 2).

A CSV in Latin-1: first a quoted multi-line AMA notice (one record, then ``,,,``), then the header record
(``"HCPCS/<line break>CPT Code"``, ``Practitioner Services MUE Values``, ``MUE Adjudication Indicator``,
``MUE Rationale``), then one row per code: code, units, indicator (``1 Line Edit``, ``2 Date of Service
Edit: Policy``, ``3 Date of Service Edit: Clinical``), rationale. The file carries no dates: the effective
date is in its name (``MCR_MUE_PractitionerServices_Eff_01-01-2026.csv``) or given by the operator.
Columns in errors are 1-based field numbers; lines are where the record ends.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

from rcm.codes.importers.base import CodeFileError, MueRow, ParsedRelease, file_checksum
from rcm.codes.models import CodeSet

_CODE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")
_NAME = re.compile(r"Eff_(\d{2})-(\d{2})-(\d{4})", re.IGNORECASE)


def guess_effective(path: Path) -> date | None:
    match = _NAME.search(path.name)
    if not match:
        return None
    month, day, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def from_file(path: Path, *, label: str, effective_from: date) -> ParsedRelease:
    source = path.name
    reader = csv.reader(io.StringIO(path.read_text(encoding="latin-1"), newline=""))
    header_seen = False
    rows: dict[str, MueRow] = {}
    for fields in reader:
        number = reader.line_num
        if not header_seen:
            # Everything before the header record is the notice.
            header_seen = bool(fields) and fields[0].strip().upper().startswith("HCPCS")
            continue
        if not any(f.strip() for f in fields):
            continue
        if len(fields) < 3:
            raise CodeFileError(source, number, len(fields) + 1, f"{len(fields)} fields, expected 4")
        code = fields[0].strip().upper()
        if not _CODE.match(code):
            raise CodeFileError(source, number, 1, f"not a CPT/HCPCS code: {code!r}")
        units_text = fields[1].strip()
        if not units_text.isdigit():
            raise CodeFileError(source, number, 2, f"MUE value is not a whole number: {units_text!r}")
        indicator_text = fields[2].strip()
        if indicator_text[:1] not in ("1", "2", "3"):
            raise CodeFileError(
                source, number, 3, f"adjudication indicator is not 1, 2 or 3: {indicator_text!r}"
            )
        if code in rows:
            raise CodeFileError(source, number, 1, f"code {code} listed twice")
        rationale = fields[3].strip() if len(fields) > 3 and fields[3].strip() else None
        rows[code] = MueRow(code, int(units_text), int(indicator_text[0]), rationale)
    if not header_seen:
        raise CodeFileError(source, 1, 1, "no header record starting 'HCPCS' (is this an MUE table?)")
    return ParsedRelease(
        code_set=CodeSet.MUE,
        label=label,
        effective_from=effective_from,
        effective_through=None,
        source=source,
        checksum=file_checksum(path),
        rows=list(rows.values()),
    )
