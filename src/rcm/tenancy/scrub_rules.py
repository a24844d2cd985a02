"""Practice and payer scrub rules, declared in the tenant manifest (``scrub_rules``).

The condition language is structured data, not code: a rule says WHEN it applies (every condition given
must hold; lists mean "any of") and what each matching charge line REQUIRES. Nothing is evaluated but these
fixed keys, so a manifest edit can never run code; the JSON Schema generated from these models
(``tenants/schema.json``) is what editors and CI validate against. The evaluation is in
``rcm.scrub.conditions``.

Example::

    scrub_rules:
      - id: AET-EM-25
        version: "2026.1"
        severity: error
        message: Demo Aetna wants modifier 25 on an office visit billed with a procedure.
        when: {payer_in: [DEMO-AET], procedure_code_in: ["99213", "99214"], with_procedure_in: ["20610"]}
        require: {modifier_in: ["25"]}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ProcedureCode = Annotated[str, Field(pattern=r"^([0-9]{4}[0-9FTU]|[A-V][0-9]{4})$")]
_Modifier = Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")]
_PlaceOfService = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
_PayerId = Annotated[str, Field(min_length=1, max_length=80)]
# An ICD-10-CM code or the start of one, without the dot ("E11" matches E11.9 and E11.65).
_IcdPrefix = Annotated[str, Field(pattern=r"^[A-Z][0-9A-Z]{0,6}$")]


_List = Field(min_length=1, max_length=200)
_Payers = Annotated[tuple[_PayerId, ...], _List]
_Places = Annotated[tuple[_PlaceOfService, ...], _List]
_Procedures = Annotated[tuple[_ProcedureCode, ...], _List]
_Modifiers = Annotated[tuple[_Modifier, ...], _List]
_IcdPrefixes = Annotated[tuple[_IcdPrefix, ...], _List]


class RuleSeverity(StrEnum):
    """An ``error`` blocks the claim; a ``warning`` informs the biller and lets it go."""

    ERROR = "error"
    WARNING = "warning"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _not_empty(self) -> _Strict:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("give at least one condition")
        return self


class RuleWhen(_Strict):
    """Which charge lines a rule applies to: every condition given must hold."""

    payer_in: Annotated[
        _Payers | None, Field(description="The encounter's payer is one of these manifest payer ids.")
    ] = None
    place_of_service_in: Annotated[
        _Places | None, Field(description="The encounter's place of service is one of these.")
    ] = None
    procedure_code_in: Annotated[
        _Procedures | None, Field(description="The line's procedure code is one of these.")
    ] = None
    modifier_in: Annotated[
        _Modifiers | None, Field(description="The line carries at least one of these modifiers.")
    ] = None
    with_procedure_in: Annotated[
        _Procedures | None, Field(description="Another line of the encounter bills one of these codes.")
    ] = None


class RuleRequire(_Strict):
    """What every matching line must satisfy: each requirement given is checked."""

    modifier_in: Annotated[
        _Modifiers | None, Field(description="The line carries at least one of these modifiers.")
    ] = None
    modifier_not_in: Annotated[
        _Modifiers | None, Field(description="The line carries none of these modifiers.")
    ] = None
    diagnosis_prefix_in: Annotated[
        _IcdPrefixes | None,
        Field(description="A diagnosis the line points to starts with one of these (no dot)."),
    ] = None
    units_at_most: Annotated[
        Annotated[int, Field(ge=1, le=9999, strict=True)] | None,
        Field(description="The line bills at most this many units."),
    ] = None


class ScrubRule(BaseModel):
    """One practice or payer rule: named, versioned, with a severity and a message a biller understands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$", description="Upper case, e.g. AET-EM-25.")]
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$")]
    severity: RuleSeverity
    message: Annotated[
        str, Field(min_length=1, max_length=300, description="Shown to the biller when the rule fires.")
    ]
    when: RuleWhen
    require: RuleRequire
