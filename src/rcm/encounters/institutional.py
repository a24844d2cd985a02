"""An encounter's claim type and, for an institutional one, its 837I facts (005010X223A2 loop 2300: type of
bill, statement period, admission, patient status, attending provider, admitting diagnosis) and its lines'
revenue codes. Codes and dates only: ordinary columns of the encounter, checked, written and read back here.

Which 837 an encounter is billed on is the practice's (manifest ``claim_type``), unless the encounter names
its own. A professional encounter carries no institutional facts: sending some is a 422 naming them, never
silently dropped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from rcm.encounters import schemas
from rcm.encounters.models import Encounter
from rcm.kit.errors import FieldError
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.vocabulary import ClaimType


def claim_type_of(data: schemas.EncounterCreate, manifest: TenantManifest) -> ClaimType:
    return data.claim_type or manifest.claim_type


def check_institutional(
    claim_type: ClaimType,
    facts: schemas.Institutional | None,
    charges: Sequence[schemas.ChargeLineIn],
    latest: date,
) -> list[FieldError]:
    """What a schema cannot say: institutional facts only on an institutional encounter, a statement
    period that ends after it starts, no date in the future, an hour only with its date."""
    if claim_type is ClaimType.PROFESSIONAL:
        errors = [
            FieldError(f"/charges/{index}/revenue_code", "is for institutional encounters only (claim_type)")
            for index, line in enumerate(charges)
            if line.revenue_code is not None
        ]
        if facts is not None:
            errors.append(FieldError("/institutional", "is for institutional encounters only (claim_type)"))
        return errors
    if facts is None:
        return []
    errors = []
    for name in ("statement_start", "statement_end", "admission_date"):
        value = getattr(facts, name)
        if value is not None and value > latest:
            errors.append(FieldError(f"/institutional/{name}", "is in the future"))
    start, end = facts.statement_start, facts.statement_end
    if start is not None and end is not None and end < start:
        errors.append(FieldError("/institutional/statement_end", "is before statement_start"))
    if facts.admission_hour is not None and facts.admission_date is None:
        errors.append(FieldError("/institutional/admission_hour", "needs admission_date"))
    return errors


def type_of_bill(value: str) -> str:
    """Three characters (facility type, classification, frequency): the form's leading zero dropped."""
    return value[-3:]


def institutional_columns(claim_type: ClaimType, facts: schemas.Institutional | None) -> dict[str, Any]:
    """The encounter's claim type and institutional columns (all None when it carries no facts)."""
    attending = facts.attending_provider if facts else None
    return {
        "claim_type": claim_type,
        "type_of_bill": type_of_bill(facts.type_of_bill) if facts and facts.type_of_bill else None,
        "statement_start": facts.statement_start if facts else None,
        "statement_end": facts.statement_end if facts else None,
        "admission_date": facts.admission_date if facts else None,
        "admission_hour": facts.admission_hour if facts else None,
        "admission_type": facts.admission_type if facts else None,
        "admission_source": facts.admission_source if facts else None,
        "patient_status": facts.patient_status if facts else None,
        "attending_npi": attending.npi if attending else None,
        "attending_family_name": attending.family_name if attending else None,
        "attending_given_name": attending.given_name if attending else None,
        "admitting_diagnosis": (
            facts.admitting_diagnosis.replace(".", "").upper()
            if facts and facts.admitting_diagnosis
            else None
        ),
    }


def institutional_of(row: Encounter) -> schemas.Institutional | None:
    """The encounter's institutional facts as sent (None for a professional encounter)."""
    if row.claim_type is not ClaimType.INSTITUTIONAL:
        return None
    attending = (
        schemas.AttendingProvider(
            npi=row.attending_npi, family_name=row.attending_family_name, given_name=row.attending_given_name
        )
        if row.attending_npi is not None and row.attending_family_name is not None
        else None
    )
    return schemas.Institutional(
        type_of_bill=row.type_of_bill,
        statement_start=row.statement_start,
        statement_end=row.statement_end,
        admission_date=row.admission_date,
        admission_hour=row.admission_hour,
        admission_type=row.admission_type,
        admission_source=row.admission_source,
        patient_status=row.patient_status,
        attending_provider=attending,
        admitting_diagnosis=row.admitting_diagnosis,
    )
