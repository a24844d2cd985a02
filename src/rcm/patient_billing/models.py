"""Patients' money beside the ledger (migration 0036_patients): payments and refunds with the claims each
was applied to, payment plans and their installments, statement runs and the statements they produced.

No PHI here: ids, dates and cents. Payments, refunds and their allocations are append-only like the ledger
they post to (the database refuses UPDATE and DELETE); a plan, an installment and a run change state. A
statement's files are blobs (encrypted, named by their ids only)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rcm.blobs.models import Blob  # noqa: F401 - the rcm.blob table statements refer to
from rcm.claims.models import Claim
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check, utcnow
from rcm.ledger.models import LedgerPosting  # noqa: F401 - the rcm.ledger_posting table allocations refer to
from rcm.patients.models import Patient  # noqa: F401 - the rcm.patient table rows refer to

# A patient's claims, read for every balance and statement (declared here, beside what reads it by patient).
Index("ix_claim_patient", Claim.tenant_id, Claim.patient_id)


class PaymentKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    CASH = "cash"
    CHECK = "check"
    ACH = "ach"
    OTHER = "other"


class PaymentPlanState(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"  # every installment paid
    DEFAULTED = "defaulted"  # missed installments reached the practice's limit
    CANCELLED = "cancelled"


class InstallmentState(enum.StrEnum):
    DUE = "due"
    PAID = "paid"
    MISSED = "missed"  # past its due date and grace days unpaid (paying it late still counts)


class StatementRunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StatementOutcome(enum.StrEnum):
    SENT = "sent"  # a statement was produced
    WRITTEN_OFF = "written_off"  # the balance was at or under the practice's small-balance threshold


class PatientPayment(TenantOwned, Base):
    """A patient's payment, or a refund of one (``refund_of``). Append-only."""

    __tablename__ = "patient_payment"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "refund_of"], ["rcm.patient_payment.tenant_id", "rcm.patient_payment.id"]
        ),
        enum_check("kind", PaymentKind),
        enum_check("method", PaymentMethod),
        CheckConstraint("amount_cents > 0", name="amount"),
        CheckConstraint("(kind = 'refund') = (refund_of IS NOT NULL)", name="refund_of"),
        Index("ix_patient_payment_patient", "tenant_id", "patient_id", "created_at"),
    )

    patient_id: Mapped[uuid.UUID]
    kind: Mapped[PaymentKind] = mapped_column(EnumText(PaymentKind))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[PaymentMethod] = mapped_column(EnumText(PaymentMethod))
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)  # a receipt or check number
    refund_of: Mapped[uuid.UUID | None]
    plan_id: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(Text)


class PaymentAllocation(TenantOwned, Base):
    """The part of a payment (or refund) applied to one claim, and the ledger posting that moved it."""

    __tablename__ = "payment_allocation"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "payment_id"], ["rcm.patient_payment.tenant_id", "rcm.patient_payment.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "posting_id"], ["rcm.ledger_posting.tenant_id", "rcm.ledger_posting.id"]
        ),
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        CheckConstraint("amount_cents > 0", name="amount"),
        Index("ix_payment_allocation_payment", "tenant_id", "payment_id"),
    )

    payment_id: Mapped[uuid.UUID]
    claim_id: Mapped[uuid.UUID]
    posting_id: Mapped[uuid.UUID]
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class PaymentPlan(TenantOwned, Base):
    __tablename__ = "payment_plan"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        enum_check("state", PaymentPlanState),
        CheckConstraint("total_cents > 0 AND installment_cents > 0", name="amounts"),
        # One plan in force per patient.
        Index(
            "uq_payment_plan_active",
            "tenant_id",
            "patient_id",
            unique=True,
            postgresql_where=text("state = 'active'"),
        ),
    )

    patient_id: Mapped[uuid.UUID]
    total_cents: Mapped[int] = mapped_column(BigInteger)
    installment_cents: Mapped[int] = mapped_column(BigInteger)
    interval_days: Mapped[int] = mapped_column(SmallInteger)
    first_due_on: Mapped[date]
    state: Mapped[PaymentPlanState] = mapped_column(EnumText(PaymentPlanState))
    missed_count: Mapped[int] = mapped_column(SmallInteger)
    actor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class PlanInstallment(TenantOwned, Base):
    __tablename__ = "payment_plan_installment"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "plan_id"], ["rcm.payment_plan.tenant_id", "rcm.payment_plan.id"]),
        UniqueConstraint("tenant_id", "plan_id", "number"),
        enum_check("state", InstallmentState),
        CheckConstraint("paid_cents >= 0 AND paid_cents <= amount_cents", name="paid"),
    )

    plan_id: Mapped[uuid.UUID]
    number: Mapped[int] = mapped_column(SmallInteger)
    due_on: Mapped[date]
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    paid_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[InstallmentState] = mapped_column(EnumText(InstallmentState))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class StatementRun(TenantOwned, Base):
    """One practice's statement cycle (``cycle_start``: one run per cycle), its job and its progress.
    ``cursor_patient`` is the last patient whose outcome is committed: a resumed run starts after it."""

    __tablename__ = "statement_run"
    __table_args__ = (
        UniqueConstraint("tenant_id", "cycle_start"),
        enum_check("status", StatementRunStatus),
        Index("ix_statement_run_list", "tenant_id", "created_at", "id"),
    )

    cycle_start: Mapped[date]
    as_of: Mapped[date]
    status: Mapped[StatementRunStatus] = mapped_column(EnumText(StatementRunStatus))
    patients_total: Mapped[int] = mapped_column(Integer)
    patients_done: Mapped[int] = mapped_column(Integer)
    statements: Mapped[int] = mapped_column(Integer)
    written_off: Mapped[int] = mapped_column(Integer)
    written_off_cents: Mapped[int] = mapped_column(BigInteger)
    collections: Mapped[int] = mapped_column(Integer)
    plans_defaulted: Mapped[int] = mapped_column(Integer)
    cursor_patient: Mapped[uuid.UUID | None]
    # Who asked (the job acts as them, and its audit events say so; the scheduler for automatic runs).
    submitted_by_kind: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_client_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_user_id: Mapped[uuid.UUID | None]
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)  # a fixed reason, never PHI
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class Statement(TenantOwned, Base):
    """A patient's outcome in a run: a statement (PDF, JSON and CSV blobs) or a small-balance write-off."""

    __tablename__ = "statement"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "run_id"], ["rcm.statement_run.tenant_id", "rcm.statement_run.id"]
        ),
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        ForeignKeyConstraint(["tenant_id", "pdf_blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        ForeignKeyConstraint(["tenant_id", "json_blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        ForeignKeyConstraint(["tenant_id", "csv_blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        UniqueConstraint("tenant_id", "run_id", "patient_id"),
        enum_check("outcome", StatementOutcome),
        Index("ix_statement_patient", "tenant_id", "patient_id", "created_at"),
    )

    run_id: Mapped[uuid.UUID]
    patient_id: Mapped[uuid.UUID]
    outcome: Mapped[StatementOutcome] = mapped_column(EnumText(StatementOutcome))
    balance_cents: Mapped[int] = mapped_column(BigInteger)  # the patient's balance when the run saw it
    amount_due_cents: Mapped[int] = mapped_column(BigInteger)
    collections: Mapped[bool] = mapped_column(Boolean)  # a balance older than the practice's limit
    pdf_blob_id: Mapped[uuid.UUID | None]
    json_blob_id: Mapped[uuid.UUID | None]
    csv_blob_id: Mapped[uuid.UUID | None]
