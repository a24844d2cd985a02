"""Report rollups and month-end closes (migration 0040_report_rollups).

Tenant-owned, RLS forced. The rollups are written only by the ledger's statement trigger (SECURITY DEFINER,
owned by rcm_owner); the app role may read them and may record a close. No PHI: ids, codes and cents."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from rcm.claims.models import Claim  # noqa: F401 - the rcm.claim table balances refer to
from rcm.kit.models import Base, enum_check


class Kind(enum.StrEnum):
    """What a ledger figure is, signed so the ordinary case is positive."""

    CHARGE = "charge"  # gross charges billed (a void's reversal is negative)
    PAYMENT = "payment"  # money payers sent (the 835s' BPR02, PLB recoupments deducted)
    PATIENT_PAYMENT = "patient_payment"  # money patients paid
    REFUND = "refund"  # money paid back to patients
    ADJUSTMENT = "adjustment"  # CAS write-offs (CO, OA, PI, CR) and small-balance write-offs, by group
    INTEREST = "interest"  # PLB L6, as the ledger signs it (debit positive)
    PROVIDER_ADJUSTMENT = "provider_adjustment"  # other PLB adjustments, as the ledger signs them
    UNAPPLIED = "unapplied"  # 835 payments matching no claim of the practice


class _DayFigures:
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    kind: Mapped[Kind] = mapped_column(Text, primary_key=True)
    adjustment_group: Mapped[str] = mapped_column(Text, primary_key=True)  # CAS01, '' for other kinds
    payer_id: Mapped[str] = mapped_column(Text, primary_key=True)  # the claim's payer, '' for none
    provider_id: Mapped[str] = mapped_column(Text, primary_key=True)  # rendering provider id, '' for none
    procedure_code: Mapped[str] = mapped_column(Text, primary_key=True)  # the line's CPT/HCPCS, '' for none
    location: Mapped[str] = mapped_column(Text, primary_key=True)  # the encounter's facility, '' for none
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    entries: Mapped[int] = mapped_column(BigInteger)


class ReportLedgerDay(_DayFigures, Base):
    __tablename__ = "report_ledger_day"
    __table_args__ = (enum_check("kind", Kind),)


class ReportClose(Base):
    __tablename__ = "report_close"
    __table_args__ = (CheckConstraint("extract(day FROM month) = 1", name="month"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)  # its first day
    closed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    closed_by: Mapped[str] = mapped_column(Text)  # principal subject


class ReportClosedDay(_DayFigures, Base):
    __tablename__ = "report_closed_day"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "month"], ["rcm.report_close.tenant_id", "rcm.report_close.month"]
        ),
    )

    month: Mapped[date]  # the close that froze it


class ReportClaimBalance(Base):
    __tablename__ = "report_claim_balance"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        Index(
            "ix_report_claim_balance_open",
            "tenant_id",
            "payer_id",
            "service_date",
            postgresql_include=["submitted_on", "insurance_cents", "patient_cents"],
            postgresql_where=text("insurance_cents <> 0 OR patient_cents <> 0"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    payer_id: Mapped[str] = mapped_column(Text)
    service_date: Mapped[date]
    submitted_on: Mapped[date | None]  # the first submission (UTC day)
    insurance_cents: Mapped[int] = mapped_column(BigInteger)
    patient_cents: Mapped[int] = mapped_column(BigInteger)
    # The cash forecast's facts (0055_forecast_rollup): the first 835 adjudication (UTC day, any outcome),
    # voided or closed now, and the gross charges (charge entries, reversals not netted).
    adjudicated_on: Mapped[date | None]
    ended: Mapped[bool] = mapped_column(server_default=text("false"))
    charged_cents: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ReportForecastClaims(Base):
    """Submitted claims per payer, first-submission day, first-adjudication day and ended (voided or closed):
    how many and their gross charges. Kept by the triggers of 0055_forecast_rollup."""

    __tablename__ = "report_forecast_claims"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    payer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    submitted_on: Mapped[date] = mapped_column(primary_key=True)
    adjudicated_on: Mapped[date] = mapped_column(primary_key=True)  # 'infinity': not adjudicated
    ended: Mapped[bool] = mapped_column(primary_key=True)
    claims: Mapped[int] = mapped_column(BigInteger)
    charged_cents: Mapped[int] = mapped_column(BigInteger)


class ReportForecastPayments(Base):
    """Payer payments (ledger account ``payments``) per their claim's payer, submission and adjudication
    days, and the UTC day they were posted. Kept by the triggers of 0055_forecast_rollup."""

    __tablename__ = "report_forecast_payments"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    payer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    submitted_on: Mapped[date] = mapped_column(primary_key=True)
    adjudicated_on: Mapped[date] = mapped_column(primary_key=True)  # 'infinity': not adjudicated
    posted_on: Mapped[date] = mapped_column(primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger)


class ReportClosedAr(Base):
    __tablename__ = "report_closed_ar"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "month"], ["rcm.report_close.tenant_id", "rcm.report_close.month"]
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    basis: Mapped[str] = mapped_column(Text, primary_key=True)  # service_date | submission_date
    payer_id: Mapped[str] = mapped_column(Text, primary_key=True)  # 'patient' for patients' balances
    bucket: Mapped[str] = mapped_column(Text, primary_key=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    claims: Mapped[int] = mapped_column(BigInteger)


class ReportPostedDay(Base):
    """The KPIs' money flows per UTC day of posting (``created_at``): charges (billed positive), payments on
    claims (payer and patient) and contractual (CAS CO) adjustments. Kept by the ledger's statement trigger
    (migration 0056_kpi_money_day)."""

    __tablename__ = "report_posted_day"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    charges_cents: Mapped[int] = mapped_column(BigInteger)
    payments_cents: Mapped[int] = mapped_column(BigInteger)
    contractual_cents: Mapped[int] = mapped_column(BigInteger)


class ReportReceivableDay(Base):
    """Receivable entries (accounts ``insurance_receivable`` and ``patient_receivable``) summed per UTC day
    of posting (``created_at``) and the claim's date of service: the KPIs' AR at a period's end, and over 90
    days. Kept by the ledger's statement trigger (migration 0057_ar_posted_day)."""

    __tablename__ = "report_receivable_day"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    service_date: Mapped[date] = mapped_column(primary_key=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
