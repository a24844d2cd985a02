"""Eligibility checks, their benefits per service type, and claim status inquiries (migration 0029).

Tenant-owned, RLS forced, append-only for the app role. Nothing here is PHI in clear: the member id stays
encrypted on the coverage; the raw 270/271/276/277 are blobs behind ``rcm.x12_file``."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from rcm.claims.models import Claim  # noqa: F401 - the rcm.claim table inquiries refer to
from rcm.interchanges.models import X12File  # noqa: F401 - the rcm.x12_file table checks refer to
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check
from rcm.patients.models import Coverage  # noqa: F401 - the rcm.coverage table checks refer to


class CheckStatus(enum.StrEnum):
    ACTIVE = "active"  # EB01 = 1
    INACTIVE = "inactive"  # EB01 = 6 (and no 1)
    UNKNOWN = "unknown"  # an answer with neither
    REFUSED = "refused"  # AAA reject, or a 999 refusing the 270


class Network(enum.StrEnum):
    """EB12: Y in network, N out of network, W both; absent: the payer did not say."""

    IN = "in"
    OUT = "out"
    BOTH = "both"
    UNSPECIFIED = "unspecified"


class InquiryOutcome(enum.StrEnum):
    ACCEPTED = "accepted"  # A1/A2 (and A0/A5): the payer has it
    REJECTED = "rejected"  # A3/A4 other than "not found", A6, A7, A8
    FINALIZED = "finalized"  # F*: adjudicated; the 835 moves the claim
    PENDING = "pending"  # P*: asked again after the payer's interval
    NOT_FOUND = "not_found"  # A4:35 / no claim status in the answer / unknown category
    REFUSED = "refused"  # a 999 refused the 276, or the 277 could not be read


def _file_fk(column: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"])


class EligibilityCheck(TenantOwned, Base):
    __tablename__ = "eligibility_check"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        ForeignKeyConstraint(["tenant_id", "coverage_id"], ["rcm.coverage.tenant_id", "rcm.coverage.id"]),
        _file_fk("request_file_id"),
        _file_fk("response_file_id"),
        enum_check("status", CheckStatus),
        Index("ix_eligibility_check_coverage", "tenant_id", "coverage_id", "checked_at"),
    )

    patient_id: Mapped[uuid.UUID]
    coverage_id: Mapped[uuid.UUID]
    payer_id: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime]
    status: Mapped[CheckStatus] = mapped_column(EnumText(CheckStatus))
    service_types: Mapped[list[str]] = mapped_column(ARRAY(Text))  # EQ01s asked
    plan_begin: Mapped[date | None]
    plan_end: Mapped[date | None]
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # AAA03, or 999 for a refusal
    reject_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_file_id: Mapped[uuid.UUID | None]  # the 270 (outbound)
    response_file_id: Mapped[uuid.UUID | None]  # the 271 or 999 (inbound)


class EligibilityBenefit(TenantOwned, Base):
    __tablename__ = "eligibility_benefit"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "check_id"], ["rcm.eligibility_check.tenant_id", "rcm.eligibility_check.id"]
        ),
        UniqueConstraint("tenant_id", "check_id", "service_type", "network"),
        enum_check("network", Network),
        CheckConstraint("coinsurance_basis_points BETWEEN 0 AND 10000", name="coinsurance_basis_points"),
    )

    check_id: Mapped[uuid.UUID]
    service_type: Mapped[str] = mapped_column(Text)  # EB03 (30 when the EB names none)
    network: Mapped[Network] = mapped_column(EnumText(Network))
    copay_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # EB01 B, EB07
    coinsurance_basis_points: Mapped[int | None] = mapped_column(Integer, nullable=True)  # EB01 A, EB08
    deductible_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # EB01 C
    deductible_remaining_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # C, EB06 29


class ClaimStatusInquiry(TenantOwned, Base):
    __tablename__ = "claim_status_inquiry"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        _file_fk("request_file_id"),
        _file_fk("response_file_id"),
        enum_check("outcome", InquiryOutcome),
        Index("ix_claim_status_inquiry_claim", "tenant_id", "claim_id", "next_inquiry_at"),
    )

    claim_id: Mapped[uuid.UUID]
    outcome: Mapped[InquiryOutcome] = mapped_column(EnumText(InquiryOutcome))
    category: Mapped[str | None] = mapped_column(Text, nullable=True)  # STC01-1
    status_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # STC01-2
    next_inquiry_at: Mapped[datetime]
    request_file_id: Mapped[uuid.UUID | None]  # the 276
    response_file_id: Mapped[uuid.UUID | None]  # the 277 or 999
