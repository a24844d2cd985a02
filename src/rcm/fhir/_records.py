"""Turning facts into the services' DTOs, and the services' answers back into FHIR expressions."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from rcm.fhir import facts as f
from rcm.fhir._common import EntryFailed, fail_with
from rcm.fhir.outcome import Issue, IssueType
from rcm.kit.strict import EARLIEST_DATE
from rcm.patients import schemas as patient_schemas
from rcm.providers.models import Provider
from rcm.providers.schemas import ProviderCreate


def provider_create(row: Provider) -> ProviderCreate:
    return ProviderCreate(npi=row.npi, name=row.name, kind=row.kind, taxonomy=row.taxonomy)  # type: ignore[arg-type]


_PATIENT_FIELDS = {
    "mrn": "identifier",
    "given_name": "name",
    "family_name": "name",
    "birth_date": "birthDate",
    "sex": "gender",
}


def patient_expression(expression: str, pointer: str) -> str:
    name = pointer.strip("/").split("/")[-1] if pointer else ""
    element = _PATIENT_FIELDS.get(name)
    return f"{expression}.{element}" if element else expression


def coverage_expression(expression: str, pointer: str) -> str:
    if pointer.startswith("/subscriber"):
        return f"{expression}.subscriber"
    name = pointer.strip("/").split("/")[-1]
    element = {
        "payer_id": "payor",
        "end_date": "period.end",
        "start_date": "period.start",
        "member_id": "subscriberId",
    }.get(name)
    return f"{expression}.{element}" if element else expression


def patient_create(facts: f.PatientFacts, expression: str, latest: date) -> patient_schemas.PatientCreate:
    issues = []
    if facts.mrn is None:
        issues.append(
            Issue(
                IssueType.REQUIRED,
                "needs the medical record number (an identifier of type MR)",
                f"{expression}.identifier",
            )
        )
    if facts.family_name is None or facts.given_name is None:
        issues.append(Issue(IssueType.REQUIRED, "needs a family and a given name", f"{expression}.name"))
    if facts.birth_date is None:
        issues.append(Issue(IssueType.REQUIRED, "is required", f"{expression}.birthDate"))
    elif facts.birth_date < EARLIEST_DATE:
        issues.append(
            Issue(
                IssueType.VALUE, f"must not be before {EARLIEST_DATE.isoformat()}", f"{expression}.birthDate"
            )
        )
    elif facts.birth_date > latest:
        issues.append(Issue(IssueType.VALUE, "is in the future", f"{expression}.birthDate"))
    if issues:
        raise EntryFailed(*issues)
    values: dict[str, Any] = {
        "mrn": facts.mrn,
        "given_name": (facts.given_name or "")[:100],
        "family_name": (facts.family_name or "")[:100],
        "birth_date": facts.birth_date,
        "sex": facts.sex,
    }
    try:
        data = msgspec.convert(values, patient_schemas.PatientCreate)
    except msgspec.ValidationError as exc:
        field_name = str(exc).rsplit("$.", 1)[-1].rstrip("`")
        raise fail_with(
            IssueType.VALUE, "cannot be kept as sent", patient_expression(expression, field_name)
        ) from None
    # Address and phone are optional: one this server cannot keep (a foreign address) is left out.
    for name, value, kind in (
        ("address", facts.address, patient_schemas.Address),
        ("phone", facts.phone, patient_schemas.Phone),
    ):
        if value is None:
            continue
        try:
            setattr(data, name, msgspec.convert(value, kind))
        except msgspec.ValidationError:
            continue
    return data
