"""The payer directory (global reference data) and practices' enrollment with payers (tenant-owned).

The DDL, its CHECKs, RLS policy and grants are frozen in migration 0020_claims."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, utcnow


class FilingIndicator(enum.StrEnum):
    """Claim filing indicator codes (837 2000B SBR09): the kind of plan a claim is billed to."""

    OTHER_NON_FEDERAL = "11"
    PPO = "12"
    POS = "13"
    EPO = "14"
    INDEMNITY = "15"
    HMO_MEDICARE_RISK = "16"
    DENTAL_MAINTENANCE = "17"
    AUTOMOBILE_MEDICAL = "AM"
    BLUE_CROSS_BLUE_SHIELD = "BL"
    CHAMPUS = "CH"
    COMMERCIAL = "CI"
    DISABILITY = "DS"
    FEDERAL_EMPLOYEES = "FI"
    HMO = "HM"
    LIABILITY_MEDICAL = "LM"
    MEDICARE_PART_A = "MA"
    MEDICARE_PART_B = "MB"
    MEDICAID = "MC"
    OTHER_FEDERAL = "OF"
    TITLE_V = "TV"
    VETERANS_AFFAIRS = "VA"
    WORKERS_COMPENSATION = "WC"
    MUTUALLY_DEFINED = "ZZ"


class Payer(Base):
    """A payer of the directory: the same for every practice (a Citus reference table)."""

    __tablename__ = "payer"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # the payer id claims are sent to (NM1*PR)
    name: Mapped[str] = mapped_column(Text)
    claim_filing_indicator: Mapped[FilingIndicator] = mapped_column(EnumText(FilingIndicator))
    # Connector (an entry point name under integrations/) and endpoint reference per service; None: the
    # service is not available electronically for this payer.
    claims_connector: Mapped[str | None] = mapped_column(Text, nullable=True)
    claims_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    eligibility_connector: Mapped[str | None] = mapped_column(Text, nullable=True)
    eligibility_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_connector: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Days after submission without a response before a 276 status inquiry is due (follow-up).
    status_inquiry_days: Mapped[int]
    timely_filing_days: Mapped[int | None]
    # Days after the remittance (835 BPR16) within which the payer takes an appeal; None: the default
    # (``rcm.denials.recording.DEFAULT_APPEAL_DAYS``). Added by 0034_denials.
    appeal_days: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class PayerEnrollment(TenantOwned, Base):
    """A practice bills a directory payer, as ``submitter_id`` to ``receiver_id``. Written from the
    practice's manifest by the control role only; credentials are a secret REFERENCE, never a value."""

    __tablename__ = "payer_enrollment"
    __table_args__ = (UniqueConstraint("tenant_id", "payer_id"),)

    payer_id: Mapped[str] = mapped_column(Text, ForeignKey("payer.id"))
    name: Mapped[str] = mapped_column(Text)  # the practice's label for the payer
    submitter_id: Mapped[str] = mapped_column(Text)  # ISA06 / GS02 / 1000A NM109
    receiver_id: Mapped[str] = mapped_column(Text)  # ISA08 / GS03 / 1000B NM109
    credentials_reference: Mapped[str | None] = mapped_column(Text, nullable=True)  # env:NAME, file:PATH
    timely_filing_days: Mapped[int | None]  # the practice's contract, when it differs from the directory
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)

    def filing_days(self, payer: Payer | None) -> int | None:
        return self.timely_filing_days or (payer.timely_filing_days if payer is not None else None)


__all__ = ["FilingIndicator", "Payer", "PayerEnrollment"]
