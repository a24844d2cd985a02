"""Operator-supplied code lists (CPT, CARC, and descriptions of RARC and place-of-service codes), and the
bare POS and RARC values that ship inside ``pyx12``.

Layout of an operator file (README, "Code sets"): CSV, UTF-8 (a byte-order mark is fine), a header row
naming the columns ``code`` and ``description`` (required) and ``effective_from`` / ``effective_through``
(optional, ``YYYY-MM-DD``, for a code whose window differs from the release's). Other columns are ignored.
Columns are reported 1-based, counted in fields.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from datetime import date
from importlib import metadata, resources
from pathlib import Path

from rcm.codes.importers.base import CodeFileError, CodeRow, ParsedRelease, file_checksum, parse_iso_date
from rcm.codes.models import CodeSet

# What a code of each system looks like (CPT: 5 characters, Category II/III end in F/T, PLA codes in U;
# its two-digit modifiers, 25 or 59, come in the same file).
CODE_SHAPES: dict[CodeSet, re.Pattern[str]] = {
    CodeSet.CPT: re.compile(r"^([0-9]{4}[0-9FTUM]|[0-9]{2})$"),
    CodeSet.CARC: re.compile(r"^[A-Z0-9]{1,3}$"),
    CodeSet.RARC: re.compile(r"^[A-Z]{1,2}[0-9]{1,3}$"),
    CodeSet.POS: re.compile(r"^[0-9]{2}$"),
}


def _read_csv(path: Path, code_set: CodeSet) -> list[CodeRow]:
    source = path.name
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CodeFileError(
            source, 1, 1, "empty file: a header row naming code,description is required"
        ) from None
    for required in ("code", "description"):
        if required not in header:
            raise CodeFileError(source, 1, 1, f"the header row names no {required!r} column")
    where = {name: header.index(name) for name in header}
    shape = CODE_SHAPES[code_set]
    rows: dict[str, CodeRow] = {}
    for fields in reader:
        number = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):  # an unquoted comma in a description, a field missing
            raise CodeFileError(
                source,
                number,
                min(len(fields), len(header)) + 1,
                f"{len(fields)} fields, the header has {len(header)}",
            )
        code = fields[where["code"]].strip().upper()
        column = where["code"] + 1
        if not shape.match(code):
            raise CodeFileError(source, number, column, f"not a {code_set.value} code: {code!r}")
        if code in rows:
            raise CodeFileError(source, number, column, f"code {code} listed twice")
        description = fields[where["description"]].strip()
        if not description:
            raise CodeFileError(source, number, where["description"] + 1, "empty description")
        dates: dict[str, date | None] = {}
        for name in ("effective_from", "effective_through"):
            value = fields[where[name]].strip() if name in where else ""
            dates[name] = (
                parse_iso_date(value, source=source, line=number, column=where[name] + 1, what=name)
                if value
                else None
            )
        rows[code] = CodeRow(
            code=code,
            description=description,
            effective_from=dates["effective_from"],
            effective_through=dates["effective_through"],
        )
    return list(rows.values())


def from_operator_file(
    path: Path, code_set: CodeSet, *, label: str, effective_from: date, effective_through: date | None = None
) -> ParsedRelease:
    return ParsedRelease(
        code_set=code_set,
        label=label,
        effective_from=effective_from,
        effective_through=effective_through,
        source=path.name,
        checksum=file_checksum(path),
        rows=list(_read_csv(path, code_set)),
    )


_PYX12_SETS = {CodeSet.POS: "pos", CodeSet.RARC: "remark_code"}


def pyx12_codes(code_set: CodeSet) -> tuple[list[str], str]:
    """The bare values pyx12's ``codes.xml`` lists for POS (code source 237) or RARC (code source 411),
    and a digest of that file."""
    raw = (resources.files("pyx12") / "map" / "codes.xml").read_bytes()
    root = ET.fromstring(raw)  # noqa: S314 - pyx12's own installed file
    for codeset in root.iter("codeset"):
        if codeset.findtext("id") == _PYX12_SETS[code_set]:
            codes = [c.text.strip() for c in codeset.iter("code") if c.text and c.text.strip()]
            return list(dict.fromkeys(codes)), hashlib.sha256(raw).hexdigest()
    raise ValueError(f"pyx12's codes.xml has no {_PYX12_SETS[code_set]} code set")


def with_pyx12(
    code_set: CodeSet,
    descriptions: Path | None,
    *,
    label: str,
    effective_from: date,
    effective_through: date | None = None,
) -> ParsedRelease:
    """POS or RARC: pyx12's values, with descriptions from ``descriptions`` where it has them (a code only
    the description file lists is loaded too: the file is newer than pyx12's list)."""
    codes, digest = pyx12_codes(code_set)
    described = {row.code: row for row in _read_csv(descriptions, code_set)} if descriptions else {}
    rows = [described.pop(code, CodeRow(code=code, description=None)) for code in codes]
    rows.extend(described.values())
    checksum = hashlib.sha256(
        f"pyx12=={metadata.version('pyx12')}:{digest}:"
        f"{file_checksum(descriptions) if descriptions else ''}".encode()
    ).hexdigest()
    source = f"pyx12 {metadata.version('pyx12')} codes.xml" + (
        f" + {descriptions.name}" if descriptions else ""
    )
    return ParsedRelease(
        code_set=code_set,
        label=label,
        effective_from=effective_from,
        effective_through=effective_through,
        source=source,
        checksum=checksum,
        rows=list(rows),
    )
