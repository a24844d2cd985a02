"""An institutional practice's encounter from FHIR: the ``institutional`` block from the encounter's Claim
(``institutional_facts``), each part checked by the intake schema and refused naming its element."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from rcm.encounters import schemas as encounter_schemas
from rcm.fhir._common import fail_with
from rcm.fhir._parties import Parties
from rcm.fhir.institutional_facts import ClaimInstitutional
from rcm.fhir.outcome import IssueType

REVENUE_CODE = re.compile(r"^[0-9]{4}$")
# supportingInfo category -> the institutional block's field.
_SUPPORTING = {
    "typeofbill": "type_of_bill",
    "admissiontype": "admission_type",
    "pointoforigin": "admission_source",
    "discharge-status": "patient_status",
}


def _checked(name: str, value: Any, where: str) -> Any:
    """``value`` as the intake schema takes the block's ``name`` field, or a refusal naming ``where``."""
    try:
        converted = msgspec.convert({name: value}, encounter_schemas.Institutional)
    except msgspec.ValidationError:
        raise fail_with(IssueType.VALUE, f"cannot be kept as the institutional {name}", where) from None
    return getattr(converted, name)


def institutional_block(
    claims: list[tuple[ClaimInstitutional, str]], parties: Parties, encounter_expression: str
) -> encounter_schemas.Institutional:
    """The block from the first Claim (with its element) naming each part (an encounter usually has one
    Claim)."""
    values: dict[str, Any] = {}
    for facts, _ in claims:
        for category, (code, where) in facts.supporting.items():
            name = _SUPPORTING[category]
            if name not in values:
                values[name] = _checked(name, code, where)
        if facts.admission is not None and "admission_date" not in values:
            moment, day, where = facts.admission
            values["admission_date"] = _checked("admission_date", day, where)
            if moment is not None:
                values["admission_hour"] = moment.hour
        if facts.statement is not None and "statement_start" not in values:
            start, end, where = facts.statement
            values["statement_start"] = _checked("statement_start", start, f"{where}.start")
            values["statement_end"] = _checked("statement_end", end, f"{where}.end")
        if facts.attending is not None and "attending_provider" not in values:
            person = parties.person(facts.attending, ("Practitioner", "PractitionerRole"), role="attending")
            values["attending_provider"] = encounter_schemas.AttendingProvider(
                npi=person.npi, family_name=person.family_name, given_name=person.given_name
            )
        if facts.admitting is not None and "admitting_diagnosis" not in values:
            code, where = facts.admitting
            values["admitting_diagnosis"] = _checked("admitting_diagnosis", code, where)
    # The service's refusals of the block (/institutional/statement_end...) name the first Claim.
    parties.sources["institutional"] = claims[0][1] if claims else encounter_expression
    return encounter_schemas.Institutional(**values)


def revenue_code(facts: Any, index: int, where: str) -> str | None:
    """Claim.item[index]'s revenue code (institutional practices), or a refusal naming it."""
    if not isinstance(facts, ClaimInstitutional):
        return None
    code = facts.revenue.get(index)
    if code is not None and not REVENUE_CODE.match(code):
        raise fail_with(IssueType.VALUE, "a revenue code is four digits (NUBC)", f"{where}.revenue")
    return code
