"""Sex- and age-specific code edits from an operator file (no public source ships them with dates).

Layout (README, "Code sets"): CSV, UTF-8, a header row naming ``system,code,sex,min_age,max_age``; one row
per code. ``system`` is a code system (``icd10cm``, ``cpt``, ``hcpcs``); ``sex`` is ``F``/``female``,
``M``/``male`` or empty (either); ``min_age``/``max_age`` are whole years, inclusive, or empty (no bound).
The whole file is one release from the date the operator gives: a code missing from the next file no longer
has an edit from that file's date on.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from rcm.codes.importers.base import CodeFileError, ParsedRelease, SexAgeRow, file_checksum
from rcm.codes.models import CodeSet, CodeSystem, Sex

COLUMNS = ("system", "code", "sex", "min_age", "max_age")
_SEXES = {"f": Sex.FEMALE, "female": Sex.FEMALE, "m": Sex.MALE, "male": Sex.MALE, "": None}


def _age(value: str, *, source: str, line: int, column: int) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) > 150:
        raise CodeFileError(source, line, column, f"age is not a whole number of years: {value!r}")
    return int(value)


def from_file(path: Path, *, label: str, effective_from: date) -> ParsedRelease:
    source = path.name
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != COLUMNS:
        raise CodeFileError(source, 1, 1, f"header row is not {','.join(COLUMNS)}")
    rows: dict[tuple[str, str], SexAgeRow] = {}
    for fields in reader:
        number = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(COLUMNS):
            raise CodeFileError(
                source, number, min(len(fields), len(COLUMNS)) + 1, f"{len(fields)} fields, expected 5"
            )
        system_text, code, sex_text, low_text, high_text = (f.strip() for f in fields)
        if system_text not in CodeSystem._value2member_map_:
            raise CodeFileError(source, number, 1, f"unknown code system: {system_text!r}")
        system = CodeSystem(system_text)
        code = code.upper().replace(".", "") if system is CodeSystem.ICD10CM else code.upper()
        if not code.isalnum():
            raise CodeFileError(source, number, 2, f"not a code: {code!r}")
        if sex_text.lower() not in _SEXES:
            raise CodeFileError(source, number, 3, f"sex is not F, M or empty: {sex_text!r}")
        low = _age(low_text, source=source, line=number, column=4)
        high = _age(high_text, source=source, line=number, column=5)
        if low is not None and high is not None and low > high:
            raise CodeFileError(source, number, 4, f"min_age {low} is above max_age {high}")
        if (system.value, code) in rows:
            raise CodeFileError(source, number, 2, f"code {code} listed twice")
        rows[(system.value, code)] = SexAgeRow(system, code, _SEXES[sex_text.lower()], low, high)
    return ParsedRelease(
        code_set=CodeSet.SEX_AGE,
        label=label,
        effective_from=effective_from,
        effective_through=None,
        source=source,
        checksum=file_checksum(path),
        rows=list(rows.values()),
    )
