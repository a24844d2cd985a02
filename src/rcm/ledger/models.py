"""Remittances received and the ledger's postings and entries (migration 0031_ledger).

Tenant-owned, RLS forced, append-only for every role (a trigger refuses UPDATE, DELETE and TRUNCATE); the app
role may only SELECT and INSERT. Money in integer cents. No PHI: claim ids, codes and amounts only."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from rcm.claims.models import Claim  # noqa: F401 - the rcm.claim table entries refer to
from rcm.interchanges.models import X12File  # noqa: F401 - the rcm.x12_file table remittances refer to
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check, utcnow


class RemittanceState(enum.StrEnum):
    POSTED = "posted"  # balanced: every claim payment, adjustment and PLB posted
    HELD = "held"  # BPR02 or a claim does not balance: nothing of the set posted, the reason kept


class Source(enum.StrEnum):
    CLAIM_BUILT = "claim_built"  # the claim's charges
    CLAIM_VOIDED = "claim_voided"  # its charges reversed
    CLAIM_REPLACED = "claim_replaced"  # the original's charges reversed (the replacement posts its own)
    REMITTANCE_CLAIM = "remittance_claim"  # one CLP of an 835: payment, adjustments, patient share
    PROVIDER_ADJUSTMENT = "provider_adjustment"  # one PLB adjustment of an 835
    # Patients' money (rcm.patient_billing, migration 0036_patients): per claim the payment is applied to.
    PATIENT_PAYMENT = "patient_payment"
    PATIENT_REFUND = "patient_refund"
    SMALL_BALANCE_WRITE_OFF = "small_balance_write_off"  # the practice's manifest rule, by a statement run
    # Coordination of benefits (migration 0037_cob_transfer): a secondary or tertiary claim built from the
    # previous payer's 835 takes over the patient's share it bills; a void or replacement gives it back.
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    COORDINATION_REVERSED = "coordination_reversed"
    # A held set released by a reviewer (migration 0043_remit_source): what BPR02 holds beyond what its
    # claims and PLB explain, moved between payments and unapplied.
    REMITTANCE_IMBALANCE = "remittance_imbalance"


class Account(enum.StrEnum):
    """Signed amounts: positive is a debit. The two receivables are the claim's balance; the others are
    the practice's counter accounts."""

    INSURANCE_RECEIVABLE = "insurance_receivable"  # what the payer still owes on the claim
    PATIENT_RECEIVABLE = "patient_receivable"  # what the patient owes (CAS group PR)
    CHARGES = "charges"  # gross charges billed (credit)
    PAYMENTS = "payments"  # money the payer sent (debit); its sum per 835 is BPR02
    ADJUSTMENTS = "adjustments"  # CAS CO, OA, PI (and CR) write-offs, by group and CARC
    INTEREST = "interest"  # PLB L6: interest the payer added
    PROVIDER_ADJUSTMENTS = "provider_adjustments"  # PLB recoupments, offsets, forward balances...
    UNAPPLIED = "unapplied"  # a CLP payment matching no claim of the practice
    PATIENT_PAYMENTS = "patient_payments"  # money a patient paid (debit); a refund credits it back


RECEIVABLES = (Account.INSURANCE_RECEIVABLE, Account.PATIENT_RECEIVABLE)


class Remittance(TenantOwned, Base):
    __tablename__ = "remittance"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "x12_file_id"], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"]),
        UniqueConstraint(
            "tenant_id", "trace_originator", "trace_number", "total_paid_cents", name="uq_remittance_trace"
        ),
        enum_check("state", RemittanceState),
        CheckConstraint("(state = 'held') = (held_reason IS NOT NULL)", name="held"),
        Index("ix_remittance_x12_file_id", "tenant_id", "x12_file_id"),
    )

    x12_file_id: Mapped[uuid.UUID | None]
    set_control_number: Mapped[str] = mapped_column(Text)  # ST02
    payer_name: Mapped[str] = mapped_column(Text)  # N1*PR
    payer_identifier: Mapped[str | None] = mapped_column(Text, nullable=True)  # REF*2U, else N104
    trace_originator: Mapped[str] = mapped_column(Text)  # TRN03: 1 and the payer's TIN
    trace_number: Mapped[str] = mapped_column(Text)  # TRN02: the check or EFT trace number
    total_paid_cents: Mapped[int] = mapped_column(BigInteger)  # BPR02
    credit_debit: Mapped[str] = mapped_column(Text)  # BPR03
    payment_method: Mapped[str] = mapped_column(Text)  # BPR04
    paid_on: Mapped[date]  # BPR16
    payee_npi: Mapped[str | None] = mapped_column(Text, nullable=True)  # N1*PE XX
    state: Mapped[RemittanceState] = mapped_column(EnumText(RemittanceState))
    held_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    claim_count: Mapped[int] = mapped_column(Integer)


class LedgerPosting(TenantOwned, Base):
    __tablename__ = "ledger_posting"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "remittance_id"], ["rcm.remittance.tenant_id", "rcm.remittance.id"]
        ),
        enum_check("source", Source),
        Index("ix_ledger_posting_remittance_id", "tenant_id", "remittance_id"),
    )

    source: Mapped[Source] = mapped_column(EnumText(Source))
    claim_id: Mapped[uuid.UUID | None]
    remittance_id: Mapped[uuid.UUID | None]
    actor: Mapped[str | None] = mapped_column(Text, nullable=True)  # principal subject; None for a payer


class LedgerEntry(TenantOwned, Base):
    """An entry's posting (``tenant_id, posting_id``) and claim (``tenant_id, claim_id``) are checked, and
    each posting's balance, once per INSERT statement over all its rows (trigger ``ledger_entry_checked``,
    migration 0044_ledger_balance_stmt) rather than by a foreign-key query per row; its practice is its
    posting's. A claim named by entries is never deleted nor re-keyed (trigger ``claim_keeps_its_ledger``)."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        enum_check("account", Account),
        Index("ix_ledger_entry_claim_id", "tenant_id", "claim_id", "created_at"),
        Index("ix_ledger_entry_posting_id", "tenant_id", "posting_id"),
        # Reports read ranges of posting time (migration 0050_report_gaps).
        Index("ix_ledger_entry_created_at", "tenant_id", "created_at"),
        # A receivable is always some claim's (what report_claim_balance sums per claim).
        CheckConstraint(
            "claim_id IS NOT NULL OR account NOT IN ('insurance_receivable', 'patient_receivable')",
            name="receivable_claim",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # no foreign key: see above

    posting_id: Mapped[uuid.UUID]
    account: Mapped[Account] = mapped_column(EnumText(Account))
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # signed: positive is a debit
    claim_id: Mapped[uuid.UUID | None]
    line_number: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    adjustment_group: Mapped[str | None] = mapped_column(Text, nullable=True)  # CAS01
    reason_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # CARC, or PLB03-1
    remark_codes: Mapped[list[str]] = mapped_column(ARRAY(Text))  # RARC (MOA, LQ*HE)
    # Where it came from: CLM (a claim built), CLP, SVC, CAS, AMT (interest), PLB; the position is the CLP's
    # (or PLB adjustment's) ordinal within its transaction set, or the claim line for a charge.
    segment: Mapped[str | None] = mapped_column(Text, nullable=True)
    segment_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The segment's own position within its transaction set, ST being 1 (migration 0043_remit_source): an
    # 835 entry's CLP, SVC, CAS, AMT or PLB, as the reader found it. None for entries not read from a file.
    segment_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ReleaseAction(enum.StrEnum):
    POSTED = "posted"  # posted whole after review
    DISCARDED = "discarded"  # never to be posted (a test file, a payment the payer recalled...)
    ROUTED = "routed"  # another practice's payment (wrong payee routing): sent there, or to the ERA queue


class RemittanceRelease(TenantOwned, Base):
    """A reviewer's decision on a held transaction set (migration 0043_remit_source): once per set, never
    changed (append-only, as the ledger). ``imbalance_cents``: BPR02 minus what the claims and PLB explain,
    posted to ``unapplied`` when it was posted anyway. ``routed_tenant_id`` (migration 0049_remit_gaps): the
    practice a routed set was sent to; NULL for a routed set means the unassigned-ERA queue."""

    __tablename__ = "remittance_release"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "remittance_id"], ["rcm.remittance.tenant_id", "rcm.remittance.id"]
        ),
        UniqueConstraint("tenant_id", "remittance_id", name="uq_remittance_release"),
        enum_check("action", ReleaseAction),
        CheckConstraint("action = 'posted' OR imbalance_cents = 0", name="imbalance"),
        CheckConstraint("action = 'routed' OR routed_tenant_id IS NULL", name="routed"),
    )

    remittance_id: Mapped[uuid.UUID]
    action: Mapped[ReleaseAction] = mapped_column(EnumText(ReleaseAction))
    reason: Mapped[str] = mapped_column(Text)
    imbalance_cents: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(Text)
    routed_tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)


# -- the unassigned-ERA queue (migration 0038_era_queue): platform-level, no practice yet.


class UnassignedFile(Base):
    """An 835 file holding a payment no practice could be found for: kept whole, encrypted under a data key
    of its own (``rcm.ledger.unassigned_store``), one row per content."""

    __tablename__ = "unassigned_era_file"
    __table_args__ = (UniqueConstraint("sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    kek_id: Mapped[str] = mapped_column(Text)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class UnassignedRemittance(Base):
    """One payment (transaction set) waiting for staff to route it: no PHI (payer, TRN02, BPR02, payee)."""

    __tablename__ = "unassigned_remittance"
    __table_args__ = (
        UniqueConstraint("file_id", "set_index", name="uq_unassigned_remittance_set"),
        CheckConstraint(
            "(routed_tenant_id IS NULL) = (routed_at IS NULL) AND (routed_at IS NULL) = (routed_by IS NULL)",
            name="routed",
        ),
        Index(
            "ix_unassigned_remittance_open", "created_at", "id", postgresql_where=text("routed_at IS NULL")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unassigned_era_file.id"))
    set_index: Mapped[int] = mapped_column(Integer)  # the set's place in the file, from 0
    set_control_number: Mapped[str] = mapped_column(Text)  # ST02
    trace_number: Mapped[str] = mapped_column(Text)  # TRN02
    payer_name: Mapped[str] = mapped_column(Text)  # N1*PR
    total_paid_cents: Mapped[int] = mapped_column(BigInteger)  # BPR02
    payee_npi: Mapped[str | None] = mapped_column(Text, nullable=True)  # N1*PE XX
    payee_tin_last4: Mapped[str | None] = mapped_column(Text, nullable=True)  # REF*TJ or N1*PE FI
    reason: Mapped[str] = mapped_column(Text)
    # The practices the uploading biller could route among; empty for an operator's import (admins only).
    candidates: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    received_by: Mapped[str] = mapped_column(Text)  # principal subject
    routed_tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    routed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    routed_by: Mapped[str | None] = mapped_column(Text, nullable=True)


class Deposit(TenantOwned, Base):
    """A bank deposit the practice reports, for EFT reassociation. Append-only."""

    __tablename__ = "deposit"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount"),
        Index("ix_deposit_date", "tenant_id", "deposited_on"),
    )

    deposited_on: Mapped[date]
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    trace_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(Text)
