"""Reading a bulk file line by line, without holding it: NDJSON lines and the CSV layout.

Every line ends up as either an ``EncounterCreate`` (the same DTO, and later the same validation, as the JSON
API), a FHIR Bundle to hand to the FHIR intake, or a list of errors naming fields (JSON pointers, plus the
CSV column where the line came from a CSV file). Errors never quote a line's values.

The CSV layout (documented in the README): a header row naming columns from ``CSV_COLUMNS`` plus groups
``line{n}_procedure_code``, ``line{n}_charge_cents``, ``line{n}_units``, ``line{n}_modifiers``,
``line{n}_diagnosis_pointers``, ``line{n}_service_date`` and ``line{n}_revenue_code`` for n = 1..50;
then one encounter per row. Lists inside a cell (diagnosis codes, modifiers, pointers) are separated by
``|``. Quoted fields may hold commas
and quotes, not line breaks: a record is a line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from rcm.encounters.schemas import EncounterCreate
from rcm.kit.errors import FieldError, RCMError
from rcm.kit.strict import MAX_JSON_DEPTH, json_depth_exceeds, strict_decode

MAX_LINE_BYTES = 4 * 1024 * 1024  # a line past this is rejected (and skipped) without being held

# CSV column -> JSON pointer into EncounterCreate.
CSV_COLUMNS: dict[str, str] = {
    "external_id": "/external_id",
    "service_date": "/service_date",
    "place_of_service": "/place_of_service",
    "patient_mrn": "/patient/mrn",
    "patient_given_name": "/patient/given_name",
    "patient_family_name": "/patient/family_name",
    "patient_birth_date": "/patient/birth_date",
    "patient_sex": "/patient/sex",
    "patient_phone": "/patient/phone",
    "patient_address_line1": "/patient/address/line1",
    "patient_address_line2": "/patient/address/line2",
    "patient_city": "/patient/address/city",
    "patient_state": "/patient/address/state",
    "patient_postal_code": "/patient/address/postal_code",
    "coverage_payer_id": "/coverage/payer_id",
    "coverage_member_id": "/coverage/member_id",
    "coverage_relationship": "/coverage/relationship",
    "coverage_priority": "/coverage/priority",
    "coverage_group_number": "/coverage/group_number",
    # The subscriber when not the patient (coverage_relationship spouse, child or other).
    "subscriber_family_name": "/coverage/subscriber/family_name",
    "subscriber_given_name": "/coverage/subscriber/given_name",
    "subscriber_middle_name": "/coverage/subscriber/middle_name",
    "subscriber_birth_date": "/coverage/subscriber/birth_date",
    "subscriber_sex": "/coverage/subscriber/sex",
    "subscriber_address_line1": "/coverage/subscriber/address/line1",
    "subscriber_address_line2": "/coverage/subscriber/address/line2",
    "subscriber_city": "/coverage/subscriber/address/city",
    "subscriber_state": "/coverage/subscriber/address/state",
    "subscriber_postal_code": "/coverage/subscriber/address/postal_code",
    "rendering_npi": "/rendering_provider/npi",
    "rendering_name": "/rendering_provider/name",
    "rendering_taxonomy": "/rendering_provider/taxonomy",
    "billing_npi": "/billing_provider/npi",
    "billing_name": "/billing_provider/name",
    "billing_taxonomy": "/billing_provider/taxonomy",
    "referring_npi": "/referring_provider/npi",
    "referring_family_name": "/referring_provider/family_name",
    "referring_given_name": "/referring_provider/given_name",
    "referring_taxonomy": "/referring_provider/taxonomy",
    "facility_name": "/service_facility/name",
    "facility_npi": "/service_facility/npi",
    "facility_address_line1": "/service_facility/address/line1",
    "facility_address_line2": "/service_facility/address/line2",
    "facility_city": "/service_facility/address/city",
    "facility_state": "/service_facility/address/state",
    "facility_postal_code": "/service_facility/address/postal_code",
    "prior_authorization": "/prior_authorization",
    # An institutional encounter (837I): its claim type when not the practice's, and its facts.
    "claim_type": "/claim_type",
    "type_of_bill": "/institutional/type_of_bill",
    "statement_start": "/institutional/statement_start",
    "statement_end": "/institutional/statement_end",
    "admission_date": "/institutional/admission_date",
    "admission_hour": "/institutional/admission_hour",
    "admission_type": "/institutional/admission_type",
    "admission_source": "/institutional/admission_source",
    "patient_status": "/institutional/patient_status",
    "attending_npi": "/institutional/attending_provider/npi",
    "attending_family_name": "/institutional/attending_provider/family_name",
    "attending_given_name": "/institutional/attending_provider/given_name",
    "admitting_diagnosis": "/institutional/admitting_diagnosis",
    "diagnosis_codes": "/diagnoses",
    "documentation": "/documentation",
}
CSV_LINE_FIELDS = (
    "procedure_code",
    "charge_cents",
    "units",
    "modifiers",
    "diagnosis_pointers",
    "service_date",
    "revenue_code",
)
_INTEGER_COLUMNS = frozenset({"admission_hour"})
_LINE_COLUMN = re.compile(r"^line([1-9][0-9]?)_(" + "|".join(CSV_LINE_FIELDS) + r")$")
_INTEGER = re.compile(r"^-?[0-9]{1,12}$")


@dataclass(slots=True)
class Parsed:
    encounter: EncounterCreate | None = None
    bundle: dict[str, Any] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


class FileError(Exception):
    """The file as a whole cannot be read (a CSV header naming unknown columns). Names no value."""


async def lines(stream: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes | None]]:
    """(line number from 1, line without its end) for each line; ``None`` for a line over MAX_LINE_BYTES,
    which is skipped without being held. A final line without a newline counts."""
    buffer = bytearray()
    number = 0
    overflow = False
    async for data in stream:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                if not overflow:
                    buffer += data[start:]
                    if len(buffer) > MAX_LINE_BYTES:
                        overflow = True
                        buffer.clear()
                break
            number += 1
            if overflow:
                yield number, None
            else:
                buffer += data[start:end]
                yield number, bytes(buffer[:-1] if buffer.endswith(b"\r") else buffer)
            buffer.clear()
            overflow = False
            start = end + 1
    if buffer or overflow:
        number += 1
        yield number, None if overflow else bytes(buffer)


def _errors(errors: list[FieldError], columns: dict[str, str] | None = None) -> list[dict[str, str]]:
    out = []
    for error in errors:
        item = {"pointer": error.pointer, "detail": error.detail}
        if columns is not None:
            column = _column_for(error.pointer, columns)
            if column:
                item["column"] = column
        out.append(item)
    return out


def _column_for(pointer: str, columns: dict[str, str]) -> str | None:
    # The longest column pointer that is the error's pointer or a prefix of it.
    best = None
    for pointer_prefix, column in columns.items():
        if (pointer == pointer_prefix or pointer.startswith(pointer_prefix + "/")) and (
            best is None or len(pointer_prefix) > len(best[0])
        ):
            best = (pointer_prefix, column)
    return best[1] if best else None


def too_long() -> list[dict[str, str]]:
    return [{"pointer": "", "detail": f"the line is longer than {MAX_LINE_BYTES} bytes"}]


def parse_json_line(raw: bytes) -> Parsed:
    """One NDJSON line: a JSON encounter (as POSTed to the encounters route) or a FHIR Bundle."""
    if b'"resourceType"' in raw:
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return Parsed(errors=[{"pointer": "", "detail": "is not JSON"}])
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            return Parsed(bundle=document)
    if json_depth_exceeds(raw):
        return Parsed(errors=[{"pointer": "", "detail": f"nests deeper than {MAX_JSON_DEPTH} levels"}])
    try:
        encounter, errors = strict_decode(EncounterCreate, raw)
    except RCMError as exc:  # not JSON at all
        return Parsed(errors=_errors(list(exc.errors)))
    if errors:
        return Parsed(errors=_errors(errors))
    return Parsed(encounter=encounter)


@dataclass(frozen=True, slots=True)
class CsvLayout:
    header: tuple[str, ...]
    pointers: dict[str, str]  # JSON pointer -> column, for naming errors

    @classmethod
    def from_header(cls, raw: bytes) -> CsvLayout:
        try:
            header = tuple(name.strip() for name in next(csv.reader([raw.decode("utf-8-sig")])))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            raise FileError("the CSV header row cannot be read") from None
        pointers: dict[str, str] = {}
        unknown = []
        for name in header:
            if name in CSV_COLUMNS:
                pointers[CSV_COLUMNS[name]] = name
                continue
            match = _LINE_COLUMN.match(name)
            if match is None:
                unknown.append(name)
                continue
            index, part = int(match.group(1)) - 1, match.group(2)
            pointers[f"/charges/{index}/{part}"] = name
        if unknown:
            # Column names are the practice's layout, not PHI; they are cut to a sane length anyway.
            raise FileError("unknown CSV columns: " + ", ".join(name[:40] for name in unknown[:10]))
        if len(set(header)) != len(header):
            raise FileError("a CSV column is named twice")
        return cls(header=header, pointers=pointers)

    def parse(self, raw: bytes) -> Parsed:
        try:
            cells = next(csv.reader([raw.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return Parsed(errors=[{"pointer": "", "detail": "is not a CSV record in UTF-8"}])
        if len(cells) != len(self.header):
            return Parsed(
                errors=[
                    {"pointer": "", "detail": f"has {len(cells)} cells, the header has {len(self.header)}"}
                ]
            )
        document: dict[str, Any] = {}
        charges: dict[int, dict[str, Any]] = {}
        for name, cell in zip(self.header, cells, strict=True):
            value = cell.strip()
            if not value:
                continue
            match = _LINE_COLUMN.match(name)
            if match is not None:
                charges.setdefault(int(match.group(1)) - 1, {})[match.group(2)] = _line_value(
                    match.group(2), value
                )
                continue
            pointer = CSV_COLUMNS[name]
            if name == "diagnosis_codes":
                document["diagnoses"] = [{"code": code.strip()} for code in value.split("|") if code.strip()]
                continue
            _put(document, pointer, _number(value) if name in _INTEGER_COLUMNS else value)
        if charges:
            last = max(charges)
            document["charges"] = [charges.get(i, {}) for i in range(last + 1)]
        for provider in ("rendering_provider", "billing_provider"):
            if provider in document and "name" not in document[provider]:
                document[provider]["name"] = document[provider].get("npi", "")
        raw_json = msgspec.json.encode(document)
        try:
            encounter, errors = strict_decode(EncounterCreate, raw_json)
        except RCMError as exc:
            return Parsed(errors=_errors(list(exc.errors), self.pointers))
        if errors:
            return Parsed(errors=_errors(errors, self.pointers))
        return Parsed(encounter=encounter)

    def named(self, errors: list[FieldError]) -> list[dict[str, str]]:
        return _errors(errors, self.pointers)


def _number(value: str) -> int | str:
    return int(value) if _INTEGER.match(value) else value  # a non-number stays text: named as wrong type


def _line_value(part: str, value: str) -> Any:
    if part in ("charge_cents", "units"):
        return _number(value)
    if part == "modifiers":
        return [m.strip() for m in value.split("|") if m.strip()]
    if part == "diagnosis_pointers":
        return [int(p) if _INTEGER.match(p.strip()) else p.strip() for p in value.split("|") if p.strip()]
    return value


def _put(document: dict[str, Any], pointer: str, value: object) -> None:
    parts = pointer.strip("/").split("/")
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
