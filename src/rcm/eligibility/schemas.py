"""DTOs of eligibility checks (msgspec Structs; no ORM object leaves)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.eligibility.models import CheckStatus, Network

# EQ01: an X12 service type code (1 medical care, 30 health benefit plan coverage, 98 office visit...).
ServiceType = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z]{1,2}$")]


class EligibilityCheckCreate(msgspec.Struct, forbid_unknown_fields=True):
    service_types: Annotated[list[ServiceType], msgspec.Meta(min_length=1, max_length=10)] = msgspec.field(
        default_factory=lambda: ["30"]
    )
    service_date: date | None = None  # DTP*291; the payer assumes today without it


class Benefit(msgspec.Struct):
    service_type: str
    network: Network
    copay_cents: int | None
    coinsurance_basis_points: int | None  # 2000 = 20 %
    deductible_cents: int | None
    deductible_remaining_cents: int | None


class EligibilityCheck(msgspec.Struct):
    id: uuid.UUID
    patient_id: uuid.UUID
    coverage_id: uuid.UUID
    payer_id: str
    checked_at: datetime
    status: CheckStatus
    service_types: list[str]
    plan_begin: date | None
    plan_end: date | None
    reject_reason: str | None  # AAA03, or "999" when the payer's front end refused the 270
    reject_text: str | None
    request_file_id: uuid.UUID | None  # the 270 kept (rcm.x12_file)
    response_file_id: uuid.UUID | None  # the 271 or 999 kept
    benefits: list[Benefit]
