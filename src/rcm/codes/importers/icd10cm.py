"""ICD-10-CM: the release inside the ``simple-icd-10-cm`` package, and CMS/CDC order files for later years.

Codes are stored without the dot (as claims carry them); lookups accept either form. A code is billable
when it is a leaf of the tabular list (the package's ``is_leaf``; the order file's position-15 flag):
categories and subcategories with children are headers, not valid on a claim.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from importlib import metadata, resources
from pathlib import Path

from rcm.codes.importers.base import (
    CodeFileError,
    CodeRow,
    ParsedRelease,
    Row,
    file_checksum,
    numbered_lines,
)
from rcm.codes.models import CodeSet

PACKAGE = "simple-icd-10-cm"
# What the package version ships (its data files name it): the April 1, 2026 update of FY2026, in force
# from that day through the end of the fiscal year.
PACKAGE_RELEASE = {
    "1.5.0": ("FY2026 (April 1, 2026 update)", date(2026, 4, 1), date(2026, 9, 30)),
}


def fiscal_year_window(fiscal_year: int) -> tuple[date, date]:
    """FY N runs from October 1 of N-1 through September 30 of N."""
    return date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)


def from_package() -> ParsedRelease:
    """Every category, subcategory and code of the package's tabular list (about 98k; 74.7k billable)."""
    version = metadata.version(PACKAGE)
    if version not in PACKAGE_RELEASE:
        raise ValueError(
            f"{PACKAGE} {version} ships a release this loader does not know the dates of; "
            f"load the CMS order file with --effective-from instead"
        )
    label, start, through = PACKAGE_RELEASE[version]
    digest = hashlib.sha256(f"{PACKAGE}=={version}".encode())
    data = resources.files("simple_icd_10_cm") / "data"
    for entry in sorted(data.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".txt", ".xml")):
            digest.update(entry.read_bytes())

    def read() -> list[Row]:
        import simple_icd_10_cm as icd

        rows: dict[str, CodeRow] = {}
        for code in icd.get_all_codes(False):
            # Chapters ("1") and blocks ("A00-A09") are chapters of the book, not codes.
            if "-" in code or code.isdigit() or code in rows:
                continue
            rows[code] = CodeRow(code=code, description=icd.get_description(code), billable=icd.is_leaf(code))
        return list(rows.values())

    return ParsedRelease(
        code_set=CodeSet.ICD10CM,
        label=label,
        effective_from=start,
        effective_through=through,
        source=f"{PACKAGE} {version}",
        checksum=digest.hexdigest(),
        reader=read,
    )


_ORDER_NAME = re.compile(r"order[_-](\d{4})", re.IGNORECASE)
_CODE = re.compile(r"^[A-Z][0-9A-Z]{2,6}$")


def guess_window(path: Path) -> tuple[str, date, date] | None:
    """``icd10cm_order_2027.txt`` is FY2027 (2026-10-01 .. 2027-09-30); an April update's file name says
    so (``...April-1-2026...``): from April 1 through the end of that fiscal year."""
    name = path.name
    april = re.search(r"april[-_ ]1[-_ ](\d{4})", name, re.IGNORECASE)
    if april:
        year = int(april.group(1))
        return f"FY{year} (April 1, {year} update)", date(year, 4, 1), date(year, 9, 30)
    match = _ORDER_NAME.search(name)
    if match:
        year = int(match.group(1))
        start, end = fiscal_year_window(year)
        return f"FY{year}", start, end
    return None


def from_order_file(
    path: Path, *, label: str, effective_from: date, effective_through: date | None
) -> ParsedRelease:
    """The fixed-width order file (LAYOUTS.md section 3): positions 1-5 order number, 7-13 code, 15 the
    billable flag (0 header, 1 valid for HIPAA claims), 17-76 short description, 78- long description."""
    source = path.name
    rows: dict[str, CodeRow] = {}
    for number, line in numbered_lines(path, "latin-1"):
        if not line.strip():
            continue
        if len(line) < 78:
            raise CodeFileError(source, number, len(line) + 1, "line ends before the long description (78)")
        order = line[0:5]
        if not order.isdigit():
            raise CodeFileError(source, number, 1, f"order number is not 5 digits: {order!r}")
        code = line[6:13].strip()
        if not _CODE.match(code):
            raise CodeFileError(source, number, 7, f"not an ICD-10-CM code: {code!r}")
        flag = line[14]
        if flag not in "01":
            raise CodeFileError(source, number, 15, f"billable flag is neither 0 nor 1: {flag!r}")
        if code in rows:
            raise CodeFileError(source, number, 7, f"code {code} listed twice")
        description = line[77:].strip() or line[16:76].strip()
        rows[code] = CodeRow(code=code, description=description, billable=flag == "1")
    return ParsedRelease(
        code_set=CodeSet.ICD10CM,
        label=label,
        effective_from=effective_from,
        effective_through=effective_through,
        source=source,
        checksum=file_checksum(path),
        rows=list(rows.values()),
    )
