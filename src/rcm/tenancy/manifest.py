"""Tenant manifests: declarative YAML, typed by :class:`TenantManifest`.

The model is the single source: ``tenants/schema.json`` is generated from it (``rcm tenants schema``) and a
test keeps the committed copy equal, so editors and CI validate against exactly what the loader accepts.
Past the loader a manifest is a ``TenantManifest``, never a dict: the ORM column converts on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from rcm.kit.errors import FieldError, InvalidInput
from rcm.tenancy.scrub_rules import ScrubRule
from rcm.tenancy.vocabulary import ClaimType, TenantStatus

SCHEMA_ID = "https://rcm.example/schemas/tenant-manifest.json"
SCHEMA_COMMAND = "rcm tenants schema > tenants/schema.json"

# strict on numbers: a YAML "120" (a string) is not silently a number of days (issue 5, point 6).
_Int1 = Annotated[int, Field(ge=1, strict=True)]


class _Part(BaseModel):
    # Unknown keys are refused by name (a typo in a rule must not be ignored); parts are immutable, since a
    # scope shares its tenant's manifest between requests.
    model_config = ConfigDict(extra="forbid", frozen=True)


class BillingProvider(_Part):
    """The group billing provider (837P loop 2010AA)."""

    npi: Annotated[str, Field(pattern=r"^[0-9]{10}$")]
    name: Annotated[str, Field(min_length=1)]
    taxonomy: Annotated[str | None, Field(pattern=r"^[0-9A-Z]{9}X$")] = None


class Address(_Part):
    line1: str
    line2: str | None = None
    city: str
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    postal_code: Annotated[str, Field(pattern=r"^[0-9]{5}([0-9]{4})?$")]


class Payer(_Part):
    """The practice's enrollment with a payer of the payer directory (``rcm payers load``): applying the
    manifest writes it to ``payer_enrollment``; a payer id the directory lacks is refused by name."""

    payer_id: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,79}$", description="A payer id of the payer directory."),
    ]
    name: Annotated[str, Field(min_length=1, description="The practice's label for the payer.")]
    timely_filing_days: Annotated[
        _Int1 | None, Field(description="The practice's contract, when it differs from the directory's.")
    ] = None
    submitter_id: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9]{2,15}$",
            description="Submitter id (ISA06/GS02, 837 1000A); default: the billing provider's NPI.",
        ),
    ] = None
    receiver_id: Annotated[
        str | None,
        Field(
            pattern=r"^[A-Za-z0-9-]{2,80}$",
            description="Receiver id (ISA08/GS03, 837 1000B); default: the payer id.",
        ),
    ] = None
    credentials_reference: Annotated[
        str | None,
        Field(
            pattern=r"^[a-z]+:[A-Za-z0-9/_.-]+$",
            description="The connector's credentials for this practice, BY REFERENCE: env:NAME or file:PATH.",
        ),
    ] = None


class SubmitterContact(_Part):
    """Whom a receiver calls about a submitted file (837 loop 1000A PER): the practice's EDI or billing
    contact, a business line, never a patient's. X12 delimiters are refused here, not discovered at render."""

    name: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^*~:^|\x00-\x1f]+$")]
    phone: Annotated[
        str | None, Field(pattern=r"^[0-9]{10}$", description="Ten digits, no punctuation (PER04 TE).")
    ] = None
    email: Annotated[str | None, Field(pattern=r"^[^@\s*~:^|]+@[^@\s*~:^|]+$")] = None

    @model_validator(mode="after")
    def _reachable(self) -> SubmitterContact:
        if self.phone is None and self.email is None:
            raise ValueError("a submitter contact needs a phone or an email")
        return self


class Rules(_Part):
    """Practice rules the platform reads; each new rule is a typed field here, not a free-form key."""

    require_referring_provider: bool | None = None
    # At most a year: the due date is computed from it, and an unbounded value overflowed at intake.
    coding_sla_hours: Annotated[
        Annotated[int, Field(ge=1, le=8760, strict=True)] | None,
        Field(description="Hours to code an encounter (1 to 8760)."),
    ] = None


class QueueSla(_Part):
    """How urgent a practice's work in one queue is: its items' priority and how long until they are due."""

    priority: Annotated[
        int, Field(ge=1, le=9, strict=True, description="1 (first) to 9 (last); within a practice only")
    ] = 5
    due_in_hours: Annotated[
        int, Field(ge=1, le=8760, strict=True, description="Hours from arrival to the due date (1 to 8760)")
    ]


class Sla(_Part):
    """Service levels per work queue (the queue kinds of ``rcm.workqueue``)."""

    coding: QueueSla | None = None
    billing: QueueSla | None = None


class Fee(_Part):
    """One fee schedule entry: the practice's charge for a CPT/HCPCS code (with a modifier, if it differs)."""

    code: Annotated[str, Field(pattern=r"^[A-Z0-9][0-9]{3}[0-9A-Z]$", description="CPT or HCPCS Level II")]
    modifier: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{2}$")] = None
    charge_cents: Annotated[int, Field(ge=0, le=100_000_000, strict=True, description="Charge per unit")]


class Branding(_Part):
    """How the practice appears on its patient statements."""

    name: Annotated[
        str | None,
        Field(min_length=1, max_length=120, description="The name printed; default: the practice's name."),
    ] = None
    color: Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="Heading colour, #RRGGBB.")] = (
        "#1F4E79"
    )


class Statements(_Part):
    """Patient statements, payment plans and the practice's small-balance and collections rules."""

    automatic: Annotated[
        bool, Field(description="The worker starts each cycle's statement run itself (else: the route).")
    ] = False
    cycle_days: Annotated[
        int, Field(ge=7, le=92, strict=True, description="Days between statement runs (one run per cycle).")
    ] = 30
    minimum_balance_cents: Annotated[
        int, Field(ge=0, strict=True, description="A balance under this gets no statement.")
    ] = 500
    small_balance_write_off_cents: Annotated[
        int,
        Field(
            ge=0,
            strict=True,
            description="A positive balance at or under this is written off by the statement run (0: never).",
        ),
    ] = 0
    collections_after_days: Annotated[
        int | None,
        Field(
            ge=1,
            le=3650,
            strict=True,
            description="Balances older than this flag the account for collections.",
        ),
    ] = 120
    installment_grace_days: Annotated[
        int, Field(ge=0, le=60, strict=True, description="Days after its due date an installment is missed.")
    ] = 10
    missed_installments_to_default: Annotated[
        int, Field(ge=1, le=12, strict=True, description="Missed installments that default a payment plan.")
    ] = 2
    pay_url: Annotated[
        str | None, Field(pattern=r"^https://[^\s]{1,300}$", description="Where patients pay online.")
    ] = None
    pay_phone: Annotated[
        str | None, Field(pattern=r"^[0-9]{10}$", description="The billing office's phone, ten digits.")
    ] = None
    pay_text: Annotated[
        str | None,
        Field(min_length=1, max_length=500, description="How to pay, as printed (mail, hours...)."),
    ] = None
    branding: Branding = Branding()

    @model_validator(mode="after")
    def _write_off_under_minimum(self) -> Statements:
        if (
            self.small_balance_write_off_cents
            and self.small_balance_write_off_cents >= self.minimum_balance_cents
        ):
            raise ValueError("small_balance_write_off_cents must be under minimum_balance_cents")
        return self


class TenantManifest(_Part):
    """Declarative description of one client practice. No secrets and no PHI: the TIN is a reference to the
    operator's vault, never the number."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="RCM tenant manifest",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID},
    )

    slug: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    # Offboarding is an operator command (`rcm tenants offboard`), never a manifest edit.
    status: Literal[TenantStatus.ACTIVE, TenantStatus.SUSPENDED] | None = None
    billing_provider: BillingProvider
    tin_reference: Annotated[
        str | None,
        Field(
            pattern=r"^[a-z]+:[A-Za-z0-9/_.-]+$",
            description="Where the practice's TIN is read: env:NAME or file:PATH (under RCM_SECRETS_DIR).",
        ),
    ] = None
    address: Address | None = None
    submitter_contact: Annotated[
        SubmitterContact | None,
        Field(description="Whom the receiver of the practice's claim files calls (837 1000A PER)."),
    ] = None
    payers: tuple[Payer, ...] = ()
    claim_type: Annotated[
        ClaimType,
        Field(
            description=(
                "The 837 the practice's encounters are billed on (professional: 837P; institutional: 837I,"
                " whose encounters carry an institutional block). An encounter may name its own."
            )
        ),
    ] = ClaimType.PROFESSIONAL
    staff: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...],
        Field(description="Emails of billing-company staff assigned to this practice."),
    ] = ()
    rules: Rules = Rules()
    sla: Sla = Sla()
    fee_schedule: Annotated[
        tuple[Fee, ...],
        Field(
            description="Charges per code (and modifier); a CSV loaded later (rcm coding fees) adds to it."
        ),
    ] = ()

    statements: Annotated[
        Statements,
        Field(description="Patient statements, payment plans, small-balance write-off and collections."),
    ] = Statements()

    scrub_rules: Annotated[
        tuple[ScrubRule, ...],
        Field(description="Practice and payer scrub rules (README: Scrubber, the condition language)."),
    ] = ()

    @field_validator("scrub_rules")
    @classmethod
    def _rule_ids_unique(cls, rules: tuple[ScrubRule, ...]) -> tuple[ScrubRule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id} is declared twice")
            seen.add(rule.id)
        return rules

    @field_validator("payers")
    @classmethod
    def _payers_unique(cls, payers: tuple[Payer, ...]) -> tuple[Payer, ...]:
        seen: set[str] = set()
        for payer in payers:
            if payer.payer_id in seen:
                raise ValueError(f"payer {payer.payer_id} is listed twice")
            seen.add(payer.payer_id)
        return payers

    @property
    def payer_ids(self) -> frozenset[str]:
        return frozenset(p.payer_id for p in self.payers)

    def document(self) -> dict[str, Any]:
        """The JSON form stored in ``tenant.manifest`` and shown to admins (absent keys stay absent)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`TenantManifest`, as committed in ``tenants/schema.json``."""
    return TenantManifest.model_json_schema()


def render_schema() -> str:
    return json.dumps(manifest_schema(), indent=2, sort_keys=False) + "\n"


def _pointer(location: tuple[int | str, ...]) -> str:
    # RFC 6901: "~" and "/" inside a key are escaped.
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in location)


def validate_manifest(document: object) -> TenantManifest:
    """The only door from an untyped document to a manifest; every bad field is named by its pointer."""
    try:
        return TenantManifest.model_validate(document)
    except ValidationError as exc:
        errors = [FieldError(_pointer(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise InvalidInput("The tenant manifest does not match tenants/schema.json.", errors=errors) from None


def load_manifest(path: Path) -> TenantManifest:
    return validate_manifest(yaml.safe_load(path.read_text()))


class ManifestColumn(TypeDecorator[TenantManifest]):
    """``tenant.manifest``: JSONB in the database, a ``TenantManifest`` in Python.

    Rows are written only through :func:`validate_manifest`, so reading one back cannot fail validation.
    """

    impl = JSONB
    cache_ok = True

    def process_bind_param(self, value: TenantManifest | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else value.document()

    def process_result_value(self, value: Any, dialect: Dialect) -> TenantManifest | None:
        return None if value is None else TenantManifest.model_validate(value)
